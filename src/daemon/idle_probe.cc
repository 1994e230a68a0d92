#include "daemon/idle_probe.h"

#include <unistd.h>

#include <fmt/format.h>

#include "proc/proc_status.h"

namespace frost::daemon {
namespace {

// CPU time of a thread in ns: schedstat's run time when the kernel has it
// (exact), else utime + stime from stat (clock ticks).
std::optional<uint64_t> cpu_ns(pid_t pid, pid_t tid) {
  std::string task = fmt::format("task/{}/", tid);
  Result<std::string> sched = proc::read_proc_file(pid, task + "schedstat");
  if (sched.ok()) {
    uint64_t ns = 0;
    if (std::sscanf(sched->c_str(), "%lu", &ns) == 1) return ns;
  }
  Result<std::string> stat = proc::read_proc_file(pid, task + "stat");
  if (!stat.ok()) return std::nullopt;
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  unsigned long utime = 0, stime = 0;
  // Fields after comm: state(3) ... utime(14) stime(15).
  if (std::sscanf(stat->c_str() + close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) {
    return std::nullopt;
  }
  return uint64_t(utime + stime) * (1'000'000'000ull / uint64_t(::sysconf(_SC_CLK_TCK)));
}

char thread_state(pid_t pid, pid_t tid) {
  Result<std::string> stat = proc::read_proc_file(pid, fmt::format("task/{}/stat", tid));
  if (!stat.ok()) return '?';
  size_t close = stat->rfind(')');
  return close != std::string::npos && close + 2 < stat->size() ? (*stat)[close + 2] : '?';
}

}  // namespace

std::optional<std::string> IdleProbe::look(pid_t pid) {
  Result<std::vector<pid_t>> threads = proc::list_threads(pid);
  if (!threads.ok()) return "the process is gone";
  std::map<pid_t, uint64_t> now;
  std::optional<std::string> busy;
  for (pid_t tid : *threads) {
    char state = thread_state(pid, tid);
    std::optional<uint64_t> ns = cpu_ns(pid, tid);
    if (ns) now[tid] = *ns;
    if (busy) continue;
    if (state == 'R') busy = fmt::format("thread {} is running", tid);
    else if (state == 'D') busy = fmt::format("thread {} is in an uninterruptible wait (I/O)", tid);
    else if (state != 'S') busy = fmt::format("thread {} is in state {}", tid, state);
  }
  if (!busy) {
    if (cpu_ns_.empty()) {
      busy = "first look";
    } else {
      for (auto [tid, ns] : now) {
        auto before = cpu_ns_.find(tid);
        if (before == cpu_ns_.end()) {
          busy = fmt::format("thread {} is new", tid);
          break;
        }
        if (ns > before->second) {
          busy = fmt::format("thread {} used {:.1f} ms of CPU since the last look", tid, double(ns - before->second) / 1e6);
          break;
        }
      }
    }
  }
  cpu_ns_ = std::move(now);
  return busy;
}

}  // namespace frost::daemon
