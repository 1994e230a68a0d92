// Eager melt: every stored page is copied into the new process before it runs.
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/result.h"
#include "dump/progress.h"
#include "image/process_image.h"
#include "restore/melt_files.h"
#include "store/store.h"

namespace frost::restore {

// For each area of the image, whether the snapshot holds pages for it (the
// area is then mapped writable until filled); *pages: the snapshot's pages.
// A few index nodes per area: the cost does not grow with the image.
Result<std::vector<bool>> areas_with_pages(const store::Store& store, store::SnapshotId id,
                                           const image::ProcessImage& image, uint64_t* pages);

// Snapshot pages [first, end) by vpn.
struct VpnRange {
  uint64_t first = 0, end = 0;
};

// Private pages go into process `pid` (process_vm_writev in large batches),
// shared-object pages into their memfds. Pages in `skip` (sorted, disjoint:
// a lazy melt's areas) are left out, and so are the index nodes that hold
// only those. total_pages is for progress (0: unknown). Returns the pages filled.
Result<uint64_t> fill_pages(const store::Store& store, store::SnapshotId id, pid_t pid, const MeltFiles& files,
                            const ProgressFn& progress, uint64_t total_pages, const std::vector<VpnRange>& skip = {});

}  // namespace frost::restore
