#include "restore/stub_program.h"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/kernel_compat.h"

// The program's code, assembled with frost but never run by it: its bytes
// are copied into each program made, and the table follows them directly,
// so the one rip-relative reference (to .Ltable) is resolved by the
// assembler and needs no relocation. The table, all 64-bit words:
//   status fd, personality, number of fds, number of sigactions,
//   the fds, then per sigaction: signo, handler, flags, restorer, mask.
// Report: {int step, int errno} to the status fd; step 0 is success, after
// which it waits in pause(); on a failure it exits.
asm(R"(
  .pushsection .rodata.frost_stub_program, "a"
  .balign 16
  .globl frost_stub_program_begin
  .hidden frost_stub_program_begin
frost_stub_program_begin:
  lea .Ltable(%rip), %rbx
  mov $135, %eax               # personality(table[1])
  mov 8(%rbx), %rdi
  syscall
  mov $12, %r12d               # kStubProgramPersonality
  test %rax, %rax
  js .Lreport
  mov 16(%rbx), %r13
  lea 32(%rbx), %r15
.Lfds:
  test %r13, %r13
  jz .Lsigactions
  mov $72, %eax                # fcntl(fd, F_SETFD, FD_CLOEXEC)
  mov (%r15), %rdi
  mov $2, %esi
  mov $1, %edx
  syscall
  mov $11, %r12d               # kStubProgramCloexec
  test %rax, %rax
  js .Lreport
  add $8, %r15
  dec %r13
  jmp .Lfds
.Lsigactions:
  mov 24(%rbx), %r13
.Lsig:
  test %r13, %r13
  jz .Lok
  mov $13, %eax                # rt_sigaction(signo, &act, NULL, 8)
  mov (%r15), %rdi
  lea 8(%r15), %rsi
  xor %edx, %edx
  mov $8, %r10d
  syscall
  mov $9, %r12d                # kStubProgramSigaction
  test %rax, %rax
  js .Lreport
  add $40, %r15
  dec %r13
  jmp .Lsig
.Lok:
  xor %r12d, %r12d
  xor %eax, %eax
.Lreport:
  neg %eax                     # -errno -> errno
  sub $16, %rsp
  mov %r12d, (%rsp)
  mov %eax, 4(%rsp)
  mov $1, %eax                 # write(status fd, &report, 8)
  mov (%rbx), %rdi
  mov %rsp, %rsi
  mov $8, %edx
  syscall
  test %r12d, %r12d
  jnz .Lexit
.Lpause:
  mov $34, %eax
  syscall
  jmp .Lpause
.Lexit:
  mov $231, %eax               # exit_group(1)
  mov $1, %edi
  syscall
  hlt
  .balign 8
  .globl frost_stub_program_end
  .hidden frost_stub_program_end
frost_stub_program_end:
.Ltable:
  .popsection
)");

extern "C" const uint8_t frost_stub_program_begin[];
extern "C" const uint8_t frost_stub_program_end[];

namespace frost::restore {
namespace {

// Low, page-aligned, and out of the way of a non-PIE program's usual 4 MiB:
// any address would do, the melt unmaps it before mapping the image.
constexpr uint64_t kLoadAddress = 0x200000;
constexpr size_t kHeaders = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr);
static_assert(kHeaders % 16 == 0, "the code keeps the 16-byte alignment it was assembled with");

void put(std::vector<uint8_t>& out, uint64_t word) {
  const uint8_t* b = reinterpret_cast<const uint8_t*>(&word);
  out.insert(out.end(), b, b + sizeof word);
}

bool plain_after_exec(const image::SigactionImage& a) {
  // What exec leaves: ignored stays ignored, all else is the default, with
  // no flags, restorer or mask.
  return (a.handler == uintptr_t(SIG_DFL) || a.handler == uintptr_t(SIG_IGN)) && a.flags == 0 &&
         a.restorer == 0 && a.mask == 0;
}

std::vector<uint8_t> program_bytes(const StubProgramPlan& plan) {
  std::vector<uint8_t> out(kHeaders);
  out.insert(out.end(), frost_stub_program_begin, frost_stub_program_end);
  std::vector<int> signals;
  for (int sig = 1; sig <= image::kSignalCount; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (!plain_after_exec(plan.sigactions[sig - 1])) signals.push_back(sig);
  }
  put(out, uint64_t(plan.status_fd));
  put(out, plan.personality);
  put(out, plan.cloexec_fds.size());
  put(out, signals.size());
  for (int fd : plan.cloexec_fds) put(out, uint64_t(fd));
  for (int sig : signals) {
    const image::SigactionImage& a = plan.sigactions[sig - 1];
    put(out, uint64_t(sig));
    put(out, a.handler);
    put(out, a.flags);
    put(out, a.restorer);
    put(out, a.mask);
  }

  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_ident[EI_OSABI] = ELFOSABI_SYSV;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = kLoadAddress + kHeaders;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 2;
  Elf64_Phdr ph[2]{};
  ph[0].p_type = PT_LOAD;
  ph[0].p_flags = PF_R | PF_X;
  ph[0].p_offset = 0;
  ph[0].p_vaddr = ph[0].p_paddr = kLoadAddress;
  ph[0].p_filesz = ph[0].p_memsz = out.size();
  ph[0].p_align = 4096;
  // Without it the kernel would give the program an executable stack.
  ph[1].p_type = PT_GNU_STACK;
  ph[1].p_flags = PF_R | PF_W;
  std::memcpy(out.data(), &eh, sizeof eh);
  std::memcpy(out.data() + sizeof eh, ph, sizeof ph);
  return out;
}

}  // namespace

Result<UniqueFd> make_stub_program(const StubProgramPlan& plan) {
  std::vector<uint8_t> bytes = program_bytes(plan);
  // MFD_EXEC says so where vm.memfd_noexec would refuse it; older kernels lack the flag.
  UniqueFd w(::memfd_create("frost-stub", MFD_CLOEXEC | MFD_EXEC));
  if (!w && errno == EINVAL) w = UniqueFd(::memfd_create("frost-stub", MFD_CLOEXEC));
  if (!w) return Error::io("creating the stub's program (memfd_create)");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(w.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::io("writing the stub's program");
    done += size_t(n);
  }
  UniqueFd r(::open(fmt::format("/proc/self/fd/{}", w.get()).c_str(), O_RDONLY | O_CLOEXEC));
  if (!r) return Error::io("reopening the stub's program read-only");
  return r;
}

}  // namespace frost::restore
