#include "restore/page_fill.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <functional>

#include <fmt/format.h>

#include "common/batch_pipeline.h"
#include "common/page_batch.h"
#include "image/page_layout.h"
#include "proc/memory.h"

namespace frost::restore {
namespace {

constexpr uint64_t kPage = 4096;

}  // namespace

Result<std::vector<bool>> areas_with_pages(const store::Store& store, store::SnapshotId id,
                                           const image::ProcessImage& image, uint64_t* pages) {
  FROST_ASSIGN(store::SnapshotInfo info, store.info(id));
  *pages = info.page_count;
  std::vector<bool> filled(image.areas.size(), false);
  for (size_t i = 0; i < image.areas.size(); ++i) {
    const image::MemoryAreaImage& a = image.areas[i];
    if (a.source == image::ContentSource::kSharedObject || a.end <= a.start) continue;  // filled through its memfd
    FROST_ASSIGN(filled[i], store.has_pages(id, a.start / kPage, a.end / kPage - 1));
  }
  return filled;
}

static Status write_shared_page(const MeltFiles& files, uint64_t vpn, std::span<const uint8_t, kPage> page) {
  uint64_t rel = vpn - image::kSharedVpnBase;
  uint64_t object = rel >> image::kSharedIdShift;
  uint64_t offset = (rel & ((1ull << image::kSharedIdShift) - 1)) * kPage;
  int fd = files.shared_object_fd(object);
  if (fd < 0) return Error::corruption(fmt::format("page {:#x} belongs to no shared object of the image", vpn));
  if (offset + kPage > files.shared_object_size(object)) return Status::Ok();  // beyond every mapping
  if (::pwrite(fd, page.data(), kPage, off_t(offset)) != ssize_t(kPage)) {
    return Error::io("filling a shared memory object");
  }
  return Status::Ok();
}

// Every stored page outside `skip`, in vpn order: the gaps between the
// skipped ranges are walked one by one, so a lazy melt reads none of the
// index under its pending areas.
static Status for_each_eager_page(const store::Store& store, store::SnapshotId id, const std::vector<VpnRange>& skip,
                                  const std::function<Status(uint64_t, std::span<const uint8_t, kPage>)>& fn) {
  if (skip.empty()) return store.for_each_page(id, fn);
  uint64_t from = 0;
  for (const VpnRange& r : skip) {
    if (r.first > from) FROST_TRY(store.for_each_page_in(id, from, r.first - 1, fn));
    from = std::max(from, r.end);
  }
  return store.for_each_page_in(id, from, store::kMaxKey, fn);
}

// The store is read on this thread while the previous batch is written
// into the process on the pipeline's: the two bandwidths overlap.
Result<uint64_t> fill_pages(const store::Store& store, store::SnapshotId id, pid_t pid, const MeltFiles& files,
                            const ProgressFn& progress, uint64_t total_pages, const std::vector<VpnRange>& skip) {
  proc::ProcessMemory memory(pid);
  BatchPipeline<PageBatch> pipe(3, [&memory](PageBatch& b) -> Status {
    std::vector<proc::MemoryRange> ranges;
    size_t off = 0;
    for (auto [vpn, n] : b.runs) {
      ranges.push_back({vpn * kPage, b.bytes_data() + off * kPage, n * kPage});
      off += n;
    }
    Status st = memory.write(ranges);
    b.clear();
    return st;
  });
  PageBatch* batch = pipe.acquire();
  uint64_t done = 0;
  Status walked = for_each_eager_page(store, id, skip, [&](uint64_t vpn, std::span<const uint8_t, kPage> page) -> Status {
    if (++done % 4096 == 0 && progress && total_pages > 0) progress(done * kPage, total_pages * kPage);
    if (image::is_shared_object_vpn(vpn)) return write_shared_page(files, vpn, page);
    if (batch != nullptr && batch->room() == 0) {
      pipe.publish(batch);
      batch = pipe.acquire();
    }
    if (batch == nullptr) return Error::io("writing pages into the new process");  // the sink's error follows
    std::copy(page.begin(), page.end(), batch->add(vpn, 1));
    return Status::Ok();
  });
  if (batch != nullptr) pipe.publish(batch);
  Status written = pipe.finish();
  FROST_TRY(written);
  FROST_TRY(walked);
  if (progress) progress(done * kPage, done * kPage);
  return done;
}

}  // namespace frost::restore
