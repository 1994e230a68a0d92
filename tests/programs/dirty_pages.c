// A process that rewrites a fraction of a large buffer on request, for the
// incremental-snapshot tests. 4096 pages are filled at start; each SIGUSR2
// starts a round g that rewrites every page i with i % 97 == g % 97 (about 1%)
// and prints "WROTE g". On SIGUSR1 it checks every page against what the
// rounds so far must have left and prints PASS or FAIL.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "st_common.h"

#define PAGES 4096
#define PAGE 4096

static volatile sig_atomic_t rounds_asked;

static void on_usr2(int sig) { (void)sig; rounds_asked++; }

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
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigprocmask(SIG_BLOCK, &usr2, NULL);  // taken only inside sigsuspend: no round is missed
  st_ready();

  int done = 0;
  sigset_t wait_set;
  sigemptyset(&wait_set);
  while (!st_usr1_arrived()) {
    sigsuspend(&wait_set);
    while (done < rounds_asked) {
      done++;
      for (int p = done % 97; p < PAGES; p += 97) fill(buf + (size_t)p * PAGE / 8, p, done);
      printf("WROTE %d\n", done);
      fflush(stdout);
    }
  }
  int bad = 0;
  for (int p = 0; p < PAGES && !bad; p++) {
    int last = 0;  // the last round that rewrote page p
    for (int r = 1; r <= done; r++)
      if (p % 97 == r % 97) last = r;
    uint64_t *q = buf + (size_t)p * PAGE / 8;
    for (int i = 0; i < PAGE / 8; i++) {
      if (q[i] != word(p, last, i)) {
        st_fail("page %d word %d: round %d's value expected", p, i, last);
        bad = 1;
        break;
      }
    }
  }
  if (st_sabotage()) st_fail("sabotage");
  return st_finish();
}
