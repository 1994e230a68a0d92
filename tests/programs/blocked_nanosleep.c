// A process blocked in nanosleep(2) for an hour. SIGUSR1 interrupts it: the
// sleep must end only because of SIGUSR1 (EINTR, handler ran) and report a
// remaining time within the requested hour. Then a short sleep must really sleep.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "st_common.h"

static double now_mono(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
  st_begin("blocked_nanosleep");
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &s, NULL);
  struct timespec req = {3600, 0}, rem = {0, 0};
  st_ready();

  int r = nanosleep(&req, &rem);
  int err = errno;
  if (r == 0) st_fail("nanosleep completed instead of being interrupted");
  else if (err != EINTR) st_fail("nanosleep failed with %s, expected EINTR", strerror(err));
  if (!st_usr1_arrived()) st_fail("nanosleep returned before SIGUSR1 arrived");
  long limit = req.tv_sec;
  if (st_sabotage()) limit = 1;  // pretend an hour was never asked for
  if (rem.tv_sec < 0 || rem.tv_sec > limit || (rem.tv_sec == 0 && rem.tv_nsec == 0))
    st_fail("remaining time %ld.%09ld outside (0, %ld]", (long)rem.tv_sec, rem.tv_nsec, limit);

  struct timespec short_req = {0, 100 * 1000 * 1000};
  double t0 = now_mono();
  if (nanosleep(&short_req, NULL) != 0) st_fail("short nanosleep failed: %s", strerror(errno));
  double slept = now_mono() - t0;
  if (slept < 0.099 || slept > 5.0) st_fail("a 100 ms nanosleep took %.3f s", slept);
  return st_finish();
}
