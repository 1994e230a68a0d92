// Seizing a live process: every thread held in a ptrace-stop, and let go
// exactly as it was found.
//
// SeizedProcess is the attachment (RAII): PTRACE_SEIZE + PTRACE_INTERRUPT of
// every thread, detach in the destructor. Everything else in proc/ that
// touches a live thread (ThreadState, RemoteSyscall) needs a thread held here.
// ptrace ties a tracee to the *thread* that attached it: use a SeizedProcess,
// and everything built on it, from the thread that created it.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <vector>

#include "common/result.h"

namespace frost::proc {

using Clock = std::chrono::steady_clock;

// What waitpid(__WALL) reported for one traced thread.
struct TraceeEvent {
  enum class Kind {
    kExited,       // the thread is gone (exit or fatal signal)
    kSignalStop,   // signal-delivery-stop: `sig` was dequeued and waits for our verdict
    kEventStop,    // PTRACE_EVENT_* stop; `event` says which, `sig` the stop signal
    kSyscallStop,  // syscall-enter or -exit stop (PTRACE_O_TRACESYSGOOD)
  };
  Kind kind;
  int sig = 0;
  int event = 0;
};

// Waits for the next event of thread `tid`. With a deadline, gives up with
// kBusy when it passes (a thread in uninterruptible sleep, or a vfork parent,
// does not stop until it wakes).
Result<TraceeEvent> wait_tracee(pid_t tid, std::optional<Clock::time_point> deadline = {});

// Waits until `tid` sits in a PTRACE_EVENT_STOP (interrupt- or group-stop).
// Signals that come first are handed back to the thread (delivered), and
// other stops resumed. Returns the stop signal (SIGTRAP for an interrupt).
Result<int> wait_for_event_stop(pid_t tid, std::optional<Clock::time_point> deadline = {});

// Why process `pid` cannot be seized (the errors of SeizedProcess::seize
// below that need no ptrace call), or Ok. Stops nothing.
Status check_seizable(pid_t pid);

// One thread of a seized process.
struct SeizedThread {
  pid_t tid = 0;
  // It was in a job-control stop (SIGSTOP, SIGTSTP...) when seized, and
  // will be again once detached.
  bool job_control_stopped = false;
  // Signals the thread had already dequeued when we stopped it (a
  // signal-delivery-stop came before our interrupt). They are not in any
  // pending queue now; resume() queues them again, with their siginfo.
  std::vector<siginfo_t> taken_signals;
};

struct SeizeOptions {
  // How long a thread may take to reach its stop before seize() gives up.
  std::chrono::milliseconds stop_timeout{10'000};
};

class SeizedProcess {
 public:
  // Stops every thread of process `pid`, including threads created while
  // seizing. Fails, leaving the process as it was, for: no such process
  // (kNotFound), frost itself, a thread id that is not a process id, a
  // zombie, a kernel thread (kInvalidArgument), a process whose main thread
  // has exited (kUnsupported), another tracer, a thread waiting in vfork()
  // (kBusy), and ptrace refused (kIo, EPERM).
  //
  // A thread that does not stop within options.stop_timeout (uninterruptible
  // sleep) fails the seize with kBusy. The kernel detaches only stopped
  // tracees, so if it still has not stopped when the SeizedProcess lets go,
  // it stays attached and stops when it wakes, until this process exits.
  static Result<SeizedProcess> seize(pid_t pid, SeizeOptions options = {});

  SeizedProcess(SeizedProcess&& other) noexcept;
  SeizedProcess& operator=(SeizedProcess&& other) noexcept;
  SeizedProcess(const SeizedProcess&) = delete;
  SeizedProcess& operator=(const SeizedProcess&) = delete;
  // Resumes the process (errors are dropped; call resume() to see them).
  ~SeizedProcess();

  pid_t pid() const { return pid_; }
  bool attached() const { return attached_; }
  // The threads held, the leader first.
  const std::vector<SeizedThread>& threads() const { return threads_; }
  // True when the process was stopped by job control before we came.
  bool job_control_stopped() const;

  // Queues the taken signals again and detaches every thread: each runs on
  // from where it was stopped, a job-control-stopped process stays stopped.
  // Idempotent; keeps going past a thread that fails and reports the first error.
  // Known limit: a taken real-time signal cannot be queued again while the
  // target's signal queue is full (RLIMIT_SIGPENDING, EAGAIN); resume() then
  // reports it. Keeping such a thread in its signal-delivery-stop and
  // detaching with the signal would avoid the requeue altogether.
  Status resume();
  // Seizes threads created since (by frost itself, through remote clone3 calls
  // in a process it is building) and waits until each is stopped.
  Status seize_new_threads() { return seize_all(); }
  // Ends the process with SIGKILL and waits until every thread is gone (the
  // leader is then left to its parent, or reaped if we are the parent).
  Status kill();
  // The same, but returns once SIGKILL is sent: held in their stops, the
  // threads can run no more of the program. The kernel's teardown of the
  // address space (a fifth of a second for 4 GiB) is waited for, and the
  // exits reaped, on a thread of its own. For a freeze, whose image is
  // durable by then; a melt that needs the same PID waits for it.
  Status kill_in_background();

 private:
  SeizedProcess(pid_t pid, SeizeOptions options) : pid_(pid), options_(options), attached_(true) {}

  Status seize_all();
  Result<bool> seize_thread(pid_t tid);
  Status wait_unstopped(Clock::time_point deadline);
  Status wait_stopped(SeizedThread& thread, Clock::time_point deadline);
  Status requeue_taken_signals(const SeizedThread& thread);
  Status detach_thread(const SeizedThread& thread);
  void await_job_control_stop(pid_t tid);
  void release();

  pid_t pid_ = 0;
  SeizeOptions options_;
  bool attached_ = false;
  std::vector<SeizedThread> threads_;
  std::vector<pid_t> unstopped_;  // seized but not yet seen in a stop
};

}  // namespace frost::proc
