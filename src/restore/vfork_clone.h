// clone3 with CLONE_VM | CLONE_VFORK, the child running a function on a
// stack of its own: how a melt's stub is born without copying frost.
//
// A plain fork copies the page tables of every area frost has touched, and
// the stub then tears them down again: the larger frost (frostd holding
// pages, a bench holding a 4 GiB image's buffers), the slower every melt.
// A child sharing frost's memory copies nothing; it must only exec before
// it needs memory of its own, and until then the calling thread waits
// (CLONE_VFORK). glibc offers no clone3 wrapper that takes a function and a
// stack, so a few lines of assembly switch the child onto its stack.
#pragma once

#include <sys/types.h>

#include "common/kernel_compat.h"
#include "common/result.h"

namespace frost::restore {

// Runs fn(arg) in a child created with `args` plus CLONE_VM | CLONE_VFORK;
// returns its PID once it has exec'd or exited. fn must end in execve or
// _exit, use raw system calls only and no more than 64 KiB of stack. Every
// signal is blocked in the child from its first instruction (it inherits
// the mask), so none of frost's handlers can run on frost's memory there.
// A failed clone is an error carrying its errno (EEXIST: set_tid taken).
Result<pid_t> vfork_clone(clone_args args, void (*fn)(void*), void* arg);

}  // namespace frost::restore
