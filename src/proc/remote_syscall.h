// System calls made by a stopped thread of another process, on frost's
// behalf (syscall injection, as CRIU's compel does it).
//
// How: the thread's registers are saved, rip is pointed at a `syscall`
// instruction already present in the target (its [vdso], else any
// executable area, else the one the thread is stopped just after; failing
// all, two bytes written at rip for the duration of the call), the number
// and arguments go into rax/rdi/rsi/rdx/r10/r8/r9, and the thread is run
// with PTRACE_SYSCALL to its syscall-enter and then syscall-exit stop, where
// rax holds the result. Then everything is put back and the thread is parked
// again in a PTRACE_EVENT_STOP, as SeizedProcess left it.
//
// Why syscall stops and not a breakpoint or a single step after the
// instruction: both of those raise SIGTRAP with force_sig(), which resets the
// target's SIGTRAP handler to SIG_DFL if it is blocked or ignored. Syscall
// stops raise no signal.
//
// Why the thread is parked again through PTRACE_INTERRUPT: a thread stopped
// inside a blocking call (read, nanosleep...) holds a restart code in rax and
// is rewound by the kernel's signal path (arch_do_signal_or_restart) on its
// way out. A syscall-exit stop is past that path: resumed from there with
// PTRACE_CONT, the thread returns to user space with -ERESTARTSYS (errno 512)
// in rax. (PTRACE_DETACH happens to save it, since detaching raises
// TIF_SIGPENDING, but nothing else does.) An interrupt stop is inside the
// path again, so the original registers, once restored, are rewound and the
// call resumes, however the thread is resumed.
//
// During the call every signal is blocked (PTRACE_SETSIGMASK), so nothing is
// delivered to the thread while its registers are not its own, and
// orig_rax = -1 keeps the kernel from rewinding our rip as an interrupted call.
#pragma once

#include <sys/mman.h>
#include <sys/types.h>
#include <sys/user.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/result.h"
#include "proc/memory.h"

namespace frost::proc {

class RemoteMapping;

class RemoteSyscall {
 public:
  // Prepares calls in thread `tid` of process `pid`. The thread must be held
  // by the calling thread in a PTRACE_EVENT_STOP with PTRACE_O_TRACESYSGOOD
  // set, as SeizedProcess leaves every thread. Other threads of the process
  // should be stopped too: they could run the borrowed instruction or the
  // memory a call maps.
  //
  // With find_gadget false no instruction is searched for: each call uses the
  // `syscall` the thread was stopped just after, if it was in one, or writes
  // one at rip. That is the path for a process without an executable
  // `syscall` (tests take it on purpose).
  static Result<RemoteSyscall> attach(pid_t pid, pid_t tid, bool find_gadget = true);

  // Runs system call `nr` in the thread. Returns its non-negative result, or
  // an Error naming the call with the errno it returned (kIo), or why it
  // could not be run. On any outcome the thread's registers, signal mask and
  // code are as before, unless the thread is gone (kNotFound).
  Result<long> call(long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
                    long a5 = 0);

  Result<uint64_t> mmap(uint64_t addr, size_t size, int prot, int flags, int fd = -1,
                        off_t offset = 0);
  Status munmap(uint64_t addr, size_t size);
  // Fresh private anonymous memory in the target, unmapped when the result
  // is destroyed. The RemoteMapping must not outlive this RemoteSyscall, and
  // this object must not move while it lives.
  Result<RemoteMapping> map_anonymous(size_t size, int prot = PROT_READ | PROT_WRITE);

  // The target's memory (writes reach read-only pages too).
  ProcessMemory& memory() { return memory_; }
  Status write(uint64_t addr, std::span<const uint8_t> bytes) {
    return memory_.write(addr, bytes.data(), bytes.size());
  }

  pid_t pid() const { return pid_; }
  pid_t tid() const { return tid_; }
  // Address of the `syscall` instruction used; 0 when none was found and
  // each call patches one in at rip.
  uint64_t gadget() const { return gadget_; }
  // Uses the `syscall` instruction at addr from now on (the restorer maps its
  // own before it unmaps the one found at attach).
  void use_gadget(uint64_t addr) { gadget_ = addr; }

 private:
  RemoteSyscall(pid_t pid, pid_t tid, uint64_t gadget)
      : pid_(pid), tid_(tid), gadget_(gadget), memory_(pid) {}

  uint64_t syscall_before_rip(const user_regs_struct& regs);
  Result<long> run(long nr, const long (&args)[6], const user_regs_struct& saved, uint64_t at);
  Status run_to_syscall_stop(const char* which);
  Status restore(const user_regs_struct& saved, uint64_t mask);

  pid_t pid_;
  pid_t tid_;
  uint64_t gadget_;
  ProcessMemory memory_;
};

// Memory mapped in a target by RemoteSyscall::map_anonymous: unmapped (by a
// remote munmap) when destroyed, unless released.
class RemoteMapping {
 public:
  RemoteMapping(RemoteSyscall* owner, uint64_t addr, size_t size)
      : owner_(owner), addr_(addr), size_(size) {}
  RemoteMapping(RemoteMapping&& o) noexcept;
  RemoteMapping& operator=(RemoteMapping&& o) noexcept;
  RemoteMapping(const RemoteMapping&) = delete;
  RemoteMapping& operator=(const RemoteMapping&) = delete;
  ~RemoteMapping() { (void)unmap(); }

  uint64_t addr() const { return addr_; }
  size_t size() const { return size_; }
  // Unmaps now; reports what the destructor would drop.
  Status unmap();
  // Leaves the memory mapped in the target; returns its address.
  uint64_t release();

 private:
  RemoteSyscall* owner_;
  uint64_t addr_;
  size_t size_;
};

}  // namespace frost::proc
