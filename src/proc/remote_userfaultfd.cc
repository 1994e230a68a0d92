#include "proc/remote_userfaultfd.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/kernel_compat.h"

namespace frost::proc {

Result<UniqueFd> take_remote_fd(RemoteSyscall& remote, int remote_fd) {
  UniqueFd pidfd(int(::syscall(SYS_pidfd_open, remote.pid(), 0)));
  UniqueFd local(pidfd ? int(::syscall(SYS_pidfd_getfd, pidfd.get(), remote_fd, 0)) : -1);
  int err = errno;
  // The process must not keep an fd it never opened, whatever happened above.
  Result<long> closed = remote.call(SYS_close, remote_fd);
  if (!local) return Error::io(fmt::format("taking fd {} of process {}", remote_fd, remote.pid()), err);
  if (!closed.ok()) return closed.error();
  return local;
}

Result<UniqueFd> open_remote_userfaultfd(RemoteSyscall& remote, int flags, const char* purpose) {
  Result<long> made = remote.call(SYS_userfaultfd, flags);
  if (!made.ok()) return made.error().context(fmt::format("creating a userfaultfd for {}", purpose));
  Result<UniqueFd> taken = take_remote_fd(remote, int(*made));
  if (!taken.ok()) return taken.error().context(fmt::format("userfaultfd for {}", purpose));
  return taken;
}

Result<UniqueFd> open_remote_userfaultfd_kept(RemoteSyscall& remote, int flags, const char* purpose, int min_fd,
                                              int* kept) {
  Result<long> made = remote.call(SYS_userfaultfd, flags);
  if (!made.ok()) return made.error().context(fmt::format("creating a userfaultfd for {}", purpose));
  Result<long> moved = remote.call(SYS_fcntl, *made, F_DUPFD_CLOEXEC, min_fd);
  Result<long> closed = remote.call(SYS_close, *made);
  if (!moved.ok()) return moved.error().context(fmt::format("moving the userfaultfd for {}", purpose));
  if (!closed.ok()) return closed.error();
  UniqueFd pidfd(int(::syscall(SYS_pidfd_open, remote.pid(), 0)));
  UniqueFd local(pidfd ? int(::syscall(SYS_pidfd_getfd, pidfd.get(), int(*moved), 0)) : -1);
  if (!local) {
    int err = errno;
    (void)remote.call(SYS_close, *moved);
    return Error::io(fmt::format("taking the userfaultfd for {} of process {}", purpose, remote.pid()), err);
  }
  *kept = int(*moved);
  return local;
}

}  // namespace frost::proc
