#include "restore/stub.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "common/kernel_compat.h"
#include "restore/stub_program.h"
#include "restore/vfork_clone.h"

namespace frost::restore {
namespace {

// What the stub reports through its status pipe: the step it reached and errno.
// The last three are the program's, after exec (stub_program.h).
enum Step : int {
  kOk = 0, kStepDeathSig, kStepParent, kStepDupHigh, kStepInstall, kStepChdir,
  kStepSession, kStepTty, kStepRlimit, kStepSigaction, kStepExec, kStepCloexec, kStepPersonality,
};
static_assert(int(kStepSigaction) == int(kStubProgramSigaction) && int(kStepCloexec) == int(kStubProgramCloexec) &&
              int(kStepPersonality) == int(kStubProgramPersonality));

const char* step_name(int step) {
  switch (step) {
    case kStepDeathSig: return "setting its parent-death signal";
    case kStepParent: return "finding frost as its parent";
    case kStepDupHigh: return "moving file descriptors";
    case kStepInstall: return "installing file descriptors";
    case kStepChdir: return "changing to the working directory";
    case kStepSession: return "restoring its session and process group";
    case kStepTty: return "taking its terminal (controlling, foreground)";
    case kStepRlimit: return "restoring resource limits";
    case kStepSigaction: return "restoring signal handlers";
    case kStepExec: return "starting its program (execveat)";
    case kStepCloexec: return "marking file descriptors close-on-exec";
    case kStepPersonality: return "restoring its personality";
    default: return "an unknown step";
  }
}

struct Report {
  int step;
  int err;
};

struct KernelSigaction {
  uint64_t handler, flags, restorer, mask;
};

[[noreturn]] void stub_fail(int status_fd, int step) {
  Report r{step, errno};
  (void)::syscall(SYS_write, status_fd, &r, sizeof r);
  ::syscall(SYS_exit_group, 1);
  __builtin_unreachable();
}

struct ChildArgs {
  const StubPlan* plan;
  pid_t parent;
  int status_fd;
  int program_fd;
  int* high;  // scratch the size of fd_from + helpers
};

// The child's life until exec, on frost's memory (vfork_clone): raw system
// calls only, nothing written but `high`.
[[noreturn]] void stub_main(void* arg) {
  const ChildArgs& c = *static_cast<const ChildArgs*>(arg);
  const StubPlan& p = *c.plan;
  const pid_t parent = c.parent;
  const int status_src = c.status_fd;
  int* high = c.high;
  int status_fd = status_src;
  if (::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) stub_fail(status_fd, kStepDeathSig);
  // Frost may have died before the death signal was armed.
  if (::syscall(SYS_getppid) != parent) stub_fail(status_fd, kStepParent);

  // Every fd to keep goes above all numbers in play, then down to its place.
  const size_t nfds = p.fd_from.size(), nhelpers = p.helpers.size();
  int top = p.helper_base + int(nhelpers) + 1;
  for (int f : p.fd_from) top = std::max(top, f + 1);
  for (int f : p.helpers) top = std::max(top, f + 1);
  for (size_t i = 0; i < nfds + nhelpers; ++i) {
    int from = i < nfds ? p.fd_from[i] : p.helpers[i - nfds];
    high[i] = int(::syscall(SYS_fcntl, from, F_DUPFD, top));
    if (high[i] < 0) stub_fail(status_fd, kStepDupHigh);
  }
  int status_high = int(::syscall(SYS_fcntl, status_fd, F_DUPFD, top));
  if (status_high < 0) stub_fail(status_fd, kStepDupHigh);
  status_fd = status_high;
  int program_fd = int(::syscall(SYS_fcntl, c.program_fd, F_DUPFD_CLOEXEC, top));
  if (program_fd < 0) stub_fail(status_fd, kStepDupHigh);
  ::syscall(SYS_close_range, 0u, unsigned(top - 1), 0u);
  // Close-on-exec comes after exec, from the program: exec would close them.
  for (size_t i = 0; i < nfds; ++i) {
    if (::syscall(SYS_dup3, high[i], p.fd_to[i], 0) < 0) stub_fail(status_fd, kStepInstall);
  }
  for (size_t j = 0; j < nhelpers; ++j) {
    if (::syscall(SYS_dup3, high[nfds + j], p.helper_base + int(j), 0) < 0) stub_fail(status_fd, kStepInstall);
  }
  // The status pipe is the last helper; keep it where the helpers are. The
  // program goes right above it, and exec closes it.
  if (::syscall(SYS_dup3, status_fd, p.helper_base + int(nhelpers), 0) < 0) stub_fail(status_fd, kStepInstall);
  status_fd = p.helper_base + int(nhelpers);
  if (::syscall(SYS_dup3, program_fd, status_fd + 1, O_CLOEXEC) < 0) stub_fail(status_fd, kStepInstall);
  program_fd = status_fd + 1;
  ::syscall(SYS_close_range, unsigned(program_fd + 1), ~0u, 0u);

  if (::syscall(SYS_chdir, p.cwd.c_str()) != 0) stub_fail(status_fd, kStepChdir);
  ::syscall(SYS_umask, p.umask);

  switch (p.session) {
    case StubPlan::Session::kKeep: break;
    case StubPlan::Session::kNewSession:
      if (::syscall(SYS_setsid) < 0) stub_fail(status_fd, kStepSession);
      break;
    case StubPlan::Session::kOwnGroup:
      if (::syscall(SYS_setpgid, 0, 0) != 0) stub_fail(status_fd, kStepSession);
      break;
    case StubPlan::Session::kJoinGroup:
      // The group may be gone; then the process stays in frost's.
      (void)::syscall(SYS_setpgid, 0, p.pgid);
      break;
  }
  if (p.foreground_tty >= 0 && p.controlling_tty) {
    if (::syscall(SYS_ioctl, p.helper_base + p.foreground_tty, TIOCSCTTY, 0) != 0) stub_fail(status_fd, kStepTty);
  }
  if (p.foreground_tty >= 0) {
    // SIGTTOU is blocked, so a background group may take the foreground.
    pid_t self = pid_t(::syscall(SYS_getpid));
    if (::syscall(SYS_ioctl, p.helper_base + p.foreground_tty, TIOCSPGRP, &self) != 0) stub_fail(status_fd, kStepTty);
  }
  for (const image::Rlimit& r : p.rlimits) {
    struct rlimit lim {r.cur, r.max};
    if (::syscall(SYS_prlimit64, 0, r.resource, &lim, nullptr) != 0) stub_fail(status_fd, kStepRlimit);
  }
  for (int sig = 1; sig <= image::kSignalCount; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const image::SigactionImage& a = p.sigactions[sig - 1];
    KernelSigaction k{a.handler, a.flags, a.restorer, a.mask};
    if (::syscall(SYS_rt_sigaction, sig, &k, nullptr, sizeof(uint64_t)) != 0) stub_fail(status_fd, kStepSigaction);
  }
  // Ignored signals stay ignored across exec; the program restores the rest.
  static const char* const argv[] = {"frost-stub", nullptr};
  static const char* const envp[] = {nullptr};
  ::syscall(SYS_execveat, program_fd, "", argv, envp, AT_EMPTY_PATH);
  stub_fail(status_fd, kStepExec);
}

}  // namespace

void Stub::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
  }
  pid_ = 0;
}

Result<Stub> Stub::spawn(const StubPlan& plan) {
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) return Error::io("creating the stub's status pipe");
  UniqueFd status_r(status_pipe[0]), status_w(status_pipe[1]);
  std::vector<int> high(plan.fd_from.size() + plan.helpers.size() + 1);
  StubProgramPlan program;
  program.status_fd = plan.helper_base + int(plan.helpers.size());
  program.personality = plan.personality;
  for (size_t i = 0; i < plan.fd_to.size(); ++i) {
    if (plan.fd_cloexec[i]) program.cloexec_fds.push_back(plan.fd_to[i]);
  }
  program.sigactions = plan.sigactions.data();
  FROST_ASSIGN(UniqueFd program_fd, make_stub_program(program));

  // Inside a new PID namespace the parent (outside it) shows as 0.
  ChildArgs child{&plan, plan.new_pidns ? 0 : ::getpid(), status_w.get(), program_fd.get(), high.data()};
  clone_args args{};
  args.exit_signal = SIGCHLD;
  uint64_t tid = uint64_t(plan.pid);
  args.set_tid = reinterpret_cast<uint64_t>(&tid);
  args.set_tid_size = 1;
  Result<pid_t> r = vfork_clone(args, stub_main, &child);
  if (!r.ok()) {
    int err = r.error().err();
    if (err == EEXIST) return Error(ErrorKind::kExists, fmt::format("PID {} is taken", plan.pid), err);
    if (err == EPERM) {
      return Error::io(fmt::format("creating a process with PID {} needs CAP_CHECKPOINT_RESTORE", plan.pid), err);
    }
    return Error::io(fmt::format("creating a process with PID {}", plan.pid), err);
  }
  Stub stub{*r};
  status_w.reset();
  Report rep{-1, 0};
  ssize_t n;
  do {
    n = ::read(status_r.get(), &rep, sizeof rep);
  } while (n < 0 && errno == EINTR);
  if (n != sizeof rep) return Error::io("the new process died before reporting", EIO);
  if (rep.step != kOk) {
    return Error(ErrorKind::kIo, fmt::format("the new process failed {}", step_name(rep.step)), rep.err);
  }
  return stub;
}

}  // namespace frost::restore
