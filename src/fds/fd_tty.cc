// Terminals: pseudo-terminal slaves (/dev/pts/N), virtual consoles, serial
// lines, /dev/tty. A terminal belongs to the session that ran the process,
// which a melt cannot bring back; with --shell-job the fds are attached to
// the terminal frost melt runs on, as a shell attaches a job.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "fds/handlers.h"
#include "fds/reopen.h"

namespace frost::fds {
namespace {

bool is_terminal(dev_t rdev) {
  unsigned maj = major(rdev);
  if (maj >= 136 && maj <= 143) return true;  // UNIX98 pty slaves
  if (maj == 4) return true;                   // tty0-63, ttyS*
  if (maj == 5) return minor(rdev) == 0 || minor(rdev) == 1;  // /dev/tty, /dev/console
  return false;
}

class TtyHandler final : public FdHandler {
 public:
  std::string_view kind() const override { return "tty"; }
  bool matches(const OpenFd& fd) const override {
    return S_ISCHR(fd.st.st_mode) && is_terminal(fd.st.st_rdev);
  }
  // The terminal's settings go along: a shell or editor that set raw mode
  // before it blocked in read() still expects raw mode when it wakes up.
  Result<std::vector<uint8_t>> dump(const OpenFd& fd, DumpContext& ctx) const override {
    FdPayload p = path_payload(fd);
    UniqueFd tty(::open(fd_proc_path(ctx.pid, fd.fd).c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
    struct termios t {};
    if (tty && ::tcgetattr(tty.get(), &t) == 0) {
      const auto* b = reinterpret_cast<const uint8_t*>(&t);
      p.content.assign(b, b + sizeof t);
    }
    return p.encode();
  }
  Result<UniqueFd> restore(const image::FdImage& img, RestoreContext& ctx) const override {
    FROST_ASSIGN(FdPayload p, FdPayload::decode(img.payload));
    if (ctx.options.shell_job_tty < 0) {
      return Error(ErrorKind::kUnsupported,
                   fmt::format("a terminal ({}): melt with --shell-job to attach it to yours", p.path));
    }
    // A new open file of the caller's terminal, with the saved flags.
    std::string path = fmt::format("/proc/self/fd/{}", ctx.options.shell_job_tty);
    UniqueFd fd(::open(path.c_str(), reopen_flags(p.flags)));
    if (!fd) return Error::io("opening the caller's terminal");
    if (p.content.size() == sizeof(struct termios)) {
      struct termios t {};
      std::memcpy(&t, p.content.data(), sizeof t);
      if (::tcsetattr(fd.get(), TCSANOW, &t) != 0) return Error::io("setting the terminal's modes");
    }
    return fd;
  }
};

}  // namespace

const FdHandler& tty_handler() { static const TtyHandler h; return h; }

}  // namespace frost::fds
