#include "proc/ptrace.h"

#include <sched.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "common/unique_fd.h"
#include "proc/proc_status.h"
#include "proc/remote_syscall.h"

namespace frost::proc {
namespace {

constexpr size_t kPageSize = 4096;

// Thread ids of the process, the leader first.
Result<std::vector<pid_t>> list_tasks(pid_t pid) {
  FROST_ASSIGN(std::vector<pid_t> tids, list_threads(pid));
  std::stable_partition(tids.begin(), tids.end(), [&](pid_t t) { return t == pid; });
  return tids;
}

// A thread waiting in vfork() for its child to exec or exit sleeps
// uninterruptibly: PTRACE_INTERRUPT cannot stop it until the child is done,
// and a tracee that has not stopped cannot be detached. Refuse up front
// rather than hold a thread we could neither stop nor let go. (One that
// enters vfork() after this check is waited for up to the stop timeout.)
Status check_no_vfork_wait(pid_t pid) {
  FROST_ASSIGN(std::vector<pid_t> tids, list_threads(pid));
  for (pid_t tid : tids) {
    Result<ProcStatus> st = read_thread_status(pid, tid);
    if (!st.ok() || st->state != 'D') continue;
    Result<std::string> call = read_proc_file(pid, fmt::format("task/{}/syscall", tid));
    if (!call.ok()) continue;
    long nr = std::strtol(call->c_str(), nullptr, 10);
    if (nr == SYS_vfork || nr == SYS_clone || nr == SYS_clone3) {
      return Error(ErrorKind::kBusy,
                   fmt::format("thread {} of process {} waits in vfork() for its child to exec or "
                               "exit, and cannot be stopped until then",
                               tid, pid));
    }
  }
  return Status::Ok();
}

// Why PTRACE_SEIZE said EPERM: another tracer, or a policy.
Error permission_error(pid_t pid, pid_t tid) {
  Result<ProcStatus> status = read_thread_status(pid, tid);
  if (status.ok() && status->tracer_pid != 0) {
    return Error(ErrorKind::kBusy,
                 fmt::format("process {} is already traced by process {} (a debugger, strace, or "
                             "another frost)",
                             pid, status->tracer_pid),
                 EPERM);
  }
  return Error::io(fmt::format("process {} may not be traced (ptrace refused: kernel.yama."
                               "ptrace_scope, CAP_SYS_PTRACE, or a non-dumpable process)",
                               pid),
                   EPERM);
}

// A thread on its way out: seizing it fails and is no loss.
bool thread_exiting(pid_t pid, pid_t tid) {
  Result<ProcStatus> st = read_thread_status(pid, tid);
  return !st.ok() || st->state == 'Z' || st->state == 'X';
}

TraceeEvent classify(int status) {
  if (WIFEXITED(status)) return {TraceeEvent::Kind::kExited, 0, 0};
  if (WIFSIGNALED(status)) return {TraceeEvent::Kind::kExited, WTERMSIG(status), 0};
  int sig = WSTOPSIG(status);
  int event = status >> 16;
  if (event != 0) return {TraceeEvent::Kind::kEventStop, sig, event};
  if (sig == (SIGTRAP | 0x80)) return {TraceeEvent::Kind::kSyscallStop, SIGTRAP, 0};
  return {TraceeEvent::Kind::kSignalStop, sig, 0};
}

// Polling pause: a thread usually stops within microseconds, so the first
// waits only yield; later ones sleep up to 5 ms.
void backoff(int round) {
  if (round < 16) {
    sched_yield();
    return;
  }
  auto us = std::min(50 << std::min(round - 16, 7), 5000);
  std::this_thread::sleep_for(std::chrono::microseconds(us));
}

Status resume_tracee(pid_t tid, int sig) {
  if (ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig))) < 0 &&
      errno != ESRCH) {
    return Error::io(fmt::format("resuming thread {}", tid));
  }
  return Status::Ok();  // ESRCH: killed meanwhile; the next wait reports it
}

}  // namespace

Status check_seizable(pid_t pid) {
  if (pid <= 0) return Error::invalid(fmt::format("{} is not a process id", pid));
  FROST_ASSIGN(ProcStat st, read_stat(pid));
  if (st.is_kernel_thread()) {
    return Error::invalid(fmt::format("process {} ({}) is a kernel thread", pid, st.comm));
  }
  FROST_ASSIGN(ProcStatus status, read_status(pid));
  if (status.tgid == getpid()) {
    return Error::invalid(fmt::format("process {} is frost itself", pid));
  }
  if (status.tgid != pid) {
    return Error::invalid(
        fmt::format("{} is a thread of process {}, not a process", pid, status.tgid));
  }
  if ((st.state == 'Z' || st.state == 'X') && status.threads > 1) {
    // The leader called pthread_exit() and its threads run on: its stop and
    // exit are reported only once they all end, so it cannot be held.
    return Error(ErrorKind::kUnsupported,
                 fmt::format("process {} ({}) runs without its main thread, which has exited",
                             pid, st.comm));
  }
  if (st.state == 'Z' || st.state == 'X') {
    return Error::invalid(fmt::format(
        "process {} ({}) is a zombie: it has exited and waits for its parent to reap it", pid,
        st.comm));
  }
  return check_no_vfork_wait(pid);
}


// --- waiting -----------------------------------------------------------------

Result<TraceeEvent> wait_tracee(pid_t tid, std::optional<Clock::time_point> deadline) {
  int flags = __WALL | (deadline ? WNOHANG : 0);
  for (int round = 0;; ++round) {
    int status = 0;
    pid_t r = ::waitpid(tid, &status, flags);
    if (r == tid) {
      if (WIFSTOPPED(status) || WIFEXITED(status) || WIFSIGNALED(status)) return classify(status);
      continue;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      // Not (or no longer) ours to wait for: reaped already, or never seized.
      if (errno == ECHILD) return TraceeEvent{TraceeEvent::Kind::kExited, 0, 0};
      return Error::io(fmt::format("waiting for thread {}", tid));
    }
    if (Clock::now() >= *deadline) {
      return Error(ErrorKind::kBusy, fmt::format("thread {} did not stop in time", tid));
    }
    backoff(round);
  }
}

Result<int> wait_for_event_stop(pid_t tid, std::optional<Clock::time_point> deadline) {
  for (;;) {
    FROST_ASSIGN(TraceeEvent ev, wait_tracee(tid, deadline));
    switch (ev.kind) {
      case TraceeEvent::Kind::kExited:
        return Error::not_found(fmt::format("thread {} exited", tid));
      case TraceeEvent::Kind::kEventStop:
        if (ev.event == PTRACE_EVENT_STOP) return ev.sig;
        FROST_TRY(resume_tracee(tid, 0));
        break;
      case TraceeEvent::Kind::kSignalStop:
        FROST_TRY(resume_tracee(tid, ev.sig));
        break;
      case TraceeEvent::Kind::kSyscallStop:
        FROST_TRY(resume_tracee(tid, 0));
        break;
    }
  }
}

// --- SeizedProcess -------------------------------------------------------------

Result<SeizedProcess> SeizedProcess::seize(pid_t pid, SeizeOptions options) {
  FROST_TRY(check_seizable(pid));
  SeizedProcess process(pid, options);
  // On failure `process` lets go of the threads seized so far.
  FROST_TRY(process.seize_all());
  return Result<SeizedProcess>(std::move(process));
}

SeizedProcess::SeizedProcess(SeizedProcess&& o) noexcept
    : pid_(o.pid_),
      options_(o.options_),
      attached_(std::exchange(o.attached_, false)),
      threads_(std::move(o.threads_)),
      unstopped_(std::move(o.unstopped_)) {}

SeizedProcess& SeizedProcess::operator=(SeizedProcess&& o) noexcept {
  if (this != &o) {
    (void)resume();
    pid_ = o.pid_;
    options_ = o.options_;
    attached_ = std::exchange(o.attached_, false);
    threads_ = std::move(o.threads_);
    unstopped_ = std::move(o.unstopped_);
  }
  return *this;
}

SeizedProcess::~SeizedProcess() { (void)resume(); }

bool SeizedProcess::job_control_stopped() const {
  return std::any_of(threads_.begin(), threads_.end(),
                     [](const SeizedThread& t) { return t.job_control_stopped; });
}

// Stopped threads cannot create threads, so once every known thread is
// stopped a scan that finds no new one is final.
Status SeizedProcess::seize_all() {
  for (;;) {
    FROST_ASSIGN(std::vector<pid_t> tids, list_tasks(pid_));
    bool added = false;
    for (pid_t tid : tids) {
      bool known = std::any_of(threads_.begin(), threads_.end(),
                               [&](const SeizedThread& t) { return t.tid == tid; });
      if (known) continue;
      FROST_ASSIGN(bool seized, seize_thread(tid));
      added |= seized;
    }
    FROST_TRY(wait_unstopped(Clock::now() + options_.stop_timeout));
    if (threads_.empty() || threads_.front().tid != pid_) {
      return Error::not_found(fmt::format("process {} exited while being seized", pid_));
    }
    if (!added) return Status::Ok();
  }
}

// Waits for every thread seized and not yet seen stopped.
Status SeizedProcess::wait_unstopped(Clock::time_point deadline) {
  for (size_t i = 0; i < threads_.size() && !unstopped_.empty();) {
    pid_t tid = threads_[i].tid;
    if (std::find(unstopped_.begin(), unstopped_.end(), tid) != unstopped_.end()) {
      FROST_TRY(wait_stopped(threads_[i], deadline));
    }
    // wait_stopped drops a thread that exited: then look at the same index again.
    if (i < threads_.size() && threads_[i].tid == tid) ++i;
  }
  return Status::Ok();
}

// Seizes one thread and asks it to stop. False when it was already exiting.
Result<bool> SeizedProcess::seize_thread(pid_t tid) {
  if (ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD)) < 0) {
    int err = errno;
    if (tid != pid_ && (err == ESRCH || err == EPERM) && thread_exiting(pid_, tid)) return false;
    if (err == ESRCH) return Error::not_found(fmt::format("no process {}", pid_));
    if (err == EPERM) return permission_error(pid_, tid);
    return Error::io(fmt::format("seizing thread {} of process {}", tid, pid_), err);
  }
  threads_.push_back(SeizedThread{tid, false, {}});
  unstopped_.push_back(tid);
  // ESRCH: it is dying; the wait will see it go.
  if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) < 0 && errno != ESRCH) {
    return Error::io(fmt::format("interrupting thread {} of process {}", tid, pid_));
  }
  return true;
}

// Waits for the thread's interrupt- or group-stop. A signal-delivery-stop
// that comes first means the thread had dequeued a signal: keep its siginfo,
// withhold it for now (resume with 0) and go on to the interrupt stop, which
// the kernel reports before dequeuing anything else.
Status SeizedProcess::wait_stopped(SeizedThread& thread, Clock::time_point deadline) {
  pid_t tid = thread.tid;
  for (;;) {
    Result<TraceeEvent> ev = wait_tracee(tid, deadline);
    if (!ev.ok()) {
      if (!ev.error().is(ErrorKind::kBusy)) return ev.error();
      return Error(ErrorKind::kBusy,
                   fmt::format("thread {} of process {} did not stop within {} ms (uninterruptible "
                               "sleep, or a vfork parent waiting for its child?)",
                               tid, pid_, options_.stop_timeout.count()));
    }
    switch (ev->kind) {
      case TraceeEvent::Kind::kExited:
        std::erase(unstopped_, tid);
        std::erase_if(threads_, [&](const SeizedThread& t) { return t.tid == tid; });
        return Status::Ok();
      case TraceeEvent::Kind::kEventStop:
        if (ev->event != PTRACE_EVENT_STOP) break;
        thread.job_control_stopped = ev->sig != SIGTRAP;
        std::erase(unstopped_, tid);
        return Status::Ok();
      case TraceeEvent::Kind::kSignalStop: {
        siginfo_t info{};
        if (ptrace(PTRACE_GETSIGINFO, tid, nullptr, &info) == 0) {
          thread.taken_signals.push_back(info);
        }
        break;
      }
      case TraceeEvent::Kind::kSyscallStop:
        break;
    }
    FROST_TRY(resume_tracee(tid, 0));
  }
}

Status SeizedProcess::resume() {
  if (!attached_) return Status::Ok();
  Status first;
  auto note = [&](Status s) {
    if (first.ok() && !s.ok()) first = std::move(s);
  };
  // A thread that never reached its stop can be neither given its signals
  // nor detached (PTRACE_DETACH needs a stopped tracee): give it more time.
  note(wait_unstopped(Clock::now() + options_.stop_timeout));
  for (const SeizedThread& t : threads_) {
    if (!t.taken_signals.empty()) note(requeue_taken_signals(t));
  }
  for (const SeizedThread& t : threads_) note(detach_thread(t));
  for (const SeizedThread& t : threads_) {
    if (t.job_control_stopped) await_job_control_stop(t.tid);
  }
  release();
  return first;
}

// A thread detached from a job-control stop runs a few instructions in the
// kernel before it stops again (the kernel re-arms the stop at detach). Wait
// for that, so that "resumed as it was" holds when resume() returns. A
// SIGCONT meanwhile is legitimate, hence a short bound and no error.
void SeizedProcess::await_job_control_stop(pid_t tid) {
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(1);
  for (int round = 0; Clock::now() < deadline; ++round) {
    Result<ProcStatus> st = read_thread_status(pid_, tid);
    if (!st.ok() || st->state == 'T') return;
    backoff(round);
  }
}

// The thread queues its own signals with rt_tgsigqueueinfo: the kernel lets
// a thread send itself any siginfo, but only a few kinds to another process,
// so this keeps si_code, si_pid, si_value... as they were. tgkill is the
// fallback, with a siginfo of its own.
Status SeizedProcess::requeue_taken_signals(const SeizedThread& thread) {
  Status status;
  Result<RemoteSyscall> remote = RemoteSyscall::attach(pid_, thread.tid);
  std::optional<RemoteMapping> page;
  if (remote.ok()) {
    Result<RemoteMapping> mapped = remote->map_anonymous(kPageSize);
    if (mapped.ok()) page.emplace(std::move(*mapped));
  }
  for (const siginfo_t& info : thread.taken_signals) {
    if (page) {
      auto bytes = reinterpret_cast<const uint8_t*>(&info);
      Status written = remote->write(page->addr(), {bytes, sizeof(info)});
      if (written.ok() && remote->call(SYS_rt_tgsigqueueinfo, pid_, thread.tid, info.si_signo,
                                       static_cast<long>(page->addr())).ok()) {
        continue;
      }
    }
    if (::syscall(SYS_tgkill, pid_, thread.tid, info.si_signo) < 0 && status.ok()) {
      status = Error::io(fmt::format("queueing signal {} again to thread {} of process {}",
                                     info.si_signo, thread.tid, pid_));
    }
  }
  return status;
}

// PTRACE_DETACH needs a tracee in a ptrace-stop. One that is not (a caller
// resumed it under trace, or it exited and waits for us to reap it) is
// stopped again or reaped first: a traced thread left unreaped would keep
// its whole process from being reaped.
Status SeizedProcess::detach_thread(const SeizedThread& thread) {
  pid_t tid = thread.tid;
  if (ptrace(PTRACE_DETACH, tid, nullptr, nullptr) == 0) return Status::Ok();
  if (errno != ESRCH) return Error::io(fmt::format("detaching thread {} of process {}", tid, pid_));
  if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) < 0) {
    int status;
    ::waitpid(tid, &status, __WALL | WNOHANG);  // gone: reap it if it was ours
    return Status::Ok();
  }
  Result<int> stopped = wait_for_event_stop(tid, Clock::now() + options_.stop_timeout);
  if (!stopped.ok()) {
    if (stopped.error().is(ErrorKind::kNotFound)) return Status::Ok();  // exited, reaped
    return stopped.error().context(fmt::format("detaching thread {} of process {}", tid, pid_));
  }
  if (ptrace(PTRACE_DETACH, tid, nullptr, nullptr) == 0) return Status::Ok();
  return Error::io(fmt::format("detaching thread {} of process {}", tid, pid_));
}

Status SeizedProcess::kill() {
  if (!attached_) return Error::invalid(fmt::format("process {} is not seized", pid_));
  if (::kill(pid_, SIGKILL) < 0 && errno != ESRCH) {
    return Error::io(fmt::format("killing process {}", pid_));
  }
  Status first;
  Clock::time_point deadline = Clock::now() + options_.stop_timeout;
  // The leader last: a tracer can reap it only once its thread group is empty.
  for (auto it = threads_.rbegin(); it != threads_.rend(); ++it) {
    for (;;) {
      Result<TraceeEvent> ev = wait_tracee(it->tid, deadline);
      if (!ev.ok()) {
        if (first.ok()) first = ev.error();
        break;
      }
      if (ev->kind == TraceeEvent::Kind::kExited) break;
      (void)resume_tracee(it->tid, 0);  // a stop on its way out (none expected)
    }
  }
  release();
  return first;
}

Status SeizedProcess::kill_in_background() {
  if (!attached_) return Error::invalid(fmt::format("process {} is not seized", pid_));
  // The leader is waited for through a pidfd: if our own process is its
  // parent too, another thread may reap it meanwhile, and its PID may then
  // be a new process's (a melt's) that a wait by number would take events of.
  // The other threads cannot be reaped by anyone else, nor their TIDs reused
  // before the leader is gone.
  UniqueFd leader(int(::syscall(SYS_pidfd_open, pid_, 0)));
  if (!leader) return Error::io(fmt::format("opening a pidfd for process {}", pid_));
  if (::kill(pid_, SIGKILL) < 0 && errno != ESRCH) {
    return Error::io(fmt::format("killing process {}", pid_));
  }
  std::vector<pid_t> others;
  for (const SeizedThread& t : threads_) {
    if (t.tid != pid_) others.push_back(t.tid);
  }
  Clock::time_point deadline = Clock::now() + std::max<Clock::duration>(options_.stop_timeout, std::chrono::seconds(60));
  // Any thread of the tracer's thread group may wait for its tracees.
  std::thread([others = std::move(others), leader = std::move(leader), deadline] {
    for (pid_t tid : others) {
      for (;;) {
        Result<TraceeEvent> ev = wait_tracee(tid, deadline);
        if (!ev.ok() || ev->kind == TraceeEvent::Kind::kExited) break;
        (void)resume_tracee(tid, 0);
      }
    }
    for (int round = 0; Clock::now() < deadline; ++round) {
      siginfo_t info{};
      int r = ::waitid(P_PIDFD, id_t(leader.get()), &info, WEXITED | WNOHANG | __WALL);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 || info.si_pid != 0) return;  // reaped (by us or its parent)
      backoff(round);
    }
  }).detach();
  release();
  return Status::Ok();
}

void SeizedProcess::release() {
  attached_ = false;
  threads_.clear();
  unstopped_.clear();
}

}  // namespace frost::proc
