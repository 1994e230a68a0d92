// Forks while its pages are pending: a buffer (64 MiB, or argv[1] MiB) of
// known content. As soon as the buffer's last page is found not resident
// (right after a lazy melt) the process forks: the child checks its whole
// copy and exits 0 (1 if it differs), while the parent checks its own, from
// the end backwards, then waits for the child and prints "FORKED PENDING"
// and the child's verdict. Without a lazy melt it never forks. On SIGUSR1
// everything is checked again.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "st_common.h"
#include "st_lazy.h"

static long check_backwards(const uint64_t *buf, size_t bytes) {
  for (size_t off = bytes; off > 0; off -= LZ_PAGE) {
    long bad = lz_check(buf + (off - LZ_PAGE) / 8, LZ_PAGE, 11, (off - LZ_PAGE) / 8);
    if (bad >= 0) return (long)((off - LZ_PAGE) / 8) + bad;
  }
  return -1;
}

int main(int argc, char **argv) {
  st_begin("lazy_fork");
  size_t bytes = lz_mib(argc, argv, 64) << 20;
  uint64_t *buf = lz_map(bytes);
  lz_fill(buf, bytes, 11, 0);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &s, NULL);
  st_ready();
  const char *last = (const char *)buf + bytes - 1;
  int forked = 0;
  while (!st_usr1_arrived()) {
    if (!forked && lz_pending(last)) {
      size_t resident = lz_resident(buf, bytes);
      pid_t child = fork();
      if (child == 0) _exit(lz_check(buf, bytes, 11, 0) >= 0 ? 1 : 0);
      forked = 1;
      long bad = check_backwards(buf, bytes);
      if (bad >= 0) st_fail("parent: buffer word %ld differs after the fork", bad);
      int status = 0;
      if (child < 0 || waitpid(child, &status, 0) != child) st_fail("fork or waitpid failed");
      else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) st_fail("the child found its copy differs (status %#x)", status);
      printf("FORKED PENDING %zu/%zu child %s\n", resident, bytes / LZ_PAGE,
             WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "FAILED");
      fflush(stdout);
    }
    lz_sleep_ms(1);
  }
  if (st_sabotage()) buf[bytes / 16] ^= 1;
  long bad = lz_check(buf, bytes, 11, 0);
  if (bad >= 0) st_fail("buffer word %ld differs", bad);
  return st_finish();
}
