#include "restore/vfork_clone.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

// long frost_clone3_run(clone_args* args, size_t size, void (*fn)(void*), void* arg)
//
// The child starts on args->stack with the parent's registers; fn and arg
// travel in r8 and r9, which the syscall instruction leaves alone. The
// parent (or a failed clone) returns the syscall's result. Had the child
// returned through a C function on the parent's stack instead, it would
// overwrite the return address the suspended parent still needs.
asm(R"(
  .text
  .globl frost_clone3_run
  .hidden frost_clone3_run
  .type frost_clone3_run, @function
frost_clone3_run:
  mov %rdx, %r8
  mov %rcx, %r9
  mov $435, %eax
  syscall
  test %rax, %rax
  jnz 1f
  xor %ebp, %ebp
  mov %r9, %rdi
  call *%r8
  mov $231, %eax
  mov $127, %edi
  syscall
  hlt
1:
  ret
  .size frost_clone3_run, .-frost_clone3_run
)");

extern "C" long frost_clone3_run(clone_args* args, size_t size, void (*fn)(void*), void* arg);

namespace frost::restore {
namespace {

constexpr size_t kStackSize = 64 * 1024;

// The child's stack, and frost's signal mask while the child exists.
class ChildStack {
 public:
  ChildStack() : base_(::mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0)) {}
  ~ChildStack() {
    if (base_ != MAP_FAILED) ::munmap(base_, kStackSize);
  }
  ChildStack(const ChildStack&) = delete;
  ChildStack& operator=(const ChildStack&) = delete;
  bool ok() const { return base_ != MAP_FAILED; }
  uint64_t base() const { return reinterpret_cast<uint64_t>(base_); }

 private:
  void* base_;
};

class BlockedSignals {
 public:
  // The raw call: glibc's sigfillset leaves out its two internal signals,
  // whose default action would end the child.
  BlockedSignals() {
    uint64_t all = ~0ull;
    ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old_, sizeof all);
  }
  ~BlockedSignals() { ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old_, nullptr, sizeof old_); }
  BlockedSignals(const BlockedSignals&) = delete;
  BlockedSignals& operator=(const BlockedSignals&) = delete;

 private:
  uint64_t old_ = 0;
};

}  // namespace

Result<pid_t> vfork_clone(clone_args args, void (*fn)(void*), void* arg) {
  ChildStack stack;
  if (!stack.ok()) return Error::io("mapping a stack for the new process");
  args.flags |= CLONE_VM | CLONE_VFORK;
  args.stack = stack.base();
  args.stack_size = kStackSize;
  long r;
  {
    BlockedSignals blocked;
    r = frost_clone3_run(&args, CLONE_ARGS_SIZE_VER1, fn, arg);
  }
  if (r < 0) return Error::io("clone3", int(-r));
  return pid_t(r);
}

}  // namespace frost::restore
