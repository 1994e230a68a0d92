// Threads of the new process: created at their saved TIDs by clone3 calls
// made in the leader, then given their kernel state (from inside each thread,
// by remote calls) and, last, their registers.
#pragma once

#include <sys/types.h>

#include "common/result.h"
#include "image/process_image.h"
#include "proc/remote_syscall.h"

namespace frost::restore {

// Where remote calls run and leave their arguments (see AddressSpace).
struct Window {
  uint64_t gadget = 0;
  uint64_t scratch = 0;
};

// Creates every thread of the image but the leader. Each starts in the
// window's pause() loop with every signal blocked, untraced: seize them next.
Status create_threads(proc::RemoteSyscall& leader, const Window& window, const image::ProcessImage& image);

// A thread's ids: as frost addresses it (host) and as the process sees
// itself (pid; the thread's own is ThreadImage::tid). They differ in a melt
// into a new PID namespace.
struct ThreadIds {
  pid_t host_pid = 0, host_tid = 0;
  pid_t pid = 0;
};

// rseq, robust list, clear_child_tid, sigaltstack, name, the thread's pending
// signals and, last, its credentials (only as frost may set them).
Status restore_thread_kernel_state(const ThreadIds& ids, const image::ThreadImage& thread, const Window& window,
                                   const image::Credentials& creds);

// Process-wide state set through the leader: the shared pending signals,
// itimers and POSIX timers (at their saved IDs).
Status restore_process_signals(proc::RemoteSyscall& leader, const Window& window,
                               const image::ProcessImage& image);

// Registers (rewound into an interrupted system call when it must restart),
// xstate and signal mask. No remote call may follow in this thread.
Status set_thread_cpu_state(const image::ThreadImage& thread, pid_t host_tid);

}  // namespace frost::restore
