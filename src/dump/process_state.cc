#include "dump/process_state.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include <charconv>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "common/kernel_compat.h"
#include "proc/proc_status.h"
#include "proc/remote_syscall.h"

namespace frost::dump {
namespace {

struct KernelSigaction {  // the rt_sigaction ABI on x86-64
  uint64_t handler, flags, restorer, mask;
};

uint64_t timeval_us(const timeval& tv) { return uint64_t(tv.tv_sec) * 1000000 + uint64_t(tv.tv_usec); }
uint64_t timespec_ns(const timespec& ts) { return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec); }

// One "key: value" field of a /proc/PID/timers record.
std::string_view field(std::string_view line, std::string_view key) {
  if (!line.starts_with(key)) return {};
  line.remove_prefix(key.size());
  while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  return line;
}

template <typename T>
bool number(std::string_view s, T& out, int base = 10) {
  return std::from_chars(s.data(), s.data() + s.size(), out, base).ec == std::errc();
}

// /proc/PID/timers (show_timer in kernel/time/posix-timers.c):
//   ID: 3 / signal: 14/00000000deadbeef / notify: signal/pid.123 / ClockID: 1
Result<std::vector<image::PosixTimerImage>> parse_timers(std::string_view text) {
  std::vector<image::PosixTimerImage> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (auto v = field(line, "ID:"); !v.empty()) {
      out.emplace_back();
      if (!number(v, out.back().id)) return Error::corruption("timers: bad ID line");
    } else if (out.empty()) {
      continue;
    } else if (auto v = field(line, "signal:"); !v.empty()) {
      size_t slash = v.find('/');
      if (slash == std::string_view::npos || !number(v.substr(0, slash), out.back().signo) ||
          !number(v.substr(slash + 1), out.back().sigev_value, 16)) {
        return Error::corruption("timers: bad signal line");
      }
    } else if (auto v = field(line, "notify:"); !v.empty()) {
      size_t slash = v.find('/'), dot = v.find('.');
      if (slash == std::string_view::npos || dot == std::string_view::npos) return Error::corruption("timers: bad notify line");
      std::string_view how = v.substr(0, slash), who = v.substr(slash + 1, dot - slash - 1);
      int notify = how == "none" ? SIGEV_NONE : how == "thread" ? SIGEV_THREAD : SIGEV_SIGNAL;
      if (who == "tid") notify |= SIGEV_THREAD_ID;
      out.back().notify = notify;
      if (!number(v.substr(dot + 1), out.back().notify_tid)) return Error::corruption("timers: bad notify pid");
    } else if (auto v = field(line, "ClockID:"); !v.empty()) {
      if (!number(v, out.back().clock_id)) return Error::corruption("timers: bad ClockID line");
    }
  }
  return out;
}

}  // namespace

Status probe_process(pid_t pid, pid_t tid, image::ProcessImage& image) {
  FROST_ASSIGN(proc::RemoteSyscall remote, proc::RemoteSyscall::attach(pid, tid));
  constexpr size_t kScratch = 4096;
  FROST_ASSIGN(proc::RemoteMapping scratch, remote.map_anonymous(kScratch));
  const uint64_t at = scratch.addr();

  // Dispositions: one slot per signal in the scratch page, read back at once.
  // Only signals with a handler or SIG_IGN are asked (SigCgt, SigIgn), and
  // SIGCHLD, whose SA_NOCLDWAIT works with SIG_DFL too: every other one is
  // SIG_DFL, whose flags and mask do nothing. Each remote call is a few
  // context switches, and a force snapshot's stop waits for all of them.
  static_assert(sizeof(KernelSigaction) * image::kSignalCount <= kScratch);
  FROST_ASSIGN(proc::ProcStatus status, proc::read_status(pid));
  const uint64_t asked = status.sig_caught | status.sig_ignored | (1ull << (SIGCHLD - 1));
  auto ask = [&](int sig) { return sig != SIGKILL && sig != SIGSTOP && (asked >> (sig - 1) & 1); };
  for (int sig = 1; sig <= image::kSignalCount; ++sig) {
    if (!ask(sig)) continue;
    uint64_t slot = at + (sig - 1) * sizeof(KernelSigaction);
    FROST_TRY(remote.call(SYS_rt_sigaction, sig, 0, long(slot), sizeof(uint64_t)));
  }
  KernelSigaction acts[image::kSignalCount] = {};
  FROST_TRY(remote.memory().read(at, acts, sizeof acts));
  for (int i = 0; i < image::kSignalCount; ++i) {
    image.sigactions[i] = {};
    if (ask(i + 1)) image.sigactions[i] = {acts[i].handler, acts[i].flags, acts[i].restorer, acts[i].mask};
  }

  for (int which = 0; which < 3; ++which) {
    FROST_TRY(remote.call(SYS_getitimer, which, long(at)));
    itimerval v{};
    FROST_TRY(remote.memory().read(at, &v, sizeof v));
    image.itimers[which] = {timeval_us(v.it_interval), timeval_us(v.it_value)};
  }

  Result<std::string> timers = proc::read_proc_file(pid, "timers");
  if (timers.ok()) {
    FROST_ASSIGN(image.posix_timers, parse_timers(*timers));
    for (image::PosixTimerImage& t : image.posix_timers) {
      FROST_TRY(remote.call(SYS_timer_gettime, t.id, long(at)));
      itimerspec v{};
      FROST_TRY(remote.memory().read(at, &v, sizeof v));
      t.interval_ns = timespec_ns(v.it_interval);
      t.value_ns = timespec_ns(v.it_value);
    }
  } else if (!timers.error().is(ErrorKind::kNotFound)) {
    return timers.error();
  }

  FROST_ASSIGN(long brk, remote.call(SYS_brk, 0));
  image.mm.brk = uint64_t(brk);
  return scratch.unmap();
}

Status probe_thread(pid_t pid, image::ThreadImage& thread) {
  FROST_ASSIGN(proc::RemoteSyscall remote, proc::RemoteSyscall::attach(pid, thread.tid));
  FROST_ASSIGN(proc::RemoteMapping scratch, remote.map_anonymous(4096));
  const uint64_t at = scratch.addr();

  FROST_TRY(remote.call(SYS_sigaltstack, 0, long(at)));
  stack_t ss{};
  FROST_TRY(remote.memory().read(at, &ss, sizeof ss));
  thread.sigaltstack = {uint64_t(reinterpret_cast<uintptr_t>(ss.ss_sp)), uint32_t(ss.ss_flags), uint64_t(ss.ss_size)};

  FROST_TRY(remote.call(SYS_prctl, PR_GET_TID_ADDRESS, long(at)));
  FROST_TRY(remote.memory().read(at, &thread.clear_child_tid, sizeof thread.clear_child_tid));

  // get_robust_list answers for any thread we may ptrace, no remote call needed.
  uint64_t head = 0;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, thread.tid, &head, &len) != 0) {
    return Error::io(fmt::format("get_robust_list of thread {}", thread.tid));
  }
  thread.robust_list_head = head;
  thread.robust_list_len = len;
  return scratch.unmap();
}

}  // namespace frost::dump
