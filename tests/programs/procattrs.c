// Process attributes: rlimits, cwd, umask, personality, session and process
// group ids (the program makes itself a session leader).
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_common.h"

static const int limits[] = {RLIMIT_NOFILE, RLIMIT_CORE, RLIMIT_STACK, RLIMIT_NPROC, RLIMIT_MSGQUEUE};
static struct rlimit saved[5];

int main(void) {
  st_begin("procattrs");
  for (int i = 0; i < 5; i++) {
    struct rlimit r;
    getrlimit(limits[i], &r);
    r.rlim_cur = r.rlim_max == RLIM_INFINITY ? (rlim_t)12345 * (i + 1) : r.rlim_max / 2 + i;
    if (limits[i] == RLIMIT_NOFILE) r.rlim_cur = 777;
    setrlimit(limits[i], &r);
    getrlimit(limits[i], &saved[i]);
  }
  char dir[PATH_MAX];
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(dir, sizeof dir, "%s/frost-cwd.XXXXXX", tmp);
  if (mkdtemp(dir) == NULL || chdir(dir) != 0) { perror("cwd"); return 2; }
  char cwd[PATH_MAX];
  getcwd(cwd, sizeof cwd);
  umask(027);
  int pers = PER_LINUX | ADDR_NO_RANDOMIZE | ADDR_COMPAT_LAYOUT;
  personality(pers);
  pid_t sid = setsid();
  if (sid < 0) setpgid(0, 0);
  pid_t want_sid = getsid(0), want_pgid = getpgid(0);
  st_ready();
  st_wait_usr1();
  if (st_sabotage()) umask(022);

  for (int i = 0; i < 5; i++) {
    struct rlimit r;
    getrlimit(limits[i], &r);
    if (r.rlim_cur != saved[i].rlim_cur || r.rlim_max != saved[i].rlim_max)
      st_fail("rlimit %d is %llu/%llu, expected %llu/%llu", limits[i], (unsigned long long)r.rlim_cur,
              (unsigned long long)r.rlim_max, (unsigned long long)saved[i].rlim_cur,
              (unsigned long long)saved[i].rlim_max);
  }
  char now[PATH_MAX];
  if (getcwd(now, sizeof now) == NULL || strcmp(now, cwd) != 0) st_fail("cwd is '%s', expected '%s'", now, cwd);
  mode_t m = umask(027);
  if (m != 027) st_fail("umask %03o, expected 027", m);
  int p = personality(0xffffffff);
  if (p != pers) st_fail("personality %#x, expected %#x", p, pers);
  if (getsid(0) != want_sid) st_fail("session id %d, expected %d", getsid(0), want_sid);
  if (getpgid(0) != want_pgid) st_fail("process group %d, expected %d", getpgid(0), want_pgid);
  if (sid >= 0 && getsid(0) != getpid()) st_fail("no longer session leader");
  chdir("/");
  rmdir(dir);
  return st_finish();
}
