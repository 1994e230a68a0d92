// Kernel interfaces newer than the installed headers.
//
// The build machines carry Debian 12's kernel headers (Linux 6.1) while frost
// runs on a much newer kernel (6.18). Every constant and struct frost needs
// from a later kernel lives here, each guarded so that newer headers win, and
// each with the kernel version that introduced it. Values were checked against
// the kernel's UAPI headers (include/uapi/linux/{fs,userfaultfd,prctl,elf,
// memfd,fcntl}.h, arch/x86/include/uapi/asm/prctl.h,
// arch/x86/entry/syscalls/syscall_64.tbl); tests/proc/proc_parse_test.cc
// exercises several of them against the running kernel.
//
// Use glibc's <sys/ptrace.h> (included here), never <linux/ptrace.h>: in C++
// the latter turns PTRACE_* into plain ints that glibc's ptrace(), which takes
// an enum, refuses. The few kernel ptrace structs frost needs are below.
#pragma once

#include <elf.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <asm/prctl.h>

#include <cstddef>

// --- PAGEMAP_SCAN: Linux 6.7 (include/uapi/linux/fs.h) -----------------------
// Reports page ranges by category and, with PM_SCAN_WP_MATCHING, re-arms
// userfaultfd write protection in the same pass: frost's dirty tracking.
#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)

struct page_region {
  __u64 start;
  __u64 end;  // exclusive
  __u64 categories;
};

#define PM_SCAN_WP_MATCHING (1 << 0)    // write-protect the pages matched
#define PM_SCAN_CHECK_WPASYNC (1 << 1)  // fail on a page without async WP

struct pm_scan_arg {
  __u64 size;
  __u64 flags;
  __u64 start;
  __u64 end;
  __u64 walk_end;  // written by the kernel: where the walk stopped
  __u64 vec;
  __u64 vec_len;
  __u64 max_pages;
  __u64 category_inverted;
  __u64 category_mask;
  __u64 category_anyof_mask;
  __u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

// Linux 6.15: guard regions (MADV_GUARD_INSTALL) are visible to PAGEMAP_SCAN
// only, never in /proc/PID/maps.
#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD (1 << 8)
#endif

static_assert(sizeof(struct page_region) == 24);
static_assert(sizeof(struct pm_scan_arg) == 96);

// --- userfaultfd (include/uapi/linux/userfaultfd.h) ---------------------------
#ifndef UFFD_USER_MODE_ONLY  // Linux 5.11
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef _UFFDIO_WRITEPROTECT  // Linux 5.7
#define _UFFDIO_WRITEPROTECT (0x06)
#endif
#ifndef UFFDIO_WRITEPROTECT_MODE_WP  // Linux 5.7
#define UFFDIO_WRITEPROTECT_MODE_WP ((__u64)1 << 0)
#define UFFDIO_WRITEPROTECT_MODE_DONTWAKE ((__u64)1 << 1)
#endif
#ifndef _UFFDIO_CONTINUE  // Linux 5.13
#define _UFFDIO_CONTINUE (0x07)
#endif
#ifndef UFFDIO_CONTINUE_MODE_WP  // Linux 6.4
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED  // Linux 6.4: WP applies to empty ptes too
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON  // Linux 6.6
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC  // Linux 6.7: write faults resolved by the kernel
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE  // Linux 6.8
#define UFFD_FEATURE_MOVE (1 << 16)
#endif

#ifndef UFFDIO_POISON  // Linux 6.6
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
  struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
  __u64 mode;
  __s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

#ifndef UFFDIO_MOVE  // Linux 6.8
#define _UFFDIO_MOVE (0x05)
struct uffdio_move {
  __u64 dst;
  __u64 src;
  __u64 len;
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
  __u64 mode;
  __s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

// --- ptrace (include/uapi/linux/ptrace.h) -------------------------------------
#ifndef PTRACE_GET_RSEQ_CONFIGURATION  // Linux 5.13
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
// glibc defines the request but not the struct, which lives only in
// <linux/ptrace.h> (see the top of this file).
#ifndef _LINUX_PTRACE_H
struct ptrace_rseq_configuration {
  __u64 rseq_abi_pointer;
  __u32 rseq_abi_size;
  __u32 signature;
  __u32 flags;
  __u32 pad;
};
#endif
static_assert(sizeof(struct ptrace_rseq_configuration) == 24);

// --- prctl (include/uapi/linux/prctl.h) ---------------------------------------
// PR_SET_MM_MAP (Linux 3.18) sets every mm field in one call and, unlike the
// single-field PR_SET_MM_* calls, needs no CAP_SYS_RESOURCE (which the
// project's machines lack); only changing the exe link asks for
// CAP_CHECKPOINT_RESTORE.
#ifndef PR_SET_MM_MAP
#define PR_SET_MM_MAP 14
#define PR_SET_MM_MAP_SIZE 15
struct prctl_mm_map {
  __u64 start_code;
  __u64 end_code;
  __u64 start_data;
  __u64 end_data;
  __u64 start_brk;
  __u64 brk;
  __u64 start_stack;
  __u64 arg_start;
  __u64 arg_end;
  __u64 env_start;
  __u64 env_end;
  __u64* auxv;
  __u32 auxv_size;
  __u32 exe_fd;
};
#endif
static_assert(sizeof(struct prctl_mm_map) == 104);

#ifndef PR_GET_TID_ADDRESS  // Linux 3.5
#define PR_GET_TID_ADDRESS 40
#endif
#ifndef PR_SET_MDWE  // Linux 6.3: memory-deny-write-execute, inherited
#define PR_SET_MDWE 65
#define PR_MDWE_REFUSE_EXEC_GAIN (1UL << 0)
#define PR_MDWE_NO_INHERIT (1UL << 1)
#define PR_GET_MDWE 66
#endif
#ifndef PR_TIMER_CREATE_RESTORE_IDS  // Linux 6.16: timer_create() takes the ID to use
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif
#ifndef PR_SET_MEMORY_MERGE  // Linux 6.4: process-wide KSM
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif

// --- clone3 (include/uapi/linux/sched.h) --------------------------------------
// struct clone_args: Linux 5.3; set_tid and set_tid_size (CLONE_ARGS_SIZE_VER1)
// 5.5; cgroup (VER2) 5.7. Headers from 5.3-5.6 carry a shorter struct, which
// the asserts below reject.
#ifndef CLONE_ARGS_SIZE_VER0
struct clone_args {
  __aligned_u64 flags;
  __aligned_u64 pidfd;
  __aligned_u64 child_tid;
  __aligned_u64 parent_tid;
  __aligned_u64 exit_signal;
  __aligned_u64 stack;
  __aligned_u64 stack_size;
  __aligned_u64 tls;
  __aligned_u64 set_tid;
  __aligned_u64 set_tid_size;
  __aligned_u64 cgroup;
};
#define CLONE_ARGS_SIZE_VER0 64
#endif
#ifndef CLONE_ARGS_SIZE_VER1
#define CLONE_ARGS_SIZE_VER1 80
#endif
#ifndef CLONE_ARGS_SIZE_VER2
#define CLONE_ARGS_SIZE_VER2 88
#endif
static_assert(sizeof(struct clone_args) >= CLONE_ARGS_SIZE_VER2);
static_assert(offsetof(struct clone_args, set_tid) == 64);

// --- system call numbers, x86-64 (arch/x86/entry/syscalls/syscall_64.tbl) ---
#ifndef __NR_rseq  // Linux 4.18
#define __NR_rseq 334
#endif
#ifndef __NR_pidfd_open  // Linux 5.3
#define __NR_pidfd_open 434
#endif
#ifndef __NR_clone3  // Linux 5.3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_getfd  // Linux 5.6
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_mseal  // Linux 6.10: sealed areas show "sl" in smaps VmFlags
#define __NR_mseal 462
#endif
#ifndef SYS_rseq
#define SYS_rseq __NR_rseq
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open __NR_pidfd_open
#endif
#ifndef SYS_clone3
#define SYS_clone3 __NR_clone3
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd __NR_pidfd_getfd
#endif
#ifndef SYS_mseal
#define SYS_mseal __NR_mseal
#endif

// --- memory (include/uapi/asm-generic/mman-common.h, linux/memfd.h, fcntl.h) -
#ifndef MADV_GUARD_INSTALL  // Linux 6.13: guard pages without a separate area
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif
#ifndef MFD_NOEXEC_SEAL  // Linux 6.3
#define MFD_NOEXEC_SEAL 0x0008U
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC  // Linux 6.3
#define F_SEAL_EXEC 0x0020
#endif

// --- registers and arch_prctl (include/uapi/linux/elf.h, asm/prctl.h) ---------
#ifndef NT_PRSTATUS
#define NT_PRSTATUS 1
#endif
#ifndef NT_X86_XSTATE  // Linux 2.6.35
#define NT_X86_XSTATE 0x202
#endif
#ifndef NT_X86_SHSTK  // Linux 6.6: user shadow stack pointer
#define NT_X86_SHSTK 0x204
#endif
#ifndef ARCH_SET_GS
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004
#endif
#ifndef ARCH_SHSTK_ENABLE  // Linux 6.6: user shadow stacks (CET)
#define ARCH_SHSTK_ENABLE 0x5001
#define ARCH_SHSTK_DISABLE 0x5002
#define ARCH_SHSTK_LOCK 0x5003
#endif
#ifndef ARCH_SHSTK_UNLOCK  // Linux 6.6
#define ARCH_SHSTK_UNLOCK 0x5004
#endif
#ifndef ARCH_SHSTK_STATUS  // Linux 6.6
#define ARCH_SHSTK_STATUS 0x5005
#endif
#ifndef ARCH_SHSTK_SHSTK
#define ARCH_SHSTK_SHSTK (1ULL << 0)
#define ARCH_SHSTK_WRSS (1ULL << 1)
#endif
