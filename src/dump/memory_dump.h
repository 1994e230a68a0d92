// A process's address space into a snapshot: the area list for the image,
// and the pages that are not elsewhere (the file of a clean mapping) into the
// store. The process must be seized (nothing may change it meanwhile).
#pragma once

#include <sys/types.h>

#include <vector>

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

// With a tracker, writes are tracked from this capture on: areas not yet
// tracked are registered once copied. With a parent too (the image of the
// tracker's base snapshot, which the writer builds on), the capture is
// incremental: a tracked area gives only the pages written since, and the
// areas of the parent that are gone have their pages removed.
struct Tracking {
  DirtyTracker* tracker = nullptr;
  const image::ProcessImage* parent = nullptr;
  // The areas (with smaps' flags) a pre-copy round saw moments ago. Reading
  // smaps walks every page table, which is long for a big process: while it
  // is stopped, maps is read instead and the flags of unchanged areas come
  // from here (an area remapped meanwhile fails its write scan and is copied whole).
  const std::vector<proc::MemoryArea>* recent = nullptr;
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
                                                           std::vector<proc::MemoryArea>* seen);

}  // namespace frost::dump
