// Shared protocol for the self-checking test programs (see README.md):
// READY line, wait for SIGUSR1 in normal context, collect failures, PASS/FAIL.
#define _GNU_SOURCE
#include "st_common.h"
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *st_name = "?";
static volatile sig_atomic_t st_usr1_seen;
static char st_failures[4096];
static int st_failed;

static void st_on_usr1(int sig) { (void)sig; st_usr1_seen = 1; }

void st_begin(const char *name) {
  st_name = name;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = st_on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigprocmask(SIG_BLOCK, &s, NULL);
}

int st_sabotage(void) {
  const char *v = getenv("FROST_SELFTEST_SABOTAGE");
  return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

void st_ready(void) {
  printf("READY %d\n", (int)getpid());
  fflush(stdout);
}

int st_usr1_arrived(void) { return st_usr1_seen; }

void st_wait_usr1(void) {
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  sigdelset(&cur, SIGUSR1);
  while (!st_usr1_seen) sigsuspend(&cur);
}

void st_fail(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  size_t used = strlen(st_failures);
  if (used + strlen(line) + 3 < sizeof st_failures) {
    if (st_failed) strcat(st_failures, "; ");
    strcat(st_failures, line);
  }
  st_failed = 1;
}

int st_has_failed(void) { return st_failed; }

int st_finish(void) {
  if (st_failed)
    printf("FAIL %s: %s\n", st_name, st_failures);
  else
    printf("PASS %s\n", st_name);
  fflush(stdout);
  return st_failed ? 1 : 0;
}

int st_maps_find(const void *addr, char perms[5], char *path, size_t path_len) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL) return -1;
  char line[1024];
  int found = -1;
  uintptr_t a = (uintptr_t)addr;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char p[5];
    int off = 0;
    if (sscanf(line, "%lx-%lx %4s %*s %*s %*s%n", &lo, &hi, p, &off) < 3) continue;
    if (a < lo || a >= hi) continue;
    memcpy(perms, p, 5);
    if (path != NULL) {
      const char *s = line + off;
      while (*s == ' ') s++;
      snprintf(path, path_len, "%s", s);
      path[strcspn(path, "\n")] = '\0';
    }
    found = 0;
    break;
  }
  fclose(f);
  return found;
}
