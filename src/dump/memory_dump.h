// A process's address space into a snapshot: the area list for the image,
// and the pages that are not elsewhere (the file of a clean mapping) into the
// store. The process must be seized (nothing may change it meanwhile).
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/result.h"
#include "dump/progress.h"
#include "image/process_image.h"
#include "store/store.h"

namespace frost::dump {

struct MemoryDumpStats {
  uint64_t pages = 0;        // pages handed to the store
  uint64_t bytes_read = 0;   // bytes copied out of the process
};

// Fails with kUnsupported naming the first area frost cannot freeze (device
// memory, SysV shared memory, a shared mapping of a deleted file...).
Result<std::vector<image::MemoryAreaImage>> dump_memory(pid_t pid, store::SnapshotWriter& writer,
                                                        const ProgressFn& progress,
                                                        MemoryDumpStats* stats);

}  // namespace frost::dump
