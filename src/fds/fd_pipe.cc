// Pipes whose every end is inside the process. The buffered bytes are copied
// with tee(2), which leaves them in the pipe: a snapshot must not take data
// from a process that keeps running. At melt one pipe is made per saved pipe,
// its size set and its bytes written back before any end is handed out.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <optional>

#include <fmt/format.h>

#include "fds/handlers.h"
#include "fds/reopen.h"

namespace frost::fds {
namespace {

bool is_read_end(uint32_t flags) { return (flags & O_ACCMODE) == O_RDONLY; }

// The pid of another process that holds pipe `link` ("pipe:[123]"), if any.
std::optional<pid_t> other_holder(pid_t self, const std::string& link) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return std::nullopt;
  std::optional<pid_t> found;
  char buf[64];
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = 0;
    std::string_view name(e->d_name);
    if (std::from_chars(name.data(), name.data() + name.size(), pid).ec != std::errc() || pid == self) continue;
    std::string dir_path = fmt::format("/proc/{}/fd", pid);
    DIR* fds = ::opendir(dir_path.c_str());
    if (fds == nullptr) continue;
    while (dirent* f = ::readdir(fds)) {
      if (f->d_name[0] == '.') continue;
      std::string p = dir_path + "/" + f->d_name;
      ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
      if (n > 0 && std::string_view(buf, size_t(n)) == link) { found = pid; break; }
    }
    ::closedir(fds);
    if (found) break;
  }
  ::closedir(proc);
  return found;
}

// The bytes queued in the pipe behind `fd`, copied without consuming them.
Result<std::vector<uint8_t>> peek_pipe(pid_t pid, int fd, uint32_t pipe_size) {
  std::string src = fd_proc_path(pid, fd);
  // A read open of the pipe inode (works for either end's link).
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!in) return Error::io(fmt::format("opening pipe of fd {}", fd));
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return Error::io("creating a pipe");
  UniqueFd tmp_r(p[0]), tmp_w(p[1]);
  if (::fcntl(tmp_w.get(), F_SETPIPE_SZ, pipe_size) < 0) {
    return Error::io(fmt::format("sizing a pipe to {} bytes to copy fd {}", pipe_size, fd));
  }
  std::vector<uint8_t> data;
  ssize_t n = ::tee(in.get(), tmp_w.get(), pipe_size, SPLICE_F_NONBLOCK);
  if (n < 0 && errno != EAGAIN) return Error::io(fmt::format("copying the data of pipe fd {}", fd));
  if (n > 0) {
    data.resize(size_t(n));
    size_t done = 0;
    while (done < data.size()) {
      ssize_t r = ::read(tmp_r.get(), data.data() + done, data.size() - done);
      if (r <= 0) return Error::io(fmt::format("reading the data of pipe fd {}", fd));
      done += size_t(r);
    }
  }
  return data;
}

struct PipeState final : HandlerState {
  struct Made {
    UniqueFd ends[2];        // [0] read, [1] write: kept until the restore ends
    bool handed_out[2] = {};
  };
  std::map<uint64_t, Made> pipes;  // by saved inode
};

class PipeHandler final : public FdHandler {
 public:
  std::string_view kind() const override { return "pipe"; }
  bool matches(const OpenFd& fd) const override {
    return S_ISFIFO(fd.st.st_mode) && fd.link.starts_with("pipe:");
  }
  Status check(const OpenFd& fd, const DumpContext& ctx) const override {
    if (std::optional<pid_t> other = other_holder(ctx.pid, fd.link)) {
      return Error(ErrorKind::kUnsupported,
                   fmt::format("fd {} is a pipe ({}) shared with process {}; only pipes whose ends "
                               "are all in the process can be frozen",
                               fd.fd, fd.link, *other));
    }
    return Status::Ok();
  }
  Result<std::vector<uint8_t>> dump(const OpenFd& fd, DumpContext& ctx) const override {
    FdPayload p = path_payload(fd);
    p.path.clear();
    bool first = true;
    for (const OpenFd& other : *ctx.fds) {
      if (other.st.st_ino != fd.st.st_ino || other.st.st_dev != fd.st.st_dev) continue;
      if (other.fd < fd.fd) first = false;
      (is_read_end(other.flags) ? p.read_end_held : p.write_end_held) = true;
    }
    std::string path = fd_proc_path(ctx.pid, fd.fd);
    UniqueFd probe(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    int size = probe ? ::fcntl(probe.get(), F_GETPIPE_SZ) : -1;
    if (size <= 0) return Error::io(fmt::format("reading the size of pipe fd {}", fd.fd));
    p.pipe_size = uint32_t(size);
    if (first) {
      FROST_ASSIGN(p.content, peek_pipe(ctx.pid, fd.fd, p.pipe_size));
    }
    return p.encode();
  }
  Result<UniqueFd> restore(const image::FdImage& img, RestoreContext& ctx) const override {
    FROST_ASSIGN(FdPayload p, FdPayload::decode(img.payload));
    PipeState& state = ctx.state_of<PipeState>(kind());
    auto [it, fresh] = state.pipes.try_emplace(p.inode);
    PipeState::Made& made = it->second;
    if (fresh) FROST_TRY(make_pipe(p, made));
    int end = is_read_end(p.flags) ? 0 : 1;
    UniqueFd fd;
    if (!made.handed_out[end]) {
      fd.reset(::fcntl(made.ends[end].get(), F_DUPFD_CLOEXEC, 0));
      made.handed_out[end] = true;
    } else {
      // A second open file of the same end (someone opened /proc/PID/fd/N).
      std::string again = fmt::format("/proc/self/fd/{}", made.ends[end].get());
      fd.reset(::open(again.c_str(), reopen_flags(p.flags) | O_NONBLOCK));
    }
    if (!fd) return Error::io(fmt::format("installing pipe end of fd {}", img.fd));
    if (::fcntl(fd.get(), F_SETFL, reopen_flags(p.flags) & ~O_ACCMODE) < 0) {
      return Error::io(fmt::format("setting flags of pipe fd {}", img.fd));
    }
    return fd;
  }

 private:
  static Status make_pipe(const FdPayload& p, PipeState::Made& made) {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) return Error::io("creating a pipe");
    made.ends[0].reset(ends[0]);
    made.ends[1].reset(ends[1]);
    if (p.pipe_size != 0 && ::fcntl(ends[1], F_SETPIPE_SZ, p.pipe_size) < 0) {
      return Error::io(fmt::format("sizing a pipe to {} bytes", p.pipe_size));
    }
    for (size_t done = 0; done < p.content.size();) {
      ssize_t n = ::write(ends[1], p.content.data() + done, p.content.size() - done);
      if (n <= 0) return Error::io("refilling a pipe");
      done += size_t(n);
    }
    // An end the process did not hold is not handed out: closing it with the
    // state gives the reader EOF, or the writer EPIPE, as before.
    made.handed_out[0] = made.handed_out[1] = false;
    return Status::Ok();
  }
};

}  // namespace

const FdHandler& pipe_handler() { static const PipeHandler h; return h; }

}  // namespace frost::fds
