// A process blocked in read(2) on a pipe (both ends its own). The SIGUSR1
// handler (SA_RESTART) writes a message into the pipe; the restarted read must
// return exactly that message, proving the read resumed rather than failing.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "st_common.h"

static int pipe_fds[2];
static const char message[] = "wake-up message from the SIGUSR1 handler";
static volatile sig_atomic_t handler_ran;

static void on_usr1(int sig) {
  (void)sig;
  if (st_sabotage()) write(pipe_fds[1], "X", 1);  // a byte the reader must not see
  write(pipe_fds[1], message, sizeof message);
  handler_ran = 1;
}

int main(void) {
  st_begin("blocked_read");
  if (pipe(pipe_fds) != 0) { perror("pipe"); return 1; }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &s, NULL);
  st_ready();

  char buf[256];
  ssize_t n = read(pipe_fds[0], buf, sizeof buf);
  int err = errno;
  if (!handler_ran) st_fail("read returned (%zd, errno %d) before SIGUSR1", n, n < 0 ? err : 0);
  if (n < 0) st_fail("read failed: %s", strerror(err));
  else if ((size_t)n != sizeof message || memcmp(buf, message, sizeof message) != 0)
    st_fail("read returned %zd bytes starting '%.*s', expected the handler's message", n,
            (int)(n > 20 ? 20 : n), buf);
  return st_finish();
}
