#include "cli/attach_command.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "cli/exit_code.h"
#include "cli/frost_home.h"
#include "common/unique_fd.h"
#include "daemon/control_socket.h"

namespace frost::cli {
namespace {

constexpr char kDetach = 0x1d;  // Ctrl-]

// This terminal in raw mode while attached; its modes come back at the end.
class RawMode {
 public:
  explicit RawMode(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) != 0) return;
    struct termios raw = saved_;
    ::cfmakeraw(&raw);
    ok_ = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
  }
  ~RawMode() {
    if (ok_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;

 private:
  int fd_;
  struct termios saved_ {};
  bool ok_ = false;
};

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      pollfd pf{fd, POLLOUT, 0};
      ::poll(&pf, 1, -1);
      continue;
    }
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

void copy_window_size(int from, int to) {
  winsize ws{};
  if (::ioctl(from, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) (void)::ioctl(to, TIOCSWINSZ, &ws);
}

enum class Ending { kDetached, kProcessGone, kInputClosed };

// Copies keys to the master and output back until Ctrl-], the end of the
// process (the master reads EIO once no one has the slave open), or the
// end of this terminal.
Result<Ending> relay(int in, int out, int master) {
  sigset_t winch;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  if (::sigprocmask(SIG_BLOCK, &winch, nullptr) != 0) return Error::io("blocking SIGWINCH");
  UniqueFd resized(::signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!resized) return Error::io("signalfd");
  copy_window_size(in, master);
  char buf[16384];
  for (;;) {
    pollfd fds[3] = {{in, POLLIN, 0}, {master, POLLIN, 0}, {resized.get(), POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::io("poll");
    }
    if (fds[2].revents & POLLIN) {
      signalfd_siginfo si;
      while (::read(resized.get(), &si, sizeof si) > 0) {
      }
      copy_window_size(in, master);
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return Ending::kProcessGone;
      if (!write_all(out, buf, size_t(n))) return Ending::kInputClosed;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(in, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return Ending::kInputClosed;
      const char* detach = static_cast<const char*>(std::memchr(buf, kDetach, size_t(n)));
      size_t keep = detach != nullptr ? size_t(detach - buf) : size_t(n);
      if (keep > 0 && !write_all(master, buf, keep)) return Ending::kProcessGone;
      if (detach != nullptr) return Ending::kDetached;
    }
  }
}

Result<int> run_attach(const Context&, const std::string& name) {
  if (::isatty(STDIN_FILENO) != 1) return Error::invalid("attach needs a terminal on standard input");
  std::optional<daemon::ControlClient> client = daemon::ControlClient::connect(frost_home());
  if (!client) return Error::invalid("frostd is not running: only frostd holds the terminals of what it melted");
  UniqueFd master;
  FROST_ASSIGN(nlohmann::json r, client->call(nlohmann::json{{"op", "attach"}, {"name", name}}, {}, &master));
  if (!master) return Error::io("frostd answered without the terminal", 0);
  fmt::print(stderr, "frost: attached to {} (pid {}); Ctrl-] detaches\r\n", name, r.value("pid", 0));
  Result<Ending> ending = Ending::kInputClosed;
  {
    RawMode raw(STDIN_FILENO);
    ending = relay(STDIN_FILENO, STDOUT_FILENO, master.get());
  }
  if (!ending.ok()) return ending.error();
  switch (*ending) {
    case Ending::kDetached:
      fmt::print(stderr, "\nfrost: detached from {}; it runs on (frost attach {} to come back)\n", name, name);
      return kExitOk;
    case Ending::kProcessGone:
      fmt::print(stderr, "\nfrost: {} closed its terminal\n", name);
      return kExitOk;
    case Ending::kInputClosed:
      return kExitOk;
  }
  return kExitOk;
}

}  // namespace

void add_attach_command(CommandSet& set) {
  auto name = std::make_shared<std::string>();
  CLI::App* sub = set.add("attach", "connect this terminal to one frostd holds for a recovered process (Ctrl-] detaches)",
                          [name](const Context& ctx) { return run_attach(ctx, *name); });
  sub->add_option("name", *name, "the process (its image name)")->required();
}

}  // namespace frost::cli
