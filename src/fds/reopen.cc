#include "fds/reopen.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace frost::fds {

int reopen_flags(uint32_t saved) {
  return static_cast<int>(saved & ~uint32_t(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)) |
         O_CLOEXEC | O_NOCTTY;
}

Result<UniqueFd> reopen(const std::string& path, uint32_t flags, uint64_t pos) {
  UniqueFd fd(::open(path.c_str(), reopen_flags(flags)));
  if (!fd) return Error::io(fmt::format("reopening {}", path));
  if (pos != 0 && ::lseek(fd.get(), static_cast<off_t>(pos), SEEK_SET) < 0) {
    return Error::io(fmt::format("seeking {} to {}", path, pos));
  }
  return fd;
}

FdPayload path_payload(const OpenFd& fd) {
  FdPayload p;
  p.path = fd.path();
  p.flags = fd.flags;
  p.pos = fd.pos;
  p.dev = fd.st.st_dev;
  p.inode = fd.st.st_ino;
  p.rdev = fd.st.st_rdev;
  p.mode = fd.st.st_mode;
  return p;
}

}  // namespace frost::fds
