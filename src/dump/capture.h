// Live process -> snapshot: `frost freeze` and `frost snapshot`.
//
//   check (fds, seizable)  -- nothing stopped yet
//   seize every thread
//   threads, process state, fds, memory -> one snapshot, committed
//   freeze: SIGKILL the process;  snapshot: let it run on
//
// Any failure before the commit leaves the process running as it was and the
// store without the snapshot (and drops the dirty tracker, whose written set
// may have been consumed: the next capture is full).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "common/result.h"
#include "dump/progress.h"
#include "store/store.h"

namespace frost::dump {

enum class CaptureMode {
  kSnapshot,  // the process runs on
  kFreeze,    // the process is ended once its snapshot is durable
};

class DirtyTracker;

struct CaptureOptions {
  std::string name;  // store owner; empty: derived from the process's name
  CaptureMode mode = CaptureMode::kSnapshot;
  ProgressFn progress;
  // Dirty tracking across captures (the daemon keeps one per process). When
  // it points to an empty tracker, one is made and armed by this capture;
  // when to one whose base snapshot is still in the store, the capture is
  // incremental: only pages written since that snapshot are copied.
  std::unique_ptr<DirtyTracker>* tracker = nullptr;
  // A force snapshot: with a tracker, copy while the process runs (the
  // written set, re-armed, again while it shrinks), then stop it only for
  // the last round. Without a tracker this is ignored.
  bool precopy = false;
  // Background work (frostd's periodic snapshots): while the process runs,
  // frost's threads yield the CPU to everyone (common/cpu_class.h); the stop
  // runs at normal priority. A capture still running after 2 s goes on at
  // normal priority, so a busy machine delays a snapshot, not forever.
  bool background = false;
};

struct CaptureResult {
  std::string name;
  store::SnapshotId snapshot = 0;
  pid_t pid = 0;
  int threads = 0;
  uint64_t pages = 0;
  uint64_t bytes_stored = 0;  // bytes the snapshot added to the store
  double seconds = 0;         // from the first stop to the commit
  double stopped_ms = 0;      // how long the process was held (all stops)
  int precopy_rounds = 0;     // rounds made while it ran
  uint64_t precopy_pages = 0; // pages copied in them
  // Set when a tracker was asked for but the kernel cannot track writes
  // (no async write-protect or PAGEMAP_SCAN): the capture copied everything.
  std::string full_copy_reason;
  store::SnapshotId parent = 0;  // the base of an incremental capture, else 0
};

Result<CaptureResult> capture(pid_t pid, store::Store& store, const CaptureOptions& options);

// The owner a process's snapshots go under when no name is given: its comm,
// unless that name already holds another process's images.
Result<std::string> default_name(const store::Store& store, pid_t pid);

}  // namespace frost::dump
