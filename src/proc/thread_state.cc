#include "proc/thread_state.h"

#include <sys/uio.h>

#include <fmt/format.h>

#include "common/kernel_compat.h"
#include "proc/proc_status.h"

namespace frost::proc {
namespace {

// Kernel-internal restart codes; they reach user space only through ptrace.
constexpr long kErestartSys = 512;
constexpr long kErestartNoIntr = 513;
constexpr long kErestartNoHand = 514;
constexpr long kErestartRestartBlock = 516;

constexpr size_t kSyscallInsnSize = 2;  // 0f 05

// Large enough for any XSAVE layout known today (AMX tiles included); the
// kernel shrinks the iovec to the real size. Must be a multiple of 8, the
// regset's element size.
constexpr size_t kXstateProbeSize = 64 * 1024;

Error ptrace_error(const char* what, pid_t tid) {
  int err = errno;
  if (err == ESRCH) {
    return Error(ErrorKind::kNotFound,
                 fmt::format("{} of thread {}: not a stopped tracee", what, tid), err);
  }
  return Error::io(fmt::format("{} of thread {}", what, tid), err);
}

Status get_regset(pid_t tid, int type, iovec* iov, const char* what) {
  if (ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(type), iov) < 0) {
    return ptrace_error(what, tid);
  }
  return Status::Ok();
}

Status set_regset(pid_t tid, int type, iovec* iov, const char* what) {
  if (ptrace(PTRACE_SETREGSET, tid, reinterpret_cast<void*>(type), iov) < 0) {
    return ptrace_error(what, tid);
  }
  return Status::Ok();
}

}  // namespace

Result<user_regs_struct> get_registers(pid_t tid) {
  user_regs_struct regs{};
  iovec iov{&regs, sizeof(regs)};
  FROST_TRY(get_regset(tid, NT_PRSTATUS, &iov, "reading registers"));
  return regs;
}

Status set_registers(pid_t tid, const user_regs_struct& regs) {
  user_regs_struct copy = regs;
  iovec iov{&copy, sizeof(copy)};
  return set_regset(tid, NT_PRSTATUS, &iov, "setting registers");
}

Result<std::vector<uint8_t>> get_xstate(pid_t tid) {
  std::vector<uint8_t> buf(kXstateProbeSize);
  iovec iov{buf.data(), buf.size()};
  FROST_TRY(get_regset(tid, NT_X86_XSTATE, &iov, "reading xstate"));
  buf.resize(iov.iov_len);
  return buf;
}

Status set_xstate(pid_t tid, std::span<const uint8_t> xstate) {
  std::vector<uint8_t> copy(xstate.begin(), xstate.end());
  iovec iov{copy.data(), copy.size()};
  return set_regset(tid, NT_X86_XSTATE, &iov, "setting xstate");
}

Result<uint64_t> get_signal_mask(pid_t tid) {
  uint64_t mask = 0;
  if (ptrace(PTRACE_GETSIGMASK, tid, reinterpret_cast<void*>(sizeof(mask)), &mask) < 0) {
    return ptrace_error("reading the signal mask", tid);
  }
  return mask;
}

Status set_signal_mask(pid_t tid, uint64_t mask) {
  if (ptrace(PTRACE_SETSIGMASK, tid, reinterpret_cast<void*>(sizeof(mask)), &mask) < 0) {
    return ptrace_error("setting the signal mask", tid);
  }
  return Status::Ok();
}

Result<std::vector<siginfo_t>> peek_pending_signals(pid_t tid, SignalQueue queue) {
  std::vector<siginfo_t> out;
  constexpr int kBatch = 32;
  siginfo_t batch[kBatch];
  for (;;) {
    __ptrace_peeksiginfo_args args{};
    args.off = out.size();
    args.flags = queue == SignalQueue::kShared ? PTRACE_PEEKSIGINFO_SHARED : 0;
    args.nr = kBatch;
    long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, batch);
    if (n < 0) return ptrace_error("peeking pending signals", tid);
    if (n == 0) return out;
    out.insert(out.end(), batch, batch + n);
  }
}

Result<RseqConfig> get_rseq(pid_t tid) {
  __ptrace_rseq_configuration conf{};
  if (ptrace(static_cast<__ptrace_request>(PTRACE_GET_RSEQ_CONFIGURATION), tid,
             reinterpret_cast<void*>(sizeof(conf)), &conf) < 0) {
    return ptrace_error("reading the rseq configuration", tid);
  }
  return RseqConfig{conf.rseq_abi_pointer, conf.rseq_abi_size, conf.signature, conf.flags};
}

Result<std::string> thread_name(pid_t pid, pid_t tid) { return read_thread_comm(pid, tid); }

Result<ThreadState> capture_thread(pid_t pid, pid_t tid) {
  ThreadState t;
  t.tid = tid;
  FROST_ASSIGN(t.name, thread_name(pid, tid));
  FROST_ASSIGN(t.regs, get_registers(tid));
  FROST_ASSIGN(t.xstate, get_xstate(tid));
  FROST_ASSIGN(t.sigmask, get_signal_mask(tid));
  FROST_ASSIGN(t.pending, peek_pending_signals(tid, SignalQueue::kThread));
  FROST_ASSIGN(t.rseq, get_rseq(tid));
  return t;
}

SyscallRestart syscall_restart(const user_regs_struct& regs) {
  // orig_rax is -1 outside a system call; the kernel reads it as an int
  // (syscall_get_nr), and rax whole for a 64-bit task (syscall_get_error).
  if (static_cast<int>(regs.orig_rax) < 0) return SyscallRestart::kNone;
  switch (-static_cast<long>(regs.rax)) {
    case kErestartSys:
    case kErestartNoIntr:
    case kErestartNoHand:
      return SyscallRestart::kReexecute;
    case kErestartRestartBlock:
      return SyscallRestart::kRestartBlock;
    default:
      return SyscallRestart::kNone;
  }
}

// A sleep's restart block lives in the old task, but its state is in user
// memory too: nanosleep() and a relative clock_nanosleep() wrote the time
// left into `rem` when they were interrupted, and an absolute
// clock_nanosleep() keeps its deadline in `req`. Sleeping for `rem` (or
// until the deadline) again is exactly what restart_syscall() would do.
static bool resume_sleep(const user_regs_struct& regs, user_regs_struct& out) {
  constexpr unsigned long long kTimerAbstime = 1;
  if (regs.orig_rax == SYS_nanosleep && regs.rsi != 0) {
    out.rax = SYS_nanosleep;
    out.rdi = regs.rsi;  // sleep what is left, and leave what is then left there again
    return true;
  }
  if (regs.orig_rax == SYS_clock_nanosleep) {
    if (regs.rsi & kTimerAbstime) {
      out.rax = SYS_clock_nanosleep;
      return true;
    }
    if (regs.r10 != 0) {
      out.rax = SYS_clock_nanosleep;
      out.rdx = regs.r10;
      return true;
    }
  }
  return false;
}

user_regs_struct registers_for_restore(const user_regs_struct& regs) {
  user_regs_struct out = regs;
  switch (syscall_restart(regs)) {
    case SyscallRestart::kNone:
      break;
    case SyscallRestart::kReexecute:
      out.rax = regs.orig_rax;
      out.rip -= kSyscallInsnSize;
      break;
    case SyscallRestart::kRestartBlock:
      out.rip -= kSyscallInsnSize;
      if (!resume_sleep(regs, out)) out.rax = SYS_restart_syscall;
      break;
  }
  out.orig_rax = static_cast<unsigned long long>(-1);
  return out;
}

}  // namespace frost::proc
