// What `frost ls` says about the process behind an owner's images.
#pragma once

#include <sys/types.h>

#include <string>

#include "store/store.h"

namespace frost::cli {

struct ImageState {
  pid_t pid = 0;      // the pid of the newest image; 0 if it cannot be read
  std::string state;  // "running", "frozen" (pinned, not running) or "ended"
};

ImageState image_state(const store::Store& store, const store::OwnerInfo& owner);

}  // namespace frost::cli
