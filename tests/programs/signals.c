// Signals: handlers with their flags, masks and restorers, an ignored signal,
// sigaltstack, pending standard and queued real-time signals (with their
// values), itimers, and POSIX timers (armed ones keep running, one fires).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "st_common.h"

struct kernel_sigaction { void *handler; unsigned long flags; void *restorer; uint64_t mask; };

static volatile int rt_values[8], rt_count, winch_count, timer_value, timer_fired;
static void on_rt(int sig, siginfo_t *si, void *uc) { (void)sig; (void)uc; if (rt_count < 8) rt_values[rt_count++] = si->si_value.sival_int; }
static void on_winch(int sig) { (void)sig; winch_count++; }
static void on_timer(int sig, siginfo_t *si, void *uc) { (void)sig; (void)uc; timer_value = si->si_value.sival_int; timer_fired++; }
static void on_hup(int sig) { (void)sig; }

static struct kernel_sigaction remembered[65];
static const int watched[] = {SIGHUP, SIGUSR2, SIGPIPE, SIGWINCH, SIGTERM, 0};

static struct kernel_sigaction get_action(int sig) {
  struct kernel_sigaction k;
  memset(&k, 0, sizeof k);
  syscall(SYS_rt_sigaction, sig, NULL, &k, 8);
  return k;
}

int main(void) {
  st_begin("signals");
  int rt1 = SIGRTMIN + 1, rt2 = SIGRTMIN + 2;
  static char altstack[64 * 1024];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_hup;
  sa.sa_flags = SA_NODEFER | SA_RESETHAND;
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGRTMIN + 5);
  sigaction(SIGHUP, &sa, NULL);
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigaddset(&sa.sa_mask, SIGALRM);
  sigaction(rt1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_winch;
  sigaction(SIGWINCH, &sa, NULL);
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_timer;
  sa.sa_flags = SA_SIGINFO;
  sigaction(rt2, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, SIG_IGN);  // the itimer must not end the program
  for (int i = 0; watched[i]; i++) remembered[watched[i]] = get_action(watched[i]);
  remembered[rt1] = get_action(rt1);
  remembered[rt2] = get_action(rt2);

  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, rt1);
  sigaddset(&block, SIGWINCH);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, NULL);
  sigqueue(getpid(), rt1, (union sigval){.sival_int = 11});
  sigqueue(getpid(), rt1, (union sigval){.sival_int = 22});
  raise(SIGWINCH);
  sigset_t want_mask;
  sigprocmask(SIG_BLOCK, NULL, &want_mask);

  struct itimerval it = {.it_interval = {500, 0}, .it_value = {1000, 0}};
  setitimer(ITIMER_REAL, &it, NULL);
  struct itimerval vt = {.it_interval = {0, 0}, .it_value = {2000, 0}};
  setitimer(ITIMER_VIRTUAL, &vt, NULL);

  timer_t armed, disarmed, firing;
  struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = rt2};
  ev.sigev_value.sival_int = 77;
  timer_create(CLOCK_MONOTONIC, &ev, &armed);
  struct itimerspec its = {.it_interval = {7, 0}, .it_value = {1000, 0}};
  timer_settime(armed, 0, &its, NULL);
  ev.sigev_value.sival_int = 88;
  timer_create(CLOCK_REALTIME, &ev, &disarmed);
  ev.sigev_value.sival_int = 99;
  timer_create(CLOCK_MONOTONIC, &ev, &firing);

  st_ready();
  st_wait_usr1();
  if (st_sabotage()) signal(SIGHUP, SIG_DFL);

  for (int sig = 1; sig < 65; sig++) {
    if (remembered[sig].handler == NULL && remembered[sig].flags == 0) continue;
    struct kernel_sigaction k = get_action(sig);
    if (k.handler != remembered[sig].handler || k.flags != remembered[sig].flags ||
        k.mask != remembered[sig].mask || k.restorer != remembered[sig].restorer)
      st_fail("signal %d action {%p %#lx %#llx %p}, expected {%p %#lx %#llx %p}", sig, k.handler, k.flags,
              (unsigned long long)k.mask, k.restorer, remembered[sig].handler, remembered[sig].flags,
              (unsigned long long)remembered[sig].mask, remembered[sig].restorer);
  }
  stack_t now;
  sigaltstack(NULL, &now);
  if (now.ss_sp != altstack || now.ss_size != sizeof altstack || now.ss_flags != 0)
    st_fail("sigaltstack {%p %zu %d}, expected {%p %zu 0}", now.ss_sp, now.ss_size, now.ss_flags, (void *)altstack, sizeof altstack);

  sigset_t mask, pend;
  sigprocmask(SIG_BLOCK, NULL, &mask);
  sigaddset(&mask, SIGUSR1);  // st_wait_usr1 keeps it blocked outside sigsuspend
  sigaddset(&want_mask, SIGUSR1);
  for (int sig = 1; sig < 65; sig++)
    if (sigismember(&mask, sig) != sigismember(&want_mask, sig)) st_fail("signal %d blocked state changed", sig);
  sigpending(&pend);
  if (!sigismember(&pend, rt1) || !sigismember(&pend, SIGWINCH)) st_fail("pending signals lost");
  if (sigismember(&pend, SIGTERM)) st_fail("SIGTERM pending from nowhere");

  struct itimerval gi;
  getitimer(ITIMER_REAL, &gi);
  if (gi.it_interval.tv_sec != 500 || gi.it_value.tv_sec > 1000 || (gi.it_value.tv_sec == 0 && gi.it_value.tv_usec == 0))
    st_fail("ITIMER_REAL {%ld, %ld}, expected interval 500 and value in (0, 1000]", (long)gi.it_interval.tv_sec, (long)gi.it_value.tv_sec);
  getitimer(ITIMER_VIRTUAL, &gi);
  if (gi.it_value.tv_sec > 2000 || gi.it_value.tv_sec < 1990) st_fail("ITIMER_VIRTUAL value %ld, expected about 2000", (long)gi.it_value.tv_sec);

  struct itimerspec g;
  if (timer_gettime(armed, &g) != 0) st_fail("armed POSIX timer is gone: %s", strerror(errno));
  else if (g.it_interval.tv_sec != 7 || g.it_value.tv_sec > 1000 || (g.it_value.tv_sec == 0 && g.it_value.tv_nsec == 0))
    st_fail("armed POSIX timer {%ld, %ld}, expected interval 7, value in (0, 1000]", (long)g.it_interval.tv_sec, (long)g.it_value.tv_sec);
  if (timer_gettime(disarmed, &g) != 0) st_fail("disarmed POSIX timer is gone");
  else if (g.it_value.tv_sec || g.it_value.tv_nsec) st_fail("disarmed POSIX timer is armed");

  sigprocmask(SIG_UNBLOCK, &block, NULL);  // deliver the pending ones now
  if (rt_count != 2 || rt_values[0] != 11 || rt_values[1] != 22)
    st_fail("queued real-time signals delivered %d values (%d, %d), expected 11 then 22", rt_count, rt_values[0], rt_values[1]);
  if (winch_count != 1) st_fail("SIGWINCH delivered %d times, expected 1", winch_count);

  struct itimerspec soon = {.it_value = {0, 50 * 1000 * 1000}};
  timer_settime(firing, 0, &soon, NULL);
  for (int i = 0; i < 200 && !timer_fired; i++) usleep(10000);
  if (!timer_fired || timer_value != 99) st_fail("POSIX timer fired %d times with value %d, expected value 99", timer_fired, timer_value);
  return st_finish();
}
