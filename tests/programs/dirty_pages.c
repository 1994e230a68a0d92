// A process that rewrites a fraction of a large buffer on request, for the
// incremental-snapshot tests. 4096 pages are filled at start; each SIGUSR2
// starts a round g that rewrites every page i with i % 97 == g % 97 (about 1%)
// and prints "WROTE g". SIGWINCH reshapes the memory once: the first 16 pages
// are dropped (MADV_DONTNEED: they read as zero), the last 1024 unmapped, and
// a new 256-page area mapped and filled; it prints "RESHAPED". SIGURG maps
// the buffer again in place (MAP_FIXED, same size and protection: maps shows
// the same line, but it is a new mapping) with the same contents, and prints
// "REMAPPED". SIGTTIN maps it again in place empty (every page reads zero
// until a later round writes it) and prints "EMPTIED". On SIGUSR1 it
// checks every page against what must be there and prints PASS or FAIL.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "st_common.h"

#define PAGES 4096
#define PAGE 4096

#define DROPPED 16
#define KEPT 3072
#define EXTRA 256

static volatile sig_atomic_t rounds_asked, reshape_asked, remap_asked, empty_asked;

static void on_usr2(int sig) { (void)sig; rounds_asked++; }
static void on_winch(int sig) { (void)sig; reshape_asked = 1; }
static void on_urg(int sig) { (void)sig; remap_asked = 1; }
static void on_ttin(int sig) { (void)sig; empty_asked = 1; }

static uint64_t word(int page, int round, int i) {
  return ((uint64_t)page << 40) ^ ((uint64_t)round << 24) ^ (uint64_t)i * 0x9e3779b97f4a7c15ull;
}

static void fill(uint64_t *p, int page, int round) {
  for (int i = 0; i < PAGE / 8; i++) p[i] = word(page, round, i);
}

int main(void) {
  st_begin("dirty_pages");
  uint64_t *buf = mmap(NULL, (size_t)PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) { perror("mmap"); return 2; }
  for (int p = 0; p < PAGES; p++) fill(buf + (size_t)p * PAGE / 8, p, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR2, &sa, NULL);
  sa.sa_handler = on_winch;
  sigaction(SIGWINCH, &sa, NULL);
  sa.sa_handler = on_urg;
  sigaction(SIGURG, &sa, NULL);
  sa.sa_handler = on_ttin;
  sigaction(SIGTTIN, &sa, NULL);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigaddset(&usr2, SIGWINCH);
  sigaddset(&usr2, SIGURG);
  sigaddset(&usr2, SIGTTIN);
  sigprocmask(SIG_BLOCK, &usr2, NULL);  // taken only inside sigsuspend: no request is missed
  st_ready();

  int done = 0, pages = PAGES, reshaped_after = -1, emptied_after = -1;
  uint64_t *extra = NULL;
  sigset_t wait_set;
  sigemptyset(&wait_set);
  while (!st_usr1_arrived()) {
    sigsuspend(&wait_set);
    while (done < rounds_asked) {
      done++;
      for (int p = done % 97; p < pages; p += 97) fill(buf + (size_t)p * PAGE / 8, p, done);
      printf("WROTE %d\n", done);
      fflush(stdout);
    }
    if (empty_asked && emptied_after < 0) {
      if (mmap(buf, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != buf) {
        perror("mmap");
        return 2;
      }
      emptied_after = done;
      printf("EMPTIED\n");
      fflush(stdout);
    }
    if (remap_asked) {
      remap_asked = 0;
      size_t bytes = (size_t)pages * PAGE;
      uint64_t *copy = malloc(bytes);
      if (copy == NULL) { perror("malloc"); return 2; }
      memcpy(copy, buf, bytes);
      if (mmap(buf, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != buf) {
        perror("mmap");
        return 2;
      }
      memcpy(buf, copy, bytes);
      free(copy);
      printf("REMAPPED\n");
      fflush(stdout);
    }
    if (reshape_asked && reshaped_after < 0) {
      madvise(buf, (size_t)DROPPED * PAGE, MADV_DONTNEED);
      munmap(buf + (size_t)KEPT * PAGE / 8, (size_t)(PAGES - KEPT) * PAGE);
      pages = KEPT;
      extra = mmap(NULL, (size_t)EXTRA * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (extra == MAP_FAILED) { perror("mmap"); return 2; }
      for (int p = 0; p < EXTRA; p++) fill(extra + (size_t)p * PAGE / 8, p + 100000, 0);
      reshaped_after = done;
      printf("RESHAPED\n");
      fflush(stdout);
    }
  }
  int bad = 0;
  for (int p = 0; p < pages && !bad; p++) {
    int last = 0;  // the last round that rewrote page p
    for (int r = 1; r <= done; r++)
      if (p % 97 == r % 97) last = r;
    // A dropped page reads as zero until a later round writes it again.
    int zero = (reshaped_after >= 0 && p < DROPPED && last <= reshaped_after) ||
               (emptied_after >= 0 && last <= emptied_after);
    uint64_t *q = buf + (size_t)p * PAGE / 8;
    for (int i = 0; i < PAGE / 8; i++) {
      if (q[i] != (zero ? 0 : word(p, last, i))) {
        st_fail("page %d word %d: %s expected", p, i, zero ? "zero" : "the last round's value");
        bad = 1;
        break;
      }
    }
  }
  for (int p = 0; extra != NULL && p < EXTRA && !bad; p++) {
    uint64_t *q = extra + (size_t)p * PAGE / 8;
    for (int i = 0; i < PAGE / 8; i++) {
      if (q[i] != word(p + 100000, 0, i)) {
        st_fail("new area page %d differs", p);
        bad = 1;
        break;
      }
    }
  }
  if (st_sabotage()) st_fail("sabotage");
  return st_finish();
}
