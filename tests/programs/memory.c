// Memory: private anonymous areas, heap/brk, the stack, a guard page, a
// private file mapping with copied-on-write pages, read-only and PROT_NONE
// areas, shared anonymous memory and a memfd mapped twice, and the vdso.
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "st_common.h"

#define PAGE 4096
static sigjmp_buf fault_jmp;
static void on_segv(int sig) { (void)sig; siglongjmp(fault_jmp, 1); }

static int faults(volatile char *p, int write) {
  if (sigsetjmp(fault_jmp, 1)) return 1;
  if (write) *p = 1; else (void)*p;
  return 0;
}

static unsigned char pat(uintptr_t seed, size_t i) { return (unsigned char)((seed * 131 + i * 7 + (i >> 12)) & 0xff); }
static void fill(void *p, size_t n, uintptr_t seed) { for (size_t i = 0; i < n; i++) ((unsigned char *)p)[i] = pat(seed, i); }
static void check_fill(const char *what, const void *p, size_t n, uintptr_t seed) {
  for (size_t i = 0; i < n; i++)
    if (((const unsigned char *)p)[i] != pat(seed, i)) { st_fail("%s differs at byte %zu", what, i); return; }
}
static void check_perms(const char *what, const void *p, const char *want) {
  char perms[5] = "";
  if (st_maps_find(p, perms, NULL, 0) != 0) st_fail("%s at %p is not mapped", what, p);
  else if (strcmp(perms, want) != 0) st_fail("%s at %p has perms %s, expected %s", what, p, perms, want);
}

int main(void) {
  st_begin("memory");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sa.sa_flags = SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);

  size_t anon_len = 64 * PAGE;  // some pages written, some never touched
  char *anon = mmap(NULL, anon_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  fill(anon, 16 * PAGE, 1);
  fill(anon + 40 * PAGE, PAGE, 2);

  char *heap_start = sbrk(0);
  size_t heap_len = 40 * PAGE;
  if (sbrk(heap_len) == (void *)-1) { perror("sbrk"); return 2; }
  fill(heap_start, heap_len, 3);
  char *malloced = malloc(3 * 1024 * 1024);  // big enough to be its own mmap
  fill(malloced, 3 * 1024 * 1024, 4);

  volatile char stack_buf[32 * 1024];
  fill((void *)stack_buf, sizeof stack_buf, 5);

  char *guarded = mmap(NULL, 9 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  mprotect(guarded, PAGE, PROT_NONE);
  fill(guarded + PAGE, 8 * PAGE, 6);

  char path[] = "/tmp/frost-mem.XXXXXX";
  int fd = mkstemp(path);
  char *filebuf = malloc(8 * PAGE);
  fill(filebuf, 8 * PAGE, 7);
  write(fd, filebuf, 8 * PAGE);
  char *fmap = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  memset(fmap + 2 * PAGE, 0xAB, PAGE);  // this page is now a private copy
  fmap[5 * PAGE + 17] = 0x5A;

  char *ro = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  fill(ro, 4 * PAGE, 8);
  mprotect(ro, 4 * PAGE, PROT_READ);
  char *none = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  fill(none, 4 * PAGE, 9);
  mprotect(none, 4 * PAGE, PROT_NONE);

  char *shm = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  char *shm2 = mremap(shm, 0, 4 * PAGE, MREMAP_MAYMOVE);  // a second view of the same pages
  fill(shm, 4 * PAGE, 10);

  int mfd = memfd_create("frost-selftest", 0);
  ftruncate(mfd, 4 * PAGE);
  char *m1 = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  char *m2 = mmap(NULL, 4 * PAGE, PROT_READ, MAP_SHARED, mfd, 0);
  fill(m1, 4 * PAGE, 11);
  if (shm2 == MAP_FAILED || mfd < 0) { perror("shared setup"); return 2; }

  st_ready();
  char *heap_end = sbrk(0);  // after READY's stdio buffer is allocated
  st_wait_usr1();
  if (st_sabotage()) anon[3 * PAGE + 5] ^= 1;
  if (sbrk(0) != heap_end) st_fail("brk %p, expected %p", sbrk(0), (void *)heap_end);

  check_perms("anon", anon, "rw-p");
  check_fill("anon written pages", anon, 16 * PAGE, 1);
  check_fill("anon lone page", anon + 40 * PAGE, PAGE, 2);
  for (size_t i = 16 * PAGE; i < 40 * PAGE; i++) if (anon[i]) { st_fail("untouched anon byte %zu not zero", i); break; }

  check_perms("heap", heap_start, "rw-p");
  check_fill("heap", heap_start, heap_len, 3);
  check_fill("malloc block", malloced, 3 * 1024 * 1024, 4);
  check_fill("stack buffer", (void *)stack_buf, sizeof stack_buf, 5);
  char sp_path[256];
  char perms[5];
  if (st_maps_find((void *)stack_buf, perms, sp_path, sizeof sp_path) != 0 || strcmp(sp_path, "[stack]") != 0)
    st_fail("stack buffer not in [stack] (%s)", sp_path);

  check_perms("guard page", guarded, "---p");
  check_perms("guarded area", guarded + PAGE, "rw-p");
  check_fill("guarded area", guarded + PAGE, 8 * PAGE, 6);
  if (!faults(guarded + 100, 0)) st_fail("guard page is readable");

  check_perms("private file mapping", fmap, "rw-p");
  char fpath[256];
  if (st_maps_find(fmap, perms, fpath, sizeof fpath) != 0 || strcmp(fpath, path) != 0)
    st_fail("private file mapping names '%s', expected '%s'", fpath, path);
  for (int pg = 0; pg < 8; pg++) {
    for (size_t i = 0; i < PAGE; i++) {
      size_t off = pg * PAGE + i;
      unsigned char want = pg == 2 ? 0xAB : (off == 5 * PAGE + 17 ? 0x5A : (unsigned char)filebuf[off]);
      if ((unsigned char)fmap[off] != want) { st_fail("private file mapping differs at %zu", off); pg = 8; break; }
    }
  }
  char back[PAGE];
  pread(fd, back, PAGE, 2 * PAGE);
  if (memcmp(back, filebuf + 2 * PAGE, PAGE) != 0) st_fail("private writes reached the file");

  check_perms("read-only area", ro, "r--p");
  check_fill("read-only area", ro, 4 * PAGE, 8);
  if (!faults(ro + 10, 1)) st_fail("read-only area is writable");
  check_perms("PROT_NONE area", none, "---p");
  if (!faults(none + 10, 0)) st_fail("PROT_NONE area is readable");
  mprotect(none, 4 * PAGE, PROT_READ);
  check_fill("PROT_NONE area contents", none, 4 * PAGE, 9);

  check_perms("shared anon", shm, "rw-s");
  check_fill("shared anon", shm, 4 * PAGE, 10);
  check_fill("shared anon second view", shm2, 4 * PAGE, 10);
  shm[PAGE + 3] = 0x77;
  if (shm2[PAGE + 3] != 0x77) st_fail("shared anon views no longer share pages");

  check_perms("memfd rw", m1, "rw-s");
  check_perms("memfd ro", m2, "r--s");
  check_fill("memfd view 1", m1, 4 * PAGE, 11);
  check_fill("memfd view 2", m2, 4 * PAGE, 11);
  m1[7] = 0x42;
  char c = 0;
  pread(mfd, &c, 1, 7);
  if (m2[7] != 0x42 || c != 0x42) st_fail("memfd views and fd no longer share pages");

  unsigned long vdso = getauxval(AT_SYSINFO_EHDR);
  char vpath[64];
  if (st_maps_find((void *)vdso, perms, vpath, sizeof vpath) != 0 || strcmp(vpath, "[vdso]") != 0)
    st_fail("AT_SYSINFO_EHDR %#lx is not the [vdso] (%s)", vdso, vpath);
  struct timespec t1, t2, r;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  usleep(20000);
  clock_gettime(CLOCK_MONOTONIC, &t2);
  double d = (t2.tv_sec - t1.tv_sec) + (t2.tv_nsec - t1.tv_nsec) * 1e-9;
  if (d < 0.019 || d > 5) st_fail("CLOCK_MONOTONIC advanced %.3f s over a 20 ms sleep", d);
  clock_gettime(CLOCK_REALTIME, &r);
  if (r.tv_sec < 1600000000) st_fail("CLOCK_REALTIME says %ld", (long)r.tv_sec);

  unlink(path);
  return st_finish();
}
