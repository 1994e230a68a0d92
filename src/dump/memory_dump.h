// A process's address space into a snapshot: the area list for the image,
// and the pages that are not elsewhere (the file of a clean mapping) into the
// store. The process must be seized (nothing may change it meanwhile).
#pragma once

#include <sys/types.h>

#include <memory>
#include <vector>

#include "common/page_batch.h"
#include "common/result.h"
#include "dump/progress.h"
#include "image/process_image.h"
#include "proc/proc_maps.h"
#include "store/store.h"

namespace frost::dump {

struct MemoryDumpStats {
  uint64_t pages = 0;        // pages handed to the store
  uint64_t bytes_read = 0;   // bytes copied out of the process
};

class DirtyTracker;

// Pages read from a stopped process and not yet stored. A snapshot lets the
// process go first: compressing, checksumming and writing them (most of a
// short stop's time) then runs while it does. Bounded: once kMaxPages are
// held, the copy stores them while the process waits, as it would without a
// hold, and holds on from there.
class HeldPages {
 public:
  static constexpr uint64_t kMaxPages = 16384;  // 64 MiB

  // A new, empty batch at the end of the hold.
  PageBatch& append();
  // Pages added to the batches (their runs) since the last store().
  void count(uint64_t pages) { pages_ += pages; }
  bool full() const { return pages_ >= kMaxPages; }
  uint64_t pages() const { return pages_; }
  // Into the snapshot, in the order held; the hold is empty after, whatever happened.
  Status store(store::SnapshotWriter& writer);

 private:
  std::vector<std::unique_ptr<PageBatch>> batches_;
  uint64_t pages_ = 0;
};

// What the pre-copy rounds of one capture remember between them. A page
// written in two rounds running is hot: copying it again each round writes
// it to the store again each time (a counter, an index, a generation
// array), so it is owed to the stopped round instead, which copies it once.
struct PrecopyState {
  static constexpr size_t kMaxOwed = 2048;  // 8 MiB: a millisecond of the stop
  std::vector<uint64_t> last_written;  // page addresses the round before found written, sorted
  std::vector<uint64_t> owed;          // page addresses deferred to the stopped round, sorted
  uint64_t deferred = 0;               // pages the last round deferred
};

// With a tracker, writes are tracked from this capture on: areas not yet
// tracked are registered once copied. With a parent too (the image of the
// tracker's base snapshot, which the writer builds on), the capture is
// incremental: a tracked area gives only the pages written since, and the
// areas of the parent that are gone have their pages removed.
struct Tracking {
  DirtyTracker* tracker = nullptr;
  const image::ProcessImage* parent = nullptr;
  // Where the pages go instead of the writer (see HeldPages); none: the writer.
  HeldPages* hold = nullptr;
  // Pages the pre-copy rounds deferred (PrecopyState::owed): copied with
  // the written ones of the areas still mapped.
  const std::vector<uint64_t>* owed = nullptr;
};

// Fails with kUnsupported naming the first area frost cannot freeze (device
// memory, SysV shared memory, a shared mapping of a deleted file...).
Result<std::vector<image::MemoryAreaImage>> dump_memory(pid_t pid, store::SnapshotWriter& writer,
                                                        const ProgressFn& progress,
                                                        MemoryDumpStats* stats,
                                                        Tracking tracking = {});

// One pre-copy round of a force snapshot, made while the process runs: an
// area the tracker tracks gives the pages written since the last round (or
// capture); any other private area is registered first and then copied
// whole, so a write racing the copy is seen by the next round. Shared
// objects are left to the final, stopped round. Returns the areas it looked
// at, for the final round to remove the pages of those that vanish.
Result<std::vector<image::MemoryAreaImage>> precopy_memory(pid_t pid, store::SnapshotWriter& writer,
                                                           DirtyTracker& tracker, MemoryDumpStats* stats,
                                                           PrecopyState* state);

}  // namespace frost::dump
