// A persistent-process workload: a large buffer of which a fixed fraction of
// pages is rewritten every second, paced evenly, while the CPU does counted
// work units in between. It can check all its memory at any time and keeps
// running afterwards, so it can be snapshotted, frozen and melted at any
// moment, many times (bench/persist_bench.cc).
//
//   st_rewriter SIZE FRACTION [STATS_FILE]     e.g. st_rewriter 4G 0.01
//   st_rewriter                                the self-test (run_self_test.sh)
//
// Page p at generation g holds an xorshift64 stream seeded from (p, g). The
// generation of every page lives in an array in the process's own memory, and
// the pages are picked in a fixed pseudo-random permutation of all pages, so
// rewrite number k went to page perm(k mod pages): after K rewrites the
// generations are known from K alone. The check compares every page with its
// generation and every generation with K.
//
// SIGUSR1: full check, "PASS verified <pages> pages gen <K>" or "FAIL page N ...".
// SIGUSR2: "STATS work=<units> rewrites=<K> t=<seconds> genpages=<G>" (since
// start, CLOCK_MONOTONIC; G: the pages of the generation array written since
// the last such line, which a snapshot stores besides the rewritten pages),
// also written to STATS_FILE (temp file + rename), which is
// besides rewritten once a second. The stats file is the only fd it opens, and
// only while writing it.
//
// Self-test (no arguments): 8 MiB, all pages once a second; on SIGUSR1 it
// checks, runs 300 ms more, checks again, prints STATS and PASS/FAIL rewriter,
// and exits. FROST_SELFTEST_SABOTAGE=1 flips a word before the first check.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "st_common.h"

#define PAGE 4096
#define WORDS (PAGE / 8)

// --- what a page must hold ------------------------------------------------------------

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t page_seed(uint64_t page, uint16_t gen) {
  return mix64(page * 0x9e3779b97f4a7c15ull + (uint64_t)gen * 0xd1b54a32d192ed03ull + 1) | 1;
}

static void fill_page(uint64_t *w, uint64_t page, uint16_t gen) {
  uint64_t x = page_seed(page, gen);
  for (int i = 0; i < WORDS; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w[i] = x;
  }
}

// The index of the first word that differs, or -1.
static int check_page(const uint64_t *w, uint64_t page, uint16_t gen) {
  uint64_t x = page_seed(page, gen);
  for (int i = 0; i < WORDS; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if (w[i] != x) return i;
  }
  return -1;
}

// --- which page each rewrite goes to --------------------------------------------------

// A bijection of [0, 2^bits), walked until it lands below pages (cycle walking),
// which makes it a bijection of [0, pages).
static uint64_t n_pages, perm_mask;
static int perm_bits;

static uint64_t perm(uint64_t x) {
  if (perm_bits < 2) return x;
  int s = perm_bits / 2 + 1;
  do {
    x = (x * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull) & perm_mask;
    x ^= x >> s;
    x = (x * 0xbf58476d1ce4e5b9ull) & perm_mask;
    x ^= x >> s;
  } while (x >= n_pages);
  return x;
}

// --- the process's state ----------------------------------------------------------------

static uint64_t *buf;
static uint16_t *gens;  // wraps after 65536 rewrites of one page, harmlessly: content follows it
static uint64_t rewrites, work_units;
static double rate;     // pages per second
static struct timespec start;
static uint64_t sink;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - start.tv_sec) + (double)(t.tv_nsec - start.tv_nsec) / 1e9;
}

// Which pages of the generation array were written since the last STATS line.
#define GENS_PER_PAGE (PAGE / sizeof(uint16_t))
static uint8_t *gen_touched;
static uint64_t gen_pages_touched;

static void rewrite_next(void) {
  uint64_t p = perm(rewrites % n_pages);
  uint64_t gp = p / GENS_PER_PAGE;
  if (!(gen_touched[gp / 8] & (1u << (gp % 8)))) {
    gen_touched[gp / 8] |= (uint8_t)(1u << (gp % 8));
    gen_pages_touched++;
  }
  uint16_t g = (uint16_t)(gens[p] + 1);
  fill_page(buf + p * WORDS, p, g);
  gens[p] = g;
  rewrites++;
}

// One unit of CPU work: a multiply-xor hash of a private 1 KiB block.
static uint64_t work_block[128];

static void work_unit(void) {
  uint64_t h = sink;
  for (int i = 0; i < 128; i++) h = (h ^ work_block[i]) * 0x100000001b3ull;
  sink = h;
  work_units++;
}

// --- the check --------------------------------------------------------------------------

// Every page against its generation, every generation against the rewrite count.
static int verify(void) {
  uint64_t bad = 0, first = 0;
  int first_word = -1;
  char what[200] = "";
  for (uint64_t p = 0; p < n_pages; p++) {
    int w = check_page(buf + p * WORDS, p, gens[p]);
    if (w < 0) continue;
    if (bad++ == 0) first = p, first_word = w;
  }
  if (bad) {
    snprintf(what, sizeof what, "page %llu word %d differs from generation %u (%llu bad pages of %llu)",
             (unsigned long long)first, first_word, gens[first], (unsigned long long)bad,
             (unsigned long long)n_pages);
  } else {
    // Rewrite k went to perm(k mod pages): the first (rewrites mod pages) pages
    // of the permutation are one round ahead of the others.
    uint8_t *ahead = calloc((n_pages + 7) / 8, 1);
    if (ahead == NULL) {
      snprintf(what, sizeof what, "no memory for the generation check");
      bad = 1;
    }
    for (uint64_t k = 0; ahead != NULL && k < rewrites % n_pages; k++) {
      uint64_t p = perm(k);
      ahead[p / 8] |= (uint8_t)(1u << (p % 8));
    }
    for (uint64_t p = 0; ahead != NULL && p < n_pages; p++) {
      uint16_t want = (uint16_t)(rewrites / n_pages + ((ahead[p / 8] >> (p % 8)) & 1));
      if (gens[p] == want) continue;
      if (bad++ == 0)
        snprintf(what, sizeof what, "page %llu has generation %u, %llu rewrites give %u", (unsigned long long)p,
                 gens[p], (unsigned long long)rewrites, want);
    }
    free(ahead);
  }
  if (bad) {
    printf("FAIL %s\n", what);
    if (!st_has_failed()) st_fail("%s", what);
  } else {
    printf("PASS verified %llu pages gen %llu\n", (unsigned long long)n_pages, (unsigned long long)rewrites);
  }
  fflush(stdout);
  return bad == 0;
}

// --- stats ------------------------------------------------------------------------------

static const char *stats_path;

static void write_stats_file(const char *line) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", stats_path) >= (int)sizeof tmp) return;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t n = strlen(line);
  int ok = write(fd, line, n) == (ssize_t)n;
  close(fd);
  if (ok) rename(tmp, stats_path);
}

static void stats(int print) {
  char line[200];
  snprintf(line, sizeof line, "STATS work=%llu rewrites=%llu t=%.6f genpages=%llu\n",
           (unsigned long long)work_units, (unsigned long long)rewrites, now_s(),
           (unsigned long long)gen_pages_touched);
  if (print) {
    fputs(line, stdout);
    fflush(stdout);
    memset(gen_touched, 0, (n_pages / GENS_PER_PAGE + 8) / 8);
    gen_pages_touched = 0;
  }
  if (stats_path != NULL) write_stats_file(line);
}

// --- arguments --------------------------------------------------------------------------

static uint64_t parse_size(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s) return 0;
  switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
  }
  if (*end == 'i' && end[1] == 'B') end += 2;
  return *end == '\0' ? v : 0;
}

static volatile sig_atomic_t usr1_count, usr2_count;

static void on_usr1(int sig) { (void)sig; usr1_count++; }
static void on_usr2(int sig) { (void)sig; usr2_count++; }

int main(int argc, char **argv) {
  st_begin("rewriter");
  int self_test = argc == 1;
  uint64_t bytes = 8u << 20;
  double fraction = 1.0;
  if (!self_test) {
    if (argc < 3 || argc > 4) {
      fprintf(stderr, "usage: %s SIZE FRACTION [STATS_FILE]   (e.g. 4G 0.01)\n", argv[0]);
      return 2;
    }
    bytes = parse_size(argv[1]);
    fraction = strtod(argv[2], NULL);
    if (bytes < PAGE || !(fraction >= 0)) {
      fprintf(stderr, "%s: bad size or fraction\n", argv[0]);
      return 2;
    }
    if (argc == 4) stats_path = argv[3];
  }
  n_pages = bytes / PAGE;
  while ((1ull << perm_bits) < n_pages) perm_bits++;
  perm_mask = perm_bits >= 64 ? ~0ull : (1ull << perm_bits) - 1;
  rate = fraction * (double)n_pages;

  buf = mmap(NULL, n_pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  gens = mmap(NULL, n_pages * sizeof *gens, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
              -1, 0);
  gen_touched = calloc(n_pages / GENS_PER_PAGE / 8 + 2, 1);
  if (buf == MAP_FAILED || gens == MAP_FAILED || gen_touched == NULL) {
    perror("mmap");
    return 2;
  }
  for (uint64_t p = 0; p < n_pages; p++) fill_page(buf + p * WORDS, p, 0);
  for (int i = 0; i < 128; i++) work_block[i] = mix64((uint64_t)i);

  // st_begin left SIGUSR1 blocked for sigsuspend; this loop polls flags instead.
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);
  sigset_t both;
  sigemptyset(&both);
  sigaddset(&both, SIGUSR1);
  sigaddset(&both, SIGUSR2);
  sigprocmask(SIG_UNBLOCK, &both, NULL);

  clock_gettime(CLOCK_MONOTONIC, &start);
  st_ready();

  // Rewrites are due at `rate` from (base_t, base_done). When far behind (the
  // process was stopped, or melted long after), the backlog is dropped
  // instead of rewritten in one burst.
  double base_t = 0, next_stats = 1, finish_at = -1;
  uint64_t base_done = 0;
  sig_atomic_t usr1_done = 0, usr2_done = 0;
  for (;;) {
    for (int i = 0; i < 8; i++) work_unit();
    double t = now_s();
    double due = (double)base_done + (t - base_t) * rate;
    if (t < base_t || due - (double)rewrites > rate + 1) {
      base_t = t;
      base_done = rewrites;
      due = (double)rewrites;
    }
    while ((double)rewrites + 1 <= due) rewrite_next();
    if (stats_path != NULL && t >= next_stats) {
      stats(0);
      next_stats = t + 1;
    }
    if (usr2_count != usr2_done) {
      usr2_done = usr2_count;
      stats(1);
    }
    if (usr1_count != usr1_done) {
      usr1_done = usr1_count;
      if (self_test && finish_at < 0 && st_sabotage()) buf[(n_pages / 2) * WORDS + 7] ^= 1;
      verify();
      if (self_test && finish_at < 0) finish_at = now_s() + 0.3;
    }
    if (self_test && finish_at >= 0 && t >= finish_at) {
      verify();
      stats(1);
      return st_finish();
    }
  }
}
