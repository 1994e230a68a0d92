// A live process's state as /proc shows it: status, stat, limits, threads,
// exe/cwd links, auxv, comm and personality. Parsers take text so tests can
// feed them odd lines; readers add the pid and the file to every error.
//
// Every reader returns kNotFound "process PID does not exist" once the
// process is gone (including when it exits between open and read).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace frost::proc {

// --- reading /proc files -------------------------------------------------------

// "/proc/<pid>/<name>".
std::string proc_path(pid_t pid, std::string_view name);
// Opens /proc/<pid>/<name> read-only, close-on-exec.
Result<UniqueFd> open_proc_file(pid_t pid, std::string_view name);
// Reads /proc/<pid>/<name> whole (its size is unknown until read).
Result<std::string> read_proc_file(pid_t pid, std::string_view name);
// readlink(/proc/<pid>/<name>), e.g. "exe", "cwd", "fd/3".
Result<std::string> read_proc_link(pid_t pid, std::string_view name);
// The error for a failed open/read of /proc/<pid>/<name> with errno err:
// kNotFound naming the process when it is gone, kIo otherwise.
Error proc_error(pid_t pid, std::string_view name, int err);

// --- /proc/PID/status ---------------------------------------------------------

struct IdQuad {  // as the kernel lists them: real, effective, saved, fs
  uint32_t real = 0, effective = 0, saved = 0, fs = 0;
};

struct ProcStatus {
  std::string name;  // unescaped (the kernel escapes '\n', '\\' and friends)
  char state = '?';  // R, S, D, T, t, Z, X, I...
  pid_t tgid = 0, pid = 0, ppid = 0, tracer_pid = 0;
  IdQuad uid, gid;
  std::vector<gid_t> groups;  // supplementary groups
  std::vector<pid_t> nspid;   // outermost namespace first; last is the pid as the process sees it
  int threads = 0;
  uint64_t sigq_queued = 0, sigq_limit = 0;
  // Signal masks: bit (sig - 1) is signal sig. sig_pending is this thread's
  // queue (the thread group leader's when read via /proc/PID), shared_pending
  // the process-wide one.
  uint64_t sig_pending = 0, shared_pending = 0, sig_blocked = 0, sig_ignored = 0, sig_caught = 0;
  uint64_t cap_inheritable = 0, cap_permitted = 0, cap_effective = 0, cap_bounding = 0,
           cap_ambient = 0;
  bool no_new_privs = false;
  uint64_t vm_locked_kb = 0;  // VmLck: the size of the mlocked areas
  int seccomp = 0;                   // 0 off, 1 strict, 2 filter
  std::optional<mode_t> umask;       // "Umask:" (Linux 4.7)
};

Result<ProcStatus> parse_status(std::string_view text);
Result<ProcStatus> read_status(pid_t pid);
// Status of one thread (/proc/PID/task/TID/status): its own SigPnd and SigBlk.
Result<ProcStatus> read_thread_status(pid_t pid, pid_t tid);

// --- /proc/PID/stat -----------------------------------------------------------

inline constexpr uint32_t kPfKthread = 0x00200000;  // PF_KTHREAD: a kernel thread

struct ProcStat {
  pid_t pid = 0;
  std::string comm;  // raw: may hold spaces and ')'
  char state = '?';
  pid_t ppid = 0, pgrp = 0, session = 0;
  int tty_nr = 0;
  pid_t tpgid = 0;
  uint32_t flags = 0;  // PF_*
  int64_t num_threads = 0;
  uint64_t start_time = 0;  // clock ticks after boot
  uint64_t vsize = 0;
  int exit_signal = 0;
  // mm fields (fields 26-28, 45-51). The kernel shows 0 unless the reader may
  // ptrace the process. The current brk is not here: ask the process (brk(0)).
  uint64_t start_code = 0, end_code = 0, start_stack = 0;
  uint64_t start_data = 0, end_data = 0, start_brk = 0;
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;

  bool is_kernel_thread() const { return (flags & kPfKthread) != 0; }
};

Result<ProcStat> parse_stat(std::string_view text);
Result<ProcStat> read_stat(pid_t pid);

// --- /proc/PID/limits ---------------------------------------------------------

// Indexed by RLIMIT_*; "unlimited" reads as RLIM_INFINITY.
using Limits = std::array<struct rlimit, RLIM_NLIMITS>;

Result<Limits> parse_limits(std::string_view text);
Result<Limits> read_limits(pid_t pid);

// --- small files ---------------------------------------------------------------

// The thread ids in /proc/PID/task, ascending.
Result<std::vector<pid_t>> list_threads(pid_t pid);
// Targets of /proc/PID/exe and /proc/PID/cwd, as the kernel prints them
// (a " (deleted)" suffix when the file is gone).
Result<std::string> read_exe(pid_t pid);
Result<std::string> read_cwd(pid_t pid);
// /proc/PID/auxv as (type, value) pairs, without the terminating AT_NULL.
Result<std::vector<std::pair<uint64_t, uint64_t>>> read_auxv(pid_t pid);
// /proc/PID/comm and /proc/PID/task/TID/comm, without the trailing newline.
Result<std::string> read_comm(pid_t pid);
Result<std::string> read_thread_comm(pid_t pid, pid_t tid);
// /proc/PID/personality (readable only by those who may ptrace the process).
Result<uint32_t> read_personality(pid_t pid);

}  // namespace frost::proc
