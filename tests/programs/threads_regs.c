// Threads and registers. Four threads each load known values into 11 general
// registers and all 16 vector registers (ymm with AVX, else xmm), set their own
// x87 control word, MXCSR, gs base, name and signal mask, then wait with those
// values live: three blocked in pause(2) (a system call that must resume), one
// spinning in user space. SIGUSR1 reaches the main thread, which wakes each with
// SIGUSR2; each thread then compares its registers and per-thread kernel state
// (fs/gs base, mask, name, rseq registration, robust list, clear_child_tid).
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "st_common.h"

#define NTHREADS 4
struct regblock {
  uint64_t gin[11], gout[11];
  uint8_t vin[16][32], vout[16][32];
  volatile int32_t flag;
  int32_t spin, avx;
};
_Static_assert(offsetof(struct regblock, gout) == 88, "layout");
_Static_assert(offsetof(struct regblock, vin) == 176, "layout");
_Static_assert(offsetof(struct regblock, vout) == 688, "layout");
_Static_assert(offsetof(struct regblock, flag) == 1200, "layout");
_Static_assert(offsetof(struct regblock, spin) == 1204, "layout");
_Static_assert(offsetof(struct regblock, avx) == 1208, "layout");

struct worker {
  int index;
  pthread_t thread;
  struct regblock blk;
  char error[1024];
};
static struct worker workers[NTHREADS];
static __thread struct worker *me;
static __thread uint64_t tls_marker;
static int have_avx;
static const char *gpr_names[11] = {"rbx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r12", "r13", "r14", "r15"};

#define LY(n) "vmovdqu 176+32*" #n "(%%rax), %%ymm" #n "\n\t"
#define LX(n) "movdqu 176+32*" #n "(%%rax), %%xmm" #n "\n\t"
#define SY(n) "vmovdqu %%ymm" #n ", 688+32*" #n "(%%rax)\n\t"
#define SX(n) "movdqu %%xmm" #n ", 688+32*" #n "(%%rax)\n\t"
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)

static void hold_registers(struct regblock *b) {
  __asm__ volatile(
      "sub $128, %%rsp\n\t"  // step over the red zone before pushing
      "push %%rax\n\t"
      "mov 0(%%rax), %%rbx\n\t mov 8(%%rax), %%rdx\n\t mov 16(%%rax), %%rsi\n\t mov 24(%%rax), %%rdi\n\t"
      "mov 32(%%rax), %%r8\n\t mov 40(%%rax), %%r9\n\t mov 48(%%rax), %%r10\n\t mov 56(%%rax), %%r12\n\t"
      "mov 64(%%rax), %%r13\n\t mov 72(%%rax), %%r14\n\t mov 80(%%rax), %%r15\n\t"
      "cmpl $0, 1208(%%rax)\n\t je 2f\n\t" ALL(LY) "jmp 1f\n"
      "2:\n\t" ALL(LX)
      "1:\n\t mov (%%rsp), %%rax\n\t cmpl $0, 1200(%%rax)\n\t jne 4f\n\t"
      "cmpl $0, 1204(%%rax)\n\t je 5f\n\t pause\n\t jmp 1b\n"
      "5:\n\t mov $34, %%eax\n\t syscall\n\t jmp 1b\n"  // pause(2)
      "4:\n\t mov %%rbx, 88(%%rax)\n\t mov %%rdx, 96(%%rax)\n\t mov %%rsi, 104(%%rax)\n\t mov %%rdi, 112(%%rax)\n\t"
      "mov %%r8, 120(%%rax)\n\t mov %%r9, 128(%%rax)\n\t mov %%r10, 136(%%rax)\n\t mov %%r12, 144(%%rax)\n\t"
      "mov %%r13, 152(%%rax)\n\t mov %%r14, 160(%%rax)\n\t mov %%r15, 168(%%rax)\n\t"
      "cmpl $0, 1208(%%rax)\n\t je 6f\n\t" ALL(SY) "vzeroupper\n\t jmp 7f\n"
      "6:\n\t" ALL(SX)
      "7:\n\t pop %%rax\n\t add $128, %%rsp\n\t"
      : "+a"(b)
      :
      : "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "xmm0", "xmm1",
        "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
        "xmm15", "memory", "cc");
}

static void on_usr2(int sig, siginfo_t *si, void *ucv) {
  (void)sig; (void)si;
  if (me == NULL) return;
  if (st_sabotage() && me->index == 1) ((ucontext_t *)ucv)->uc_mcontext.gregs[REG_R12] ^= 0x10;
  me->blk.flag = 1;
}

#define ERR(w, ...) snprintf((w)->error + strlen((w)->error), sizeof (w)->error - strlen((w)->error), __VA_ARGS__)

static void *worker_main(void *arg) {
  struct worker *w = arg;
  me = w;
  int i = w->index;
  tls_marker = 0xfeed0000u + i;
  char name[16];
  snprintf(name, sizeof name, "st-worker-%d", i);
  pthread_setname_np(pthread_self(), name);
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, NULL, &mask);
  sigaddset(&mask, SIGRTMIN + 3 + i);
  if (i & 1) sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_SETMASK, &mask, NULL);
  uint64_t gs = 0x7000000 + 0x1000 * (uint64_t)i;
  syscall(SYS_arch_prctl, ARCH_SET_GS, gs);
  uint16_t fcw = i & 1 ? 0x0F7F : 0x077F, fcw_out = 0;
  uint32_t mxcsr = 0x1F80 | ((uint32_t)(i % 4) << 13), mxcsr_out = 0;
  uint64_t fs = 0, gs_out = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  struct robust_list_head *rl = NULL;
  size_t rl_len = 0;
  syscall(SYS_get_robust_list, 0, &rl, &rl_len);
  int *ctid = NULL;
  prctl(PR_GET_TID_ADDRESS, &ctid);

  for (int r = 0; r < 11; r++) w->blk.gin[r] = 0x1111111100000000ull * (r + 1) + 0x100 * i + r;
  for (int v = 0; v < 16; v++)
    for (int b = 0; b < 32; b++) w->blk.vin[v][b] = (uint8_t)(v * 17 + b * 3 + i * 41 + 1);
  w->blk.spin = i == 2;
  w->blk.avx = have_avx;
  __asm__ volatile("fldcw %0\n\t ldmxcsr %1" : : "m"(fcw), "m"(mxcsr));
  hold_registers(&w->blk);
  __asm__ volatile("fnstcw %0\n\t stmxcsr %1" : "=m"(fcw_out), "=m"(mxcsr_out));
  uint16_t dflt_cw = 0x037F;
  uint32_t dflt_csr = 0x1F80;
  __asm__ volatile("fldcw %0\n\t ldmxcsr %1" : : "m"(dflt_cw), "m"(dflt_csr));

  for (int r = 0; r < 11; r++)
    if (w->blk.gout[r] != w->blk.gin[r]) ERR(w, "%s %#llx != %#llx; ", gpr_names[r], (unsigned long long)w->blk.gout[r], (unsigned long long)w->blk.gin[r]);
  int vlen = have_avx ? 32 : 16;
  for (int v = 0; v < 16; v++)
    if (memcmp(w->blk.vout[v], w->blk.vin[v], vlen)) ERR(w, "%smm%d differs; ", have_avx ? "y" : "x", v);
  if (fcw_out != fcw) ERR(w, "x87 cw %#x != %#x; ", fcw_out, fcw);
  if (mxcsr_out != mxcsr) ERR(w, "mxcsr %#x != %#x; ", mxcsr_out, mxcsr);
  uint64_t fs_now = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_now);
  syscall(SYS_arch_prctl, ARCH_GET_GS, &gs_out);
  if (fs_now != fs) ERR(w, "fs base %#llx != %#llx; ", (unsigned long long)fs_now, (unsigned long long)fs);
  if (gs_out != gs) ERR(w, "gs base %#llx != %#llx; ", (unsigned long long)gs_out, (unsigned long long)gs);
  if (tls_marker != 0xfeed0000u + i) ERR(w, "thread-local variable changed; ");
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  for (int s = 1; s < 65; s++)
    if (sigismember(&now, s) != sigismember(&mask, s)) ERR(w, "signal %d mask bit changed; ", s);
  char path[64], comm[32] = "";
  snprintf(path, sizeof path, "/proc/self/task/%d/comm", gettid());
  FILE *f = fopen(path, "r");
  if (f) { if (!fgets(comm, sizeof comm, f)) comm[0] = 0; fclose(f); }
  comm[strcspn(comm, "\n")] = 0;
  if (strcmp(comm, name) != 0) ERR(w, "name '%s' != '%s'; ", comm, name);
  struct robust_list_head *rl_now = NULL;
  size_t rl_len_now = 0;
  syscall(SYS_get_robust_list, 0, &rl_now, &rl_len_now);
  if (rl_now != rl || rl_len_now != rl_len) ERR(w, "robust list %p/%zu != %p/%zu; ", (void *)rl_now, rl_len_now, (void *)rl, rl_len);
  int *ctid_now = NULL;
  prctl(PR_GET_TID_ADDRESS, &ctid_now);
  if (ctid_now != ctid) ERR(w, "clear_child_tid %p != %p; ", (void *)ctid_now, (void *)ctid);
  if (__rseq_size > 0) {
    void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
    long r = syscall(SYS_rseq, area, __rseq_size < 32 ? 32 : __rseq_size, 0, RSEQ_SIG);  // glibc registers 32 bytes
    if (r == 0) ERR(w, "rseq was not registered; ");
    else if (errno != EBUSY) ERR(w, "rseq registration differs (%s); ", strerror(errno));
  }
  return NULL;
}

int main(void) {
  st_begin("threads_regs");
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) have_avx = (c & bit_AVX) && (c & bit_OSXSAVE);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_usr2;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGUSR2, &sa, NULL);
  pthread_setname_np(pthread_self(), "st-main");
  for (int i = 0; i < NTHREADS; i++) {
    workers[i].index = i;
    pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
  }
  usleep(200000);  // let every worker reach its wait
  st_ready();
  st_wait_usr1();
  for (int i = 0; i < NTHREADS; i++) {
    while (!workers[i].blk.flag) {
      pthread_kill(workers[i].thread, SIGUSR2);
      usleep(20000);
    }
    pthread_join(workers[i].thread, NULL);
    if (workers[i].error[0]) st_fail("thread %d: %s", i, workers[i].error);
  }
  return st_finish();
}
