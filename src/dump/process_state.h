// Kernel state only the process itself can report: signal dispositions,
// itimers, POSIX timers, its brk, and per thread the alternate signal stack
// and clear_child_tid. Asked with remote system calls (proc/remote_syscall.h)
// that write their answers into a scratch page mapped in the target for the
// duration; the target must be seized by the calling thread.
#pragma once

#include <sys/types.h>

#include "common/result.h"
#include "image/process_image.h"

namespace frost::dump {

// Fills sigactions, itimers, posix_timers and mm.brk of `image`, asking
// thread `tid` (any seized thread of pid).
Status probe_process(pid_t pid, pid_t tid, image::ProcessImage& image);

// Fills sigaltstack, clear_child_tid and the robust list of `thread`.
Status probe_thread(pid_t pid, image::ThreadImage& thread);

}  // namespace frost::dump
