// Snapshot -> running process: `frost melt` (eager: all memory is copied
// before the process runs).
//
//   image + checks (IDs free, files unchanged)  -- nothing created yet
//   fds and helper files opened in frost
//   stub at the saved PID, seized
//   address space, pages, threads at their TIDs, per-thread state, registers
//   detach: the process runs on from where it was frozen
//
// On any failure the stub is killed and reaped; the store is only read.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "common/result.h"
#include "dump/progress.h"
#include "store/store.h"

namespace frost::restore {

struct MeltOptions {
  std::optional<store::SnapshotId> snapshot;  // default: the newest of the name
  // Terminal fds go to this terminal (the caller's); -1: a terminal fd fails the melt.
  int shell_job_tty = -1;
  // How long to wait for the saved PID/TIDs to be released (a frozen
  // process's zombie waits for its parent to reap it).
  std::chrono::milliseconds id_wait{10'000};
  ProgressFn progress;
};

struct MeltResult {
  pid_t pid = 0;
  store::SnapshotId snapshot = 0;
  int threads = 0;
  uint64_t pages = 0;
  double seconds = 0;
};

Result<MeltResult> melt(store::Store& store, const std::string& name, const MeltOptions& options);

}  // namespace frost::restore
