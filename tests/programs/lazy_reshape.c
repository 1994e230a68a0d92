// Changes its memory while its pages are pending: a 64 MiB buffer of known
// content in eight 8 MiB parts. As soon as the buffer's last page is found
// not resident (right after a lazy melt; otherwise when SIGUSR1 comes) it
//   part 4: MADV_DONTNEED                      -> reads as zero
//   part 5: munmap                              -> gone
//   part 6: mremap to a new place, grown by half -> content moved, tail zero
//   part 7: mremap MREMAP_DONTUNMAP             -> content moved, old range zero
// prints "RESHAPED" (with "PENDING r/t" when pages were pending) and checks
// everything; on SIGUSR1 it checks everything again. Parts 0-3 stay as they were.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "st_common.h"
#include "st_lazy.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PART ((size_t)8 << 20)
#define PARTS 8

static uint64_t *buf, *grown, *moved;

static void reshape(void) {
  char *b = (char *)buf;
  if (madvise(b + 4 * PART, PART, MADV_DONTNEED) != 0) st_fail("madvise: %s", strerror(errno));
  if (munmap(b + 5 * PART, PART) != 0) st_fail("munmap: %s", strerror(errno));
  grown = mremap(b + 6 * PART, PART, PART + PART / 2, MREMAP_MAYMOVE);
  if (grown == MAP_FAILED) st_fail("mremap: %s", strerror(errno));
  moved = mremap(b + 7 * PART, PART, PART, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
  if (moved == MAP_FAILED) st_fail("mremap DONTUNMAP: %s", strerror(errno));
}

static void check(const char *when) {
  char *b = (char *)buf;
  for (int part = 0; part < 4; part++) {
    long bad = lz_check((uint64_t *)(b + part * PART), PART, 5, part * PART / 8);
    if (bad >= 0) st_fail("%s: part %d word %ld differs", when, part, bad);
  }
  long bad = lz_check_zero((uint64_t *)(b + 4 * PART), PART);
  if (bad >= 0) st_fail("%s: dropped part word %ld is not zero", when, bad);
  unsigned char v;
  if (mincore(b + 5 * PART, LZ_PAGE, &v) == 0 || errno != ENOMEM) st_fail("%s: the unmapped part is mapped", when);
  if (grown != MAP_FAILED && grown != NULL) {
    if ((bad = lz_check(grown, PART, 5, 6 * PART / 8)) >= 0) st_fail("%s: grown part word %ld differs", when, bad);
    if ((bad = lz_check_zero(grown + PART / 8, PART / 2)) >= 0) st_fail("%s: grown tail word %ld is not zero", when, bad);
  }
  if (moved != MAP_FAILED && moved != NULL) {
    if ((bad = lz_check(moved, PART, 5, 7 * PART / 8)) >= 0) st_fail("%s: moved part word %ld differs", when, bad);
    if ((bad = lz_check_zero((uint64_t *)(b + 7 * PART), PART)) >= 0)
      st_fail("%s: the range moved away from, word %ld, is not zero", when, bad);
  }
}

int main(void) {
  st_begin("lazy_reshape");
  buf = lz_map(PARTS * PART);
  lz_fill(buf, PARTS * PART, 5, 0);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &s, NULL);
  st_ready();
  const char *last = (const char *)buf + PARTS * PART - 1;
  int reshaped = 0;
  while (!reshaped) {
    int pending = lz_pending(last);
    if (pending || st_usr1_arrived()) {
      size_t resident = lz_resident(buf, PARTS * PART);
      reshape();
      reshaped = 1;
      if (pending) printf("RESHAPED PENDING %zu/%zu\n", resident, PARTS * PART / LZ_PAGE);
      else printf("RESHAPED\n");
      fflush(stdout);
      check("right after");
    } else {
      lz_sleep_ms(1);
    }
  }
  while (!st_usr1_arrived()) lz_sleep_ms(1);
  if (st_sabotage()) buf[PART / 16] ^= 1;
  check("at the end");
  return st_finish();
}
