// Which process a registry entry means. A PID alone does not say: after a
// crash or a reboot the number may belong to another process. The start
// time (ticks after boot) and the boot id together do.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "common/result.h"

namespace frost::daemon {

struct ProcessIdentity {
  uint64_t start_ticks = 0;
  std::string boot_id;
};

// The identity of the live process pid.
Result<ProcessIdentity> identify(pid_t pid);

// Whether pid is still the process `id` names, and not a zombie.
bool still_running(pid_t pid, const ProcessIdentity& id);

// This boot's id (/proc/sys/kernel/random/boot_id).
const std::string& boot_id();

}  // namespace frost::daemon
