#include "frostd.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace frost::acceptance {
namespace {

// True once frostd answers a ping on its socket. A connection alone is not
// enough: the kernel accepts it into the backlog while frostd is still busy
// before its loop (frostd --recover melts everything first).
bool answers_ping(const fs::path& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.string().size() >= sizeof addr.sun_path) return false;
  std::strcpy(addr.sun_path, socket.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval timeout{60, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const std::string ping = "{\"op\": \"ping\"}\n";
  std::string reply;
  bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
            ::send(fd, ping.data(), ping.size(), MSG_NOSIGNAL) == ssize_t(ping.size());
  for (char c = 0; ok && c != '\n';) {
    ok = ::read(fd, &c, 1) == 1;
    reply += c;
  }
  ::close(fd);
  return ok && reply.find("\"ok\":true") != std::string::npos;
}

}  // namespace

Frostd::~Frostd() {
  if (running()) (void)end(SIGKILL, false);
}

::testing::AssertionResult Frostd::start(const std::vector<std::string>& args) {
  if (running()) return ::testing::AssertionFailure() << "frostd " << pid_ << " is already running";
  std::vector<std::string> argv{FROSTD_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = spawn(argv, {"/dev/null", "/dev/null", log_path(++starts_)}, {"FROST_HOME=" + home_.string()});
  // A stale socket of a crashed frostd stays until the new one replaces it:
  // only an answer tells that this one serves.
  int status = 0;
  bool exited = false;
  bool ready = poll_until([&] {
    exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
    return exited || answers_ping(home_ / "frostd.sock");
  });
  if (exited) {
    pid_ = -1;
    return ::testing::AssertionFailure() << "frostd ended at start (" << describe_status(status) << "):\n" << log();
  }
  if (!ready) return ::testing::AssertionFailure() << "frostd " << pid_ << " never answered a ping:\n" << log();
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult Frostd::crash() { return end(SIGKILL, false); }

::testing::AssertionResult Frostd::stop() { return end(SIGTERM, true); }

::testing::AssertionResult Frostd::end(int sig, bool expect_clean) {
  if (!running()) return ::testing::AssertionFailure() << "frostd is not running";
  pid_t pid = pid_;
  ::kill(pid, sig);
  std::optional<int> status = wait_exit(pid);
  if (!status) {
    ::kill(pid, SIGKILL);
    status = wait_exit(pid, seconds(10));
  }
  pid_ = -1;
  if (!status) return ::testing::AssertionFailure() << "frostd " << pid << " did not end after signal " << sig;
  if (expect_clean && !(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)) {
    return ::testing::AssertionFailure() << "frostd " << pid << " stopped with " << describe_status(*status) << ":\n"
                                         << log();
  }
  return ::testing::AssertionSuccess();
}

std::string Frostd::log() const {
  std::string all;
  for (int n = 1; n <= starts_; ++n) all += "--- frostd start " + std::to_string(n) + ":\n" + slurp(log_path(n));
  return all;
}

}  // namespace frost::acceptance
