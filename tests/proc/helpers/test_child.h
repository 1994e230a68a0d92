// A child process with known state, for tests that read another process.
//
// spawn() forks; the child runs a setup function (mmap areas, block signals,
// set a umask...), sends the setup's result back through a pipe and then
// waits. The test reads the child through /proc while it waits. The child is
// killed and reaped by its pid when the TestChild goes away, and it exits by
// itself if the test process dies first (its hold pipe reaches EOF), so a
// crashed test leaves nothing behind.
//
// Header-only so any test binary under tests/proc can use it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <type_traits>

namespace frost::testing {

template <class Report>
class TestChild {
  static_assert(std::is_trivially_copyable_v<Report>, "the report crosses a pipe");

 public:
  // Forks a child that runs `setup` (returning a Report) and then waits.
  // Returns nullptr if fork fails or the child dies before reporting.
  // `setup` runs in the forked child: it should make system calls only,
  // never return into the test framework, and _exit on failure.
  template <class Setup>
  static std::unique_ptr<TestChild> spawn(Setup setup) {
    int report[2], hold[2];
    if (::pipe2(report, O_CLOEXEC) != 0) return nullptr;
    if (::pipe2(hold, O_CLOEXEC) != 0) {
      close_both(report);
      return nullptr;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      close_both(report);
      close_both(hold);
      return nullptr;
    }
    if (pid == 0) run_child(setup, report, hold);  // never returns
    ::close(report[1]);
    ::close(hold[0]);
    std::unique_ptr<TestChild> child(new TestChild(pid, hold[1]));
    bool got = read_all(report[0], &child->report_, sizeof(Report));
    ::close(report[0]);
    if (!got || !child->wait_sleeping()) return nullptr;  // the destructor reaps the child
    return child;
  }

  ~TestChild() { kill_and_reap(); }
  TestChild(const TestChild&) = delete;
  TestChild& operator=(const TestChild&) = delete;

  pid_t pid() const { return pid_; }
  const Report& report() const { return report_; }

  // Waits (up to 10 s) until the child's main thread sleeps, so a test never
  // sees it between reporting and blocking. False if it never does.
  bool wait_sleeping() const {
    std::string path = "/proc/" + std::to_string(pid_) + "/stat";
    for (int i = 0; i < 10000; i++) {
      std::ifstream f(path);
      std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      size_t close = stat.rfind(')');
      if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'S') return true;
      ::usleep(1000);
    }
    return false;
  }

  // SIGKILL to this pid and wait for it; afterwards the pid is gone.
  void kill_and_reap() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, __WALL) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (hold_ >= 0) ::close(hold_);
    hold_ = -1;
  }

 private:
  TestChild(pid_t pid, int hold) : pid_(pid), hold_(hold) {}

  static void close_both(int p[2]) {
    ::close(p[0]);
    ::close(p[1]);
  }

  static bool read_all(int fd, void* buf, size_t n) {
    auto* p = static_cast<char*>(buf);
    while (n > 0) {
      ssize_t r = ::read(fd, p, n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      p += r;
      n -= size_t(r);
    }
    return true;
  }

  template <class Setup>
  [[noreturn]] static void run_child(Setup& setup, int report[2], int hold[2]) {
    ::close(report[0]);
    ::close(hold[1]);
    Report r = setup();
    const char* p = reinterpret_cast<const char*>(&r);
    for (size_t left = sizeof r; left > 0;) {
      ssize_t w = ::write(report[1], p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) ::_exit(2);
      p += w;
      left -= size_t(w);
    }
    ::close(report[1]);
    char c;
    while (::read(hold[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }

  pid_t pid_;
  int hold_;
  Report report_{};
};

}  // namespace frost::testing
