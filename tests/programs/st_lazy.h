// What the lazy-melt programs (lazy_*.c) share: a big buffer of known
// content, and a way for the program to see for itself that it runs while
// its pages are still pending.
//
// Before a freeze every page of the buffer is resident (it was written).
// After a lazy melt a page is resident only once the page server placed it,
// and the background walk goes in address order, so the buffer's last page
// is among the last to come: mincore() saying it is not resident means the
// process is running before all its pages are in (mincore never faults a
// page in). After an eager melt it is always resident.
#ifndef FROST_TESTS_PROGRAMS_ST_LAZY_H
#define FROST_TESTS_PROGRAMS_ST_LAZY_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define LZ_PAGE 4096

static inline uint64_t lz_word(uint64_t seed, size_t i) {
  return (seed << 40) ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
}

static inline void lz_fill(uint64_t *p, size_t bytes, uint64_t seed, size_t first_word) {
  for (size_t i = 0; i < bytes / 8; i++) p[i] = lz_word(seed, first_word + i);
}

// Index of the first word that differs, or -1.
static inline long lz_check(const uint64_t *p, size_t bytes, uint64_t seed, size_t first_word) {
  for (size_t i = 0; i < bytes / 8; i++)
    if (p[i] != lz_word(seed, first_word + i)) return (long)i;
  return -1;
}

static inline long lz_check_zero(const uint64_t *p, size_t bytes) {
  for (size_t i = 0; i < bytes / 8; i++)
    if (p[i] != 0) return (long)i;
  return -1;
}

// 1 when the page at p is not in the process's page tables.
static inline int lz_pending(const void *p) {
  unsigned char v = 1;
  if (mincore((void *)((uintptr_t)p & ~(uintptr_t)(LZ_PAGE - 1)), LZ_PAGE, &v) != 0) return 0;
  return !(v & 1);
}

// Resident pages of [p, p + bytes).
static inline size_t lz_resident(const void *p, size_t bytes) {
  size_t pages = bytes / LZ_PAGE, n = 0;
  unsigned char *v = malloc(pages);
  if (v == NULL || mincore((void *)p, bytes, v) != 0) { free(v); return 0; }
  for (size_t i = 0; i < pages; i++) n += v[i] & 1;
  free(v);
  return n;
}

static inline void lz_sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

// Size in MiB from argv[1], else the default.
static inline size_t lz_mib(int argc, char **argv, size_t dflt) {
  if (argc > 1) {
    long v = strtol(argv[1], NULL, 10);
    if (v > 0) return (size_t)v;
  }
  return dflt;
}

static inline void *lz_map(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); exit(2); }
  return p;
}

#endif
