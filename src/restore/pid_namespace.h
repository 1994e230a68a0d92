// A new PID namespace for a melt whose PID is taken on this machine (after a
// reboot, usually): inside it the process gets its saved PID and TIDs again.
//
// Its init is a small process frost forks (PID 1 inside): it reaps orphans,
// and once frost lets it go, it exits with the melted process's status when
// that process ends (which ends the namespace). Until then a frost that
// dies takes the namespace with it: its pipe closes and init exits, killing
// everything inside.
#pragma once

#include <sys/types.h>

#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace frost::restore {

class PidNamespace {
 public:
  static Result<PidNamespace> create();
  PidNamespace(PidNamespace&& o) noexcept
      : init_(std::exchange(o.init_, 0)), pidfd_(std::move(o.pidfd_)), go_(std::move(o.go_)), own_ns_(std::move(o.own_ns_)) {}
  PidNamespace& operator=(PidNamespace&& o) noexcept {
    std::swap(init_, o.init_);
    std::swap(pidfd_, o.pidfd_);
    std::swap(go_, o.go_);
    std::swap(own_ns_, o.own_ns_);
    return *this;
  }
  // Kills the namespace unless released.
  ~PidNamespace();

  // Processes this thread creates from now on are born inside (setns on
  // the init's pidfd); leave() undoes it.
  Status enter();
  Status leave();
  // The melted process runs: init takes over, frost no longer owns it.
  void release();

  pid_t init_pid() const { return init_; }

 private:
  PidNamespace(pid_t init, UniqueFd pidfd, UniqueFd go, UniqueFd own_ns)
      : init_(init), pidfd_(std::move(pidfd)), go_(std::move(go)), own_ns_(std::move(own_ns)) {}
  pid_t init_ = 0;
  UniqueFd pidfd_, go_, own_ns_;
};

// The host TID of every thread of host process pid, by the TID it has
// inside its own PID namespace (the last NSpid field).
Result<std::vector<std::pair<pid_t, pid_t>>> namespace_tids(pid_t host_pid);

}  // namespace frost::restore
