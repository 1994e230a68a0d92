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
                                           const image::ProcessImage& image, uint64_t* pages,
                                           std::vector<uint64_t>* per_area) {
  FROST_ASSIGN(std::vector<uint64_t> vpns, store.page_numbers(id));
  *pages = vpns.size();
  std::vector<bool> filled(image.areas.size(), false);
  if (per_area) per_area->assign(image.areas.size(), 0);
  for (size_t i = 0; i < image.areas.size(); ++i) {
    const image::MemoryAreaImage& a = image.areas[i];
    if (a.source == image::ContentSource::kSharedObject) continue;  // filled through its memfd
    auto it = std::lower_bound(vpns.begin(), vpns.end(), a.start / kPage);
    filled[i] = it != vpns.end() && *it < a.end / kPage;
    if (per_area) (*per_area)[i] = uint64_t(std::lower_bound(it, vpns.end(), a.end / kPage) - it);
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

// Every stored page outside `skip`, in vpn order. A lazy melt leaves most
// pages out: those left are read one by one instead of walking them all.
static Status for_each_eager_page(const store::Store& store, store::SnapshotId id, const std::vector<VpnRange>& skip,
                                  const std::function<Status(uint64_t, std::span<const uint8_t, kPage>)>& fn) {
  if (skip.empty()) return store.for_each_page(id, fn);
  FROST_ASSIGN(std::vector<uint64_t> vpns, store.page_numbers(id));
  std::array<uint8_t, kPage> page;
  auto skipped = skip.begin();
  for (uint64_t vpn : vpns) {
    while (skipped != skip.end() && skipped->end <= vpn) ++skipped;
    if (skipped != skip.end() && skipped->first <= vpn) continue;
    FROST_ASSIGN(bool stored, store.read_page(id, vpn, page));
    if (stored) FROST_TRY(fn(vpn, page));
  }
  return Status::Ok();
}

// The store is read on this thread while the previous batch is written
// into the process on the pipeline's: the two bandwidths overlap.
Status fill_pages(const store::Store& store, store::SnapshotId id, pid_t pid, const MeltFiles& files,
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
    if (++done % 4096 == 0 && progress) progress(done * kPage, total_pages * kPage);
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
  if (progress) progress(total_pages * kPage, total_pages * kPage);
  return Status::Ok();
}

}  // namespace frost::restore
