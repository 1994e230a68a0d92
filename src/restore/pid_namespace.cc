#include "restore/pid_namespace.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "proc/proc_status.h"

namespace frost::restore {
namespace {

// PID 1 of the namespace. Raw system calls only: it was forked from a
// process with threads.
[[noreturn]] void init_main(int go) {
  ::prctl(PR_SET_NAME, "frost-init", 0, 0, 0);
  // Nothing of frost's may stay open here (the store's lock would).
  if (go > 0) ::syscall(SYS_close_range, 0u, unsigned(go - 1), 0u);
  ::syscall(SYS_close_range, unsigned(go + 1), ~0u, 0u);
  char byte;
  while (::read(go, &byte, 1) < 0 && errno == EINTR) {
  }
  // Its first child is the melted process (PID > 1); others are orphans.
  int main_status = 0;
  bool main_seen = false;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(-1, &status, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      // No child: the melted process may still be frost's (it comes to us
      // when frost exits). kill(-1, 0) reaches everyone in the namespace
      // but us: ESRCH means no one is left.
      if (::kill(-1, 0) != 0) break;
      timespec pause{0, 50'000'000};
      ::nanosleep(&pause, nullptr);
      continue;
    }
    if (!main_seen) {
      main_seen = true;
      main_status = status;
    }
  }
  if (WIFSIGNALED(main_status)) ::_exit(128 + WTERMSIG(main_status));
  ::_exit(WIFEXITED(main_status) ? WEXITSTATUS(main_status) : 0);
}

}  // namespace

Result<PidNamespace> PidNamespace::create() {
  UniqueFd own(::open("/proc/thread-self/ns/pid_for_children", O_RDONLY | O_CLOEXEC));
  if (!own) return Error::io("opening this thread's PID namespace");
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return Error::io("pipe");
  UniqueFd go_r(pipefd[0]), go_w(pipefd[1]);
  clone_args args{};
  args.flags = CLONE_NEWPID;
  args.exit_signal = SIGCHLD;
  long r = ::syscall(SYS_clone3, &args, CLONE_ARGS_SIZE_VER0);
  if (r == 0) {
    ::close(pipefd[1]);
    init_main(pipefd[0]);
  }
  if (r < 0) {
    if (errno == EPERM) return Error::io("a new PID namespace needs CAP_SYS_ADMIN", errno);
    return Error::io("creating a PID namespace");
  }
  pid_t init = pid_t(r);
  UniqueFd pidfd(int(::syscall(SYS_pidfd_open, init, 0)));
  if (!pidfd) {
    ::kill(init, SIGKILL);
    ::waitpid(init, nullptr, 0);
    return Error::io("pidfd_open of the namespace's init");
  }
  return PidNamespace(init, std::move(pidfd), std::move(go_w), std::move(own));
}

PidNamespace::~PidNamespace() {
  if (init_ <= 0) return;
  ::kill(init_, SIGKILL);  // and with it everything inside
  ::waitpid(init_, nullptr, 0);
}

Status PidNamespace::enter() {
  if (::setns(pidfd_.get(), CLONE_NEWPID) != 0) return Error::io("entering the new PID namespace");
  return Status::Ok();
}

Status PidNamespace::leave() {
  if (::setns(own_ns_.get(), CLONE_NEWPID) != 0) return Error::io("leaving the new PID namespace");
  return Status::Ok();
}

void PidNamespace::release() {
  go_.reset();
  init_ = 0;  // no longer ours to kill; it exits when the process does
}

Result<std::vector<std::pair<pid_t, pid_t>>> namespace_tids(pid_t host_pid) {
  FROST_ASSIGN(std::vector<pid_t> tids, proc::list_threads(host_pid));
  std::vector<std::pair<pid_t, pid_t>> out;
  for (pid_t tid : tids) {
    FROST_ASSIGN(proc::ProcStatus st, proc::read_thread_status(host_pid, tid));
    pid_t inner = st.nspid.empty() ? tid : st.nspid.back();
    out.emplace_back(inner, tid);
  }
  return out;
}

}  // namespace frost::restore
