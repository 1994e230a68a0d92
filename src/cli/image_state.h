// What `frost ls` says about the process behind an owner's images.
#pragma once

#include <sys/types.h>

#include <string>

#include "daemon/registry.h"
#include "store/store.h"

namespace frost::cli {

struct ImageState {
  pid_t pid = 0;      // the pid of the newest image (of its process, when persistent); 0 if unknown
  std::string state;  // "running", "frozen" (pinned, not running) or "ended"; persistent: "gone" after a crash
  // A persistent process (in the registry): how frostd snapshots it.
  bool persistent = false;
  std::string policy;
  uint64_t every_ms = 0;
};

// A persistent process's state is the registry's: which process runs it
// (start time and boot checked), frozen, or gone (frost recover melts it).
// Any other owner's is guessed from its newest image.
ImageState image_state(const store::Store& store, const store::OwnerInfo& owner, const daemon::Registry* registry);

}  // namespace frost::cli
