// A userfaultfd for another process's address space.
//
// A userfaultfd belongs to the mm of the process that created it, so frost
// makes one *inside* the target with a remote system call, takes a copy with
// pidfd_getfd and closes the target's: the process never holds an fd it did
// not open. The copy works from frost on the target's memory (UFFDIO_*
// ioctls act on the fd's mm, not the caller's). Dirty tracking (dump/) and
// lazy melt (restore/, lazy/) both start here.
#pragma once

#include "common/result.h"
#include "common/unique_fd.h"
#include "proc/remote_syscall.h"

namespace frost::proc {

// Creates a userfaultfd in the thread's process with `flags` (O_CLOEXEC,
// O_NONBLOCK, UFFD_USER_MODE_ONLY) and returns frost's copy of it; the
// process's own fd is closed whatever happens. The UFFDIO_API handshake is
// left to the caller, which knows the features it needs. `purpose` names the
// use in errors ("dirty tracking", "lazy melt").
Result<UniqueFd> open_remote_userfaultfd(RemoteSyscall& remote, int flags, const char* purpose);

// The same, but the process keeps its own fd too, moved to the lowest free
// number >= min_fd (close-on-exec); *kept is set to it. While the process
// holds it, the userfaultfd outlives frost's copy: a frost that dies does
// not release it (which would let the process's faults read zeros).
Result<UniqueFd> open_remote_userfaultfd_kept(RemoteSyscall& remote, int flags, const char* purpose, int min_fd,
                                              int* kept);

// Takes fd `remote_fd` of the thread's process into frost (pidfd_getfd) and
// closes it there.
Result<UniqueFd> take_remote_fd(RemoteSyscall& remote, int remote_fd);

}  // namespace frost::proc
