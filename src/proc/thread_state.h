// The CPU and signal state of one thread held in a ptrace-stop (x86-64).
//
// Every call here needs the thread stopped by the calling thread (see
// SeizedProcess). Registers come from PTRACE_GETREGSET, which on x86-64 also
// carries fs_base and gs_base in user_regs_struct.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace frost::proc {

// rseq registration of a thread (PTRACE_GET_RSEQ_CONFIGURATION); all zero
// when the thread registered none.
struct RseqConfig {
  uint64_t abi_pointer = 0;
  uint32_t abi_size = 0;
  uint32_t signature = 0;
  uint32_t flags = 0;
};

// Everything ThreadState reads about one thread.
struct ThreadState {
  pid_t tid = 0;
  std::string name;               // /proc/PID/task/TID/comm
  user_regs_struct regs{};        // general registers, fs_base, gs_base
  std::vector<uint8_t> xstate;    // XSAVE image (standard format): x87, SSE, AVX, AVX-512...
  uint64_t sigmask = 0;           // blocked signals, bit (sig - 1)
  std::vector<siginfo_t> pending; // signals queued to this thread only
  RseqConfig rseq;
};

// Reads all of the above.
Result<ThreadState> capture_thread(pid_t pid, pid_t tid);

Result<user_regs_struct> get_registers(pid_t tid);
Status set_registers(pid_t tid, const user_regs_struct& regs);

// The thread's XSAVE area, as large as the kernel's regset for this CPU
// (its size is learnt from the iovec the kernel shrinks to fit).
Result<std::vector<uint8_t>> get_xstate(pid_t tid);
Status set_xstate(pid_t tid, std::span<const uint8_t> xstate);

// The mask the thread will run with. While it sits in sigsuspend/ppoll the
// kernel reports the mask saved for after the call, and setting one cancels
// that restore: get then set round-trips.
Result<uint64_t> get_signal_mask(pid_t tid);
Status set_signal_mask(pid_t tid, uint64_t mask);

enum class SignalQueue { kThread, kShared };
// Signals queued and not yet delivered, oldest first, without dequeuing them.
// kShared is the process-wide queue (any thread of the process may be given).
Result<std::vector<siginfo_t>> peek_pending_signals(pid_t tid, SignalQueue queue);

Result<RseqConfig> get_rseq(pid_t tid);
Result<std::string> thread_name(pid_t pid, pid_t tid);

// --- system call restart ---------------------------------------------------
//
// A thread stopped while blocked in a system call is stopped on its way out
// of the kernel: the call returned a restart code in rax, orig_rax still
// holds its number, and rip is just past the 2-byte `syscall` instruction.
// Had it not stopped, the kernel's signal code would have rewound it there
// (arch_do_signal_or_restart) on the same way out. A restored thread never
// takes that way out, so the rewind must be baked into its registers.

enum class SyscallRestart {
  kNone,          // not in a system call, or the call completed
  kReexecute,     // -ERESTARTSYS/-ERESTARTNOINTR/-ERESTARTNOHAND: run it again
  kRestartBlock,  // -ERESTART_RESTARTBLOCK: continue through restart_syscall()
};

SyscallRestart syscall_restart(const user_regs_struct& regs);

// The registers that resume the interrupted call when set on a restored
// thread: rip back onto the `syscall` instruction, rax = the call to make,
// orig_rax = -1 so the kernel does not apply its own rewind a second time.
//
// Caveats. kRestartBlock continues via restart_syscall(), whose state (the
// restart block: e.g. a nanosleep's deadline) lives in the kernel's task,
// not in memory; in a new task restart_syscall() finds none and returns
// -EINTR, which callers of futex, poll & co. already handle. Sleeps are the
// exception: nanosleep() and clock_nanosleep() are re-issued with the time
// left, which they wrote to user memory when interrupted. A re-executed call
// does not learn that a signal handler ran meanwhile: one queued for delivery
// at restore re-enters a pause()/sigsuspend() instead of ending it with EINTR.
user_regs_struct registers_for_restore(const user_regs_struct& regs);

}  // namespace frost::proc
