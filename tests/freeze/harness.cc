#include "harness.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace frost::testing {
namespace {

// Orphans (melted processes, whose parent `frost melt` exits) come to us
// and are reaped at once; PID 1 on these machines reaps slowly.
[[maybe_unused]] const bool kSubreaper = [] { return ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0; }();

bool wait_for(const std::function<bool()>& pred, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

}  // namespace

Outcome frost_keep_serving(const std::vector<std::string>& args, const fs::path& home) {
  return run_binary(FROST_CLI_PATH, args, home);
}

Outcome frost(const std::vector<std::string>& args, const fs::path& home) {
  Outcome r = frost_keep_serving(args, home);
  if (!args.empty() && args[0] == "melt" && r.exit_code == 0) {
    pid_t pager = pager_of(r);
    if (pager > 0) EXPECT_EQ(wait_pager(pager), 0) << "the page server " << pager << " failed";
  }
  return r;
}

pid_t pager_of(const Outcome& melt) {
  std::smatch m;
  if (std::regex_search(melt.out, m, std::regex(R"("pager_pid":([0-9]+))")) ||
      std::regex_search(melt.out, m, std::regex(R"(being paged in by pid ([0-9]+))"))) {
    return pid_t(std::stol(m[1]));
  }
  return 0;
}

int wait_pager(pid_t pager, int timeout_ms) {
  int status = 0;
  if (!wait_for([&] { return ::waitpid(pager, &status, WNOHANG) == pager; }, timeout_ms)) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Program::Program(const std::string& binary, fs::path out, std::vector<int> keep)
    : Program(std::vector<std::string>{binary}, std::move(out), std::move(keep)) {}

Program::Program(const std::vector<std::string>& args, fs::path out) : Program(args, std::move(out), {}) {}

Program::Program(const std::vector<std::string>& args, fs::path out, std::vector<int> keep) : out_(std::move(out)) {
  pid_ = ::fork();
  if (pid_ != 0) return;
  int o = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int n = ::open("/dev/null", O_RDONLY);
  if (o < 0 || n < 0 || ::dup2(n, 0) < 0 || ::dup2(o, 1) < 0 || ::dup2(o, 2) < 0) ::_exit(127);
  // Keep only the fds asked for (moved to their own numbers), then close the rest.
  int next = 3;
  for (int fd : keep) {
    if (fd != next) ::dup2(fd, next);
    ::fcntl(next, F_SETFD, 0);
    ++next;
  }
  ::syscall(SYS_close_range, unsigned(next), ~0u, 0u);
  ::unsetenv("FROST_SELFTEST_SABOTAGE");
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

Program::~Program() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  while (::waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
  }
}

bool Program::wait_ready() {
  std::string want = "READY " + std::to_string(pid_) + "\n";
  return wait_for([&] { return output().find(want) != std::string::npos; }, 20000);
}

int Program::wait_exit(int timeout_ms) {
  int status = 0;
  bool done = wait_for([&] { return ::waitpid(pid_, &status, WNOHANG | __WALL) == pid_; }, timeout_ms);
  if (!done) return -1;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The process may not be our child yet: after a lazy melt its parent is the
// page server until that exits (then it is reparented to us, the subreaper).
void Program::reap_frozen() {
  int status;
  wait_for([&] { return ::waitpid(pid_, &status, WNOHANG | __WALL) == pid_ || process_state(pid_) == 0; }, 20000);
}

char process_state(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return 0;
  return stat[close + 2];
}

int tracer_of(pid_t pid) {
  std::string status = slurp("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("TracerPid:");
  if (at == std::string::npos) return -1;
  return std::stoi(status.substr(at + 10));
}

pid_t squat(pid_t pid) {
  clone_args args{};
  args.exit_signal = SIGCHLD;
  uint64_t tid = uint64_t(pid);
  args.set_tid = reinterpret_cast<uint64_t>(&tid);
  args.set_tid_size = 1;
  long r = ::syscall(SYS_clone3, &args, CLONE_ARGS_SIZE_VER1);
  if (r == 0) {
    for (;;) ::pause();
  }
  return pid_t(r);
}

bool running_untouched(pid_t pid) {
  char s = process_state(pid);
  return s != 0 && s != 'T' && s != 't' && s != 'Z' && tracer_of(pid) == 0;
}

}  // namespace frost::testing
