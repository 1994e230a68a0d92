#include "daemon/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/unique_fd.h"

namespace frost::daemon {

Status write_file_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return Error::io("cannot create " + tmp);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::io("cannot write " + tmp);
    done += size_t(n);
  }
  if (::fsync(fd.get()) != 0) return Error::io("cannot sync " + tmp);
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Error::io("cannot replace " + path);
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  UniqueFd d(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d || ::fsync(d.get()) != 0) return Error::io("cannot sync the directory of " + path);
  return Status::Ok();
}

Result<std::string> read_small_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Error::not_found(path + " does not exist");
    return Error::io("cannot open " + path);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::io("cannot read " + path);
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

}  // namespace frost::daemon
