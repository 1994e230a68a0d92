#include "proc/remote_syscall.h"

#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "proc/proc_maps.h"
#include "proc/ptrace.h"
#include "proc/thread_state.h"

namespace frost::proc {
namespace {

constexpr uint8_t kSyscallInsn[2] = {0x0f, 0x05};
constexpr unsigned long long kUserCs64 = 0x33;  // __USER_CS: the task runs 64-bit code
constexpr unsigned long long kNoSyscall = static_cast<unsigned long long>(-1);
constexpr long kMaxErrno = 4095;
// Stray stops (a pending interrupt, a job-control stop) one call may meet.
constexpr int kMaxDetours = 16;
// How much of one executable area is searched for a `syscall` instruction.
constexpr size_t kScanLimit = 1 << 20;
constexpr size_t kScanPiece = 64 * 1024;

std::string syscall_name(long nr) {
  switch (nr) {
    case SYS_read: return "read";
    case SYS_write: return "write";
    case SYS_open: return "open";
    case SYS_close: return "close";
    case SYS_mmap: return "mmap";
    case SYS_mprotect: return "mprotect";
    case SYS_munmap: return "munmap";
    case SYS_brk: return "brk";
    case SYS_rt_sigaction: return "rt_sigaction";
    case SYS_rt_sigprocmask: return "rt_sigprocmask";
    case SYS_ioctl: return "ioctl";
    case SYS_mremap: return "mremap";
    case SYS_madvise: return "madvise";
    case SYS_dup: return "dup";
    case SYS_dup2: return "dup2";
    case SYS_getpid: return "getpid";
    case SYS_sendmsg: return "sendmsg";
    case SYS_recvmsg: return "recvmsg";
    case SYS_fcntl: return "fcntl";
    case SYS_sigaltstack: return "sigaltstack";
    case SYS_prctl: return "prctl";
    case SYS_arch_prctl: return "arch_prctl";
    case SYS_gettid: return "gettid";
    case SYS_set_tid_address: return "set_tid_address";
    case SYS_rt_tgsigqueueinfo: return "rt_tgsigqueueinfo";
    case SYS_openat: return "openat";
    case SYS_set_robust_list: return "set_robust_list";
    case SYS_dup3: return "dup3";
    case SYS_memfd_create: return "memfd_create";
    case SYS_userfaultfd: return "userfaultfd";
    case SYS_rseq: return "rseq";
    case SYS_clone3: return "clone3";
    default: return fmt::format("syscall {}", nr);
  }
}

struct CodeArea {
  uint64_t start;
  uint64_t end;
};

// Executable areas of the process, [vdso] first: it is small, always there,
// and its clock_gettime fallback holds a `syscall`. [vsyscall] is left out:
// it is emulated and faults anywhere but its three entry points.
Result<std::vector<CodeArea>> executable_areas(pid_t pid) {
  FROST_ASSIGN(std::vector<MemoryArea> areas, read_maps(pid));
  std::vector<CodeArea> vdso, rest;
  for (const MemoryArea& a : areas) {
    if (!(a.prot & PROT_EXEC) || a.kind == AreaKind::kVsyscall) continue;
    (a.kind == AreaKind::kVdso ? vdso : rest).push_back({a.start, a.end});
  }
  vdso.insert(vdso.end(), rest.begin(), rest.end());
  return vdso;
}

// The address of the first `syscall` instruction in the area, or 0. Any
// `0f 05` byte pair will do, even one that straddles two real instructions:
// the CPU decodes from wherever rip points.
uint64_t find_in_area(ProcessMemory& memory, const CodeArea& area) {
  uint64_t end = std::min(area.end, area.start + kScanLimit);
  std::vector<uint8_t> buf(kScanPiece + 1);
  for (uint64_t at = area.start; at < end; at += kScanPiece) {
    size_t len = std::min<uint64_t>(kScanPiece + 1, end - at);
    if (!memory.read(at, buf.data(), len).ok()) return 0;
    auto it = std::search(buf.begin(), buf.begin() + len, std::begin(kSyscallInsn),
                          std::end(kSyscallInsn));
    if (it != buf.begin() + len) return at + (it - buf.begin());
  }
  return 0;
}

Result<uint64_t> find_syscall_instruction(pid_t pid, ProcessMemory& memory) {
  FROST_ASSIGN(auto areas, executable_areas(pid));
  for (const CodeArea& area : areas) {
    if (uint64_t at = find_in_area(memory, area)) return at;
  }
  return uint64_t{0};
}

Error ptrace_error(const char* what, pid_t tid) {
  int err = errno;
  if (err == ESRCH) {
    return Error(ErrorKind::kNotFound, fmt::format("{} thread {}: not a stopped tracee", what, tid),
                 err);
  }
  return Error::io(fmt::format("{} thread {}", what, tid), err);
}

// Two bytes of `syscall` written over the code at rip for one call, when the
// target has no such instruction of its own. Every thread is stopped, so
// none can run the patched bytes; the originals go back on every path.
class CodePatch {
 public:
  static Result<CodePatch> apply(ProcessMemory& memory, uint64_t at) {
    CodePatch p(memory, at);
    FROST_TRY(memory.read(at, p.saved_, sizeof(p.saved_)));
    FROST_TRY(memory.write(at, kSyscallInsn, sizeof(kSyscallInsn)));
    p.applied_ = true;
    return p;
  }
  CodePatch(CodePatch&& o) noexcept
      : memory_(o.memory_), at_(o.at_), applied_(std::exchange(o.applied_, false)) {
    std::memcpy(saved_, o.saved_, sizeof(saved_));
  }
  ~CodePatch() { (void)undo(); }
  Status undo() {
    if (!std::exchange(applied_, false)) return Status::Ok();
    return memory_->write(at_, saved_, sizeof(saved_));
  }

 private:
  CodePatch(ProcessMemory& memory, uint64_t at) : memory_(&memory), at_(at) {}
  ProcessMemory* memory_;
  uint64_t at_;
  uint8_t saved_[sizeof(kSyscallInsn)] = {};
  bool applied_ = false;
};

bool is_fault_signal(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP;
}

}  // namespace

Result<RemoteSyscall> RemoteSyscall::attach(pid_t pid, pid_t tid, bool find_gadget) {
  uint64_t gadget = 0;
  if (find_gadget) {
    ProcessMemory memory(pid);
    FROST_ASSIGN(gadget, find_syscall_instruction(pid, memory));
  }
  return RemoteSyscall(pid, tid, gadget);
}

// Without a gadget: a thread stopped in a system call sits just past the
// `syscall` it made (rip - 2), which serves as well as any other.
uint64_t RemoteSyscall::syscall_before_rip(const user_regs_struct& regs) {
  if (static_cast<int>(regs.orig_rax) < 0) return 0;
  uint8_t insn[sizeof(kSyscallInsn)];
  uint64_t at = regs.rip - sizeof(insn);
  if (!memory_.read(at, insn, sizeof(insn)).ok()) return 0;
  return std::memcmp(insn, kSyscallInsn, sizeof(insn)) == 0 ? at : 0;
}

Result<long> RemoteSyscall::call(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  const long args[6] = {a0, a1, a2, a3, a4, a5};
  std::string where = fmt::format("{}() in thread {} of process {}", syscall_name(nr), tid_, pid_);
  FROST_ASSIGN(user_regs_struct saved, get_registers(tid_));
  if (saved.cs != kUserCs64) {
    return Error(ErrorKind::kUnsupported, where + ": the thread runs 32-bit code");
  }
  FROST_ASSIGN(uint64_t mask, get_signal_mask(tid_));
  std::optional<CodePatch> patch;
  uint64_t at = gadget_;
  if (at == 0) at = syscall_before_rip(saved);
  if (at == 0) {
    FROST_ASSIGN(CodePatch p, CodePatch::apply(memory_, saved.rip));
    patch.emplace(std::move(p));
    at = saved.rip;
  }
  Status blocked = set_signal_mask(tid_, ~uint64_t{0});
  Result<long> result = blocked.ok() ? run(nr, args, saved, at) : Result<long>(blocked.error());
  Status restored = restore(saved, mask);
  Status unpatched = patch ? patch->undo() : Status::Ok();
  if (!restored.ok()) return restored.error().context(where);
  if (!unpatched.ok()) return unpatched.error().context(where);
  if (!result.ok()) return result.error().context(where);
  long ret = *result;
  if (ret < 0 && ret >= -kMaxErrno) return Error::io(where, static_cast<int>(-ret));
  return ret;
}

// Takes the thread from its stop through the injected call. Whatever
// happens, it returns with the thread in some ptrace-stop, for restore().
Result<long> RemoteSyscall::run(long nr, const long (&args)[6], const user_regs_struct& saved,
                                uint64_t at) {
  user_regs_struct regs = saved;
  regs.rip = at;
  regs.orig_rax = kNoSyscall;
  regs.rax = static_cast<unsigned long long>(nr);
  regs.rdi = args[0];
  regs.rsi = args[1];
  regs.rdx = args[2];
  regs.r10 = args[3];
  regs.r8 = args[4];
  regs.r9 = args[5];
  FROST_TRY(set_registers(tid_, regs));
  FROST_TRY(run_to_syscall_stop("entering"));
  FROST_ASSIGN(user_regs_struct entry, get_registers(tid_));
  bool ours = entry.orig_rax == static_cast<unsigned long long>(nr) &&
              entry.rip == at + sizeof(kSyscallInsn);
  if (!ours) {
    // Not our call: skip it (orig_rax = -1 at the entry stop) and bail out.
    entry.orig_rax = kNoSyscall;
    FROST_TRY(set_registers(tid_, entry));
    FROST_TRY(run_to_syscall_stop("leaving"));
    return Error(ErrorKind::kIo,
                 fmt::format("the thread entered system call {} at {:#x}, not ours",
                             static_cast<long>(entry.orig_rax), entry.rip));
  }
  FROST_TRY(run_to_syscall_stop("leaving"));
  FROST_ASSIGN(user_regs_struct exit, get_registers(tid_));
  return static_cast<long>(exit.rax);
}

// Resumes the thread until its next syscall stop, stepping over stops that
// are not ours: a pending interrupt (seizing sets one), a job-control stop.
// A stop signal (SIGSTOP can't be blocked) is delivered, as it would have been.
Status RemoteSyscall::run_to_syscall_stop(const char* which) {
  int deliver = 0;
  for (int i = 0; i < kMaxDetours; ++i) {
    if (ptrace(PTRACE_SYSCALL, tid_, nullptr, reinterpret_cast<void*>(deliver)) < 0) {
      return ptrace_error("resuming", tid_);
    }
    deliver = 0;
    FROST_ASSIGN(TraceeEvent ev, wait_tracee(tid_));
    switch (ev.kind) {
      case TraceeEvent::Kind::kSyscallStop:
        return Status::Ok();
      case TraceeEvent::Kind::kEventStop:
        break;
      case TraceeEvent::Kind::kSignalStop:
        if (is_fault_signal(ev.sig)) {
          return Error(ErrorKind::kIo, fmt::format("signal {} while {} the call", ev.sig, which));
        }
        deliver = ev.sig;
        break;
      case TraceeEvent::Kind::kExited:
        return Error::not_found(fmt::format("thread {} exited while {} the call", tid_, which));
    }
  }
  return Error(ErrorKind::kIo,
               fmt::format("thread {} kept stopping while {} the call", tid_, which));
}

// Puts registers and mask back, then parks the thread in an interrupt stop:
// PTRACE_INTERRUPT makes it trap as soon as it runs, PTRACE_CONT lets it
// reach the trap (inside the kernel's signal path, before the restart
// rewind), without running a single user instruction.
Status RemoteSyscall::restore(const user_regs_struct& saved, uint64_t mask) {
  Status regs = set_registers(tid_, saved);
  Status sigmask = set_signal_mask(tid_, mask);
  if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) < 0) {
    return ptrace_error("interrupting", tid_);
  }
  if (ptrace(PTRACE_CONT, tid_, nullptr, nullptr) < 0) return ptrace_error("resuming", tid_);
  Result<int> parked = wait_for_event_stop(tid_);
  if (!regs.ok()) return regs;
  if (!sigmask.ok()) return sigmask;
  if (!parked.ok()) return parked.error();
  return Status::Ok();
}

Result<uint64_t> RemoteSyscall::mmap(uint64_t addr, size_t size, int prot, int flags, int fd,
                                     off_t offset) {
  FROST_ASSIGN(long r, call(SYS_mmap, static_cast<long>(addr), static_cast<long>(size), prot, flags,
                            fd, offset));
  return static_cast<uint64_t>(r);
}

Status RemoteSyscall::munmap(uint64_t addr, size_t size) {
  FROST_TRY(call(SYS_munmap, static_cast<long>(addr), static_cast<long>(size)));
  return Status::Ok();
}

Result<RemoteMapping> RemoteSyscall::map_anonymous(size_t size, int prot) {
  FROST_ASSIGN(uint64_t addr, mmap(0, size, prot, MAP_PRIVATE | MAP_ANONYMOUS));
  return RemoteMapping(this, addr, size);
}

RemoteMapping::RemoteMapping(RemoteMapping&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)), addr_(o.addr_), size_(o.size_) {}

RemoteMapping& RemoteMapping::operator=(RemoteMapping&& o) noexcept {
  if (this != &o) {
    (void)unmap();
    owner_ = std::exchange(o.owner_, nullptr);
    addr_ = o.addr_;
    size_ = o.size_;
  }
  return *this;
}

Status RemoteMapping::unmap() {
  RemoteSyscall* owner = std::exchange(owner_, nullptr);
  if (!owner) return Status::Ok();
  return owner->munmap(addr_, size_);
}

uint64_t RemoteMapping::release() {
  owner_ = nullptr;
  return addr_;
}

}  // namespace frost::proc
