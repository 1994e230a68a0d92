// Runs while its memory is still on its way: a buffer (256 MiB, or argv[1]
// MiB) of known content, and a loop that prints "BEAT n" every 2 ms, or
// "BEAT n PENDING r/t" when the buffer's last page is not resident (r of t
// pages are): after a lazy melt, that line is the process itself proving it
// runs before all its pages are in. The loop touches nothing of the buffer.
// On SIGUSR1 the whole buffer is checked.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>

#include "st_common.h"
#include "st_lazy.h"

int main(int argc, char **argv) {
  st_begin("lazy_heartbeat");
  size_t bytes = lz_mib(argc, argv, 256) << 20;
  uint64_t *buf = lz_map(bytes);
  lz_fill(buf, bytes, 7, 0);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &s, NULL);
  st_ready();
  const char *last = (const char *)buf + bytes - 1;
  for (unsigned long n = 1; !st_usr1_arrived(); n++) {
    if (lz_pending(last)) {
      printf("BEAT %lu PENDING %zu/%zu\n", n, lz_resident(buf, bytes), bytes / LZ_PAGE);
    } else {
      printf("BEAT %lu\n", n);
    }
    fflush(stdout);
    lz_sleep_ms(2);
  }
  if (st_sabotage()) buf[bytes / 16] ^= 1;
  long bad = lz_check(buf, bytes, 7, 0);
  if (bad >= 0) st_fail("buffer word %ld differs", bad);
  return st_finish();
}
