// File descriptors at fixed numbers: regular files (offset, status and fd
// flags, contents), a file deleted while open, a directory, /dev/null,
// /dev/zero, /dev/urandom, and a pipe with both ends here holding buffered data.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "st_common.h"

enum { FD_RW = 40, FD_RO_APPEND = 41, FD_DELETED = 42, FD_DIR = 43, FD_NULL = 44,
       FD_ZERO = 45, FD_URANDOM = 46, FD_PIPE_R = 47, FD_PIPE_W = 48 };

static char dir_path[PATH_MAX - 64], rw_path[PATH_MAX], ro_path[PATH_MAX], del_path[PATH_MAX];
static const char rw_text[] = "0123456789abcdefghijklmnopqrstuvwxyz";
static const char del_text[] = "contents of a file that was unlinked while open";
static const char pipe_text[] = "bytes buffered in the pipe at freeze time";

static void place(int fd, int want) {
  if (fd < 0) { perror("open"); exit(2); }
  if (dup3(fd, want, fcntl(fd, F_GETFD) & FD_CLOEXEC ? O_CLOEXEC : 0) < 0) { perror("dup3"); exit(2); }
  close(fd);
}

static void check_link(int fd, const char *want) {
  char p[64], got[PATH_MAX];
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(p, got, sizeof got - 1);
  if (n < 0) { st_fail("fd %d: readlink: %s", fd, strerror(errno)); return; }
  got[n] = '\0';
  if (strcmp(got, want) != 0) st_fail("fd %d points at '%s', expected '%s'", fd, got, want);
}

static void check_flags(int fd, int want_fl, int want_fd) {
  int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
  if (fl < 0) { st_fail("fd %d is not open", fd); return; }
  int mask = O_ACCMODE | O_APPEND | O_NONBLOCK;
  if ((fl & mask) != want_fl) st_fail("fd %d status flags %#x, expected %#x", fd, fl & mask, want_fl);
  if (fdf != want_fd) st_fail("fd %d fd flags %d, expected %d", fd, fdf, want_fd);
}

static void check_offset(int fd, off_t want) {
  off_t got = lseek(fd, 0, SEEK_CUR);
  if (got != want) st_fail("fd %d offset %lld, expected %lld", fd, (long long)got, (long long)want);
}

static void check_content(int fd, const char *want, size_t len) {
  char buf[256];
  ssize_t n = pread(fd, buf, sizeof buf, 0);
  if (n != (ssize_t)len || memcmp(buf, want, len) != 0)
    st_fail("fd %d content differs (%zd bytes read, %zu expected)", fd, n, len);
}

static void check_chr(int fd, unsigned maj, unsigned min) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != maj || minor(st.st_rdev) != min)
    st_fail("fd %d is not character device %u:%u", fd, maj, min);
}

int main(void) {
  st_begin("fds");
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(dir_path, sizeof dir_path, "%s/frost-fds.XXXXXX", tmp);
  if (mkdtemp(dir_path) == NULL) { perror("mkdtemp"); return 2; }
  char *real = realpath(dir_path, NULL);
  snprintf(dir_path, sizeof dir_path, "%s", real);
  free(real);
  snprintf(rw_path, sizeof rw_path, "%s/rw", dir_path);
  snprintf(ro_path, sizeof ro_path, "%s/append", dir_path);
  snprintf(del_path, sizeof del_path, "%s/deleted", dir_path);

  place(open(rw_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), FD_RW);
  write(FD_RW, rw_text, sizeof rw_text - 1);
  lseek(FD_RW, 7, SEEK_SET);

  int a = open(ro_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  write(a, "line one\n", 9);
  close(a);
  place(open(ro_path, O_RDWR | O_APPEND | O_NONBLOCK), FD_RO_APPEND);
  lseek(FD_RO_APPEND, 3, SEEK_SET);

  place(open(del_path, O_RDWR | O_CREAT | O_TRUNC, 0600), FD_DELETED);
  write(FD_DELETED, del_text, sizeof del_text - 1);
  lseek(FD_DELETED, 11, SEEK_SET);
  unlink(del_path);

  place(open(dir_path, O_RDONLY | O_DIRECTORY), FD_DIR);
  place(open("/dev/null", O_RDWR), FD_NULL);
  place(open("/dev/zero", O_RDONLY), FD_ZERO);
  place(open("/dev/urandom", O_RDONLY | O_CLOEXEC), FD_URANDOM);
  int p[2];
  if (pipe2(p, 0) != 0) { perror("pipe"); return 2; }
  place(p[0], FD_PIPE_R);
  place(p[1], FD_PIPE_W);
  fcntl(FD_PIPE_W, F_SETFL, O_NONBLOCK);
  fcntl(FD_PIPE_R, F_SETPIPE_SZ, 128 * 1024);
  write(FD_PIPE_W, pipe_text, sizeof pipe_text - 1);

  st_ready();
  st_wait_usr1();
  if (st_sabotage()) lseek(FD_RW, 8, SEEK_SET);

  check_link(FD_RW, rw_path);
  check_flags(FD_RW, O_RDWR, FD_CLOEXEC);
  check_offset(FD_RW, 7);
  check_content(FD_RW, rw_text, sizeof rw_text - 1);

  check_link(FD_RO_APPEND, ro_path);
  check_flags(FD_RO_APPEND, O_RDWR | O_APPEND | O_NONBLOCK, 0);
  check_offset(FD_RO_APPEND, 3);
  check_content(FD_RO_APPEND, "line one\n", 9);

  char want[PATH_MAX + 16];
  snprintf(want, sizeof want, "%s (deleted)", del_path);
  check_link(FD_DELETED, want);
  check_flags(FD_DELETED, O_RDWR, 0);
  check_offset(FD_DELETED, 11);
  check_content(FD_DELETED, del_text, sizeof del_text - 1);
  struct stat st;
  if (fstat(FD_DELETED, &st) != 0 || st.st_nlink != 0) st_fail("deleted file has links again");

  check_link(FD_DIR, dir_path);
  if (fstat(FD_DIR, &st) != 0 || !S_ISDIR(st.st_mode)) st_fail("fd %d is not a directory", FD_DIR);
  if (faccessat(FD_DIR, "rw", F_OK, 0) != 0) st_fail("rw not found through directory fd");

  check_link(FD_NULL, "/dev/null");
  check_chr(FD_NULL, 1, 3);
  check_flags(FD_NULL, O_RDWR, 0);
  char buf[256];
  if (write(FD_NULL, "x", 1) != 1 || read(FD_NULL, buf, 1) != 0) st_fail("/dev/null misbehaves");
  check_link(FD_ZERO, "/dev/zero");
  check_chr(FD_ZERO, 1, 5);
  memset(buf, 1, 64);
  if (read(FD_ZERO, buf, 64) != 64 || buf[0] != 0 || buf[63] != 0) st_fail("/dev/zero misbehaves");
  check_link(FD_URANDOM, "/dev/urandom");
  check_chr(FD_URANDOM, 1, 9);
  check_flags(FD_URANDOM, O_RDONLY, FD_CLOEXEC);
  if (read(FD_URANDOM, buf, 32) != 32) st_fail("/dev/urandom read failed");

  struct stat sr, sw;
  fstat(FD_PIPE_R, &sr);
  fstat(FD_PIPE_W, &sw);
  if (!S_ISFIFO(sr.st_mode) || sr.st_ino != sw.st_ino) st_fail("fds %d and %d are not one pipe", FD_PIPE_R, FD_PIPE_W);
  check_flags(FD_PIPE_R, O_RDONLY, 0);
  check_flags(FD_PIPE_W, O_WRONLY | O_NONBLOCK, 0);
  int sz = fcntl(FD_PIPE_R, F_GETPIPE_SZ);
  if (sz != 128 * 1024) st_fail("pipe size %d, expected %d", sz, 128 * 1024);
  int queued = -1;
  ioctl(FD_PIPE_R, FIONREAD, &queued);
  if (queued != (int)sizeof pipe_text - 1) st_fail("pipe holds %d bytes, expected %zu", queued, sizeof pipe_text - 1);
  else if (read(FD_PIPE_R, buf, sizeof buf) != queued || memcmp(buf, pipe_text, queued) != 0)
    st_fail("pipe data differs");
  if (write(FD_PIPE_W, "z", 1) != 1 || read(FD_PIPE_R, buf, 1) != 1 || buf[0] != 'z')
    st_fail("pipe does not carry data from its write end to its read end");

  unlink(rw_path);
  unlink(ro_path);
  rmdir(dir_path);
  return st_finish();
}
