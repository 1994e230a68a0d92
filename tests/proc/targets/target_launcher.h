// Starts tests/proc/targets/ptrace_target and talks to it over pipes; small
// /proc helpers for the ptrace and remote-syscall tests.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "proc/proc_status.h"

namespace frost::testing {

// The test runner adopts orphans so every process a test ends is reaped at
// once (PID 1 on the project's machines reaps slowly).
inline const bool kSubreaper = [] { return ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0; }();

inline bool wait_until(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

// Kills and reaps one child by pid; tolerates one reaped already.
inline void kill_and_reap(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status;
  while (::waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }
}

class Target {
 public:
  // Runs ptrace_target in `mode` and waits for its "ready" line.
  static std::unique_ptr<Target> launch(const std::string& mode = "threads") {
    int in[2], out[2], data[2];
    if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(data, O_CLOEXEC)) {
      return nullptr;
    }
    pid_t pid = ::fork();
    if (pid < 0) return nullptr;
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(data[0], 3);
      const char* path = FROST_PTRACE_TARGET;
      ::execl(path, path, mode.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(data[0]);
    auto t = std::unique_ptr<Target>(new Target(pid, in[1], out[0], data[1]));
    std::string ready = t->read_line();
    std::istringstream words(ready);
    std::string word;
    words >> word;
    if (word != "ready") return nullptr;
    words >> std::hex >> t->marker >> t->none_page >> t->ro_page >> t->big;
    return t;
  }

  ~Target() { kill_and_reap(pid); }

  // One line from the target's stdout, without '\n'; "" on timeout or EOF.
  std::string read_line(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      size_t nl = pending_.find('\n');
      if (nl != std::string::npos) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{out_.get(), POLLIN, 0};
      if (::poll(&p, 1, int(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(out_.get(), buf, sizeof(buf));
      if (n <= 0) return "";
      pending_.append(buf, size_t(n));
    }
  }

  // Sends a command line and returns the answer line.
  std::string command(const std::string& cmd) {
    std::string line = cmd + "\n";
    if (::write(in_.get(), line.data(), line.size()) != ssize_t(line.size())) return "";
    return read_line();
  }

  // Bytes for the thread blocked in read(3).
  bool feed_reader(const std::string& bytes) {
    return ::write(data_.get(), bytes.data(), bytes.size()) == ssize_t(bytes.size());
  }

  // "pong <spins> <rt count> <rt sum>" as numbers.
  std::vector<long> ping() {
    std::istringstream words(command("ping"));
    std::string word;
    words >> word;
    std::vector<long> out;
    long v;
    while (words >> v) out.push_back(v);
    return out;
  }

  pid_t pid;
  uint64_t marker = 0, none_page = 0, ro_page = 0, big = 0;

 private:
  Target(pid_t p, int in, int out, int data) : pid(p), in_(in), out_(out), data_(data) {}
  UniqueFd in_, out_, data_;
  std::string pending_;
};

// --- /proc helpers -------------------------------------------------------------

inline std::vector<pid_t> tids_of(pid_t pid) {
  auto t = proc::list_threads(pid);
  return t.ok() ? *t : std::vector<pid_t>{};
}

inline pid_t tid_named(pid_t pid, const std::string& name) {
  for (pid_t tid : tids_of(pid)) {
    auto comm = proc::read_thread_comm(pid, tid);
    if (comm.ok() && *comm == name) return tid;
  }
  return 0;
}

inline char thread_state(pid_t pid, pid_t tid) {
  auto st = proc::read_thread_status(pid, tid);
  return st.ok() ? st->state : '?';
}

inline pid_t tracer_of(pid_t pid, pid_t tid) {
  auto st = proc::read_thread_status(pid, tid);
  return st.ok() ? st->tracer_pid : -1;
}

// The system call a thread is blocked in (/proc/PID/task/TID/syscall), or -1.
inline long blocked_syscall(pid_t pid, pid_t tid) {
  auto text = proc::read_proc_file(pid, "task/" + std::to_string(tid) + "/syscall");
  if (!text.ok() || text->empty() || !isdigit((*text)[0])) return -1;
  return std::strtol(text->c_str(), nullptr, 10);
}

}  // namespace frost::testing
