#include "restore/page_fill.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "image/page_layout.h"
#include "proc/memory.h"

namespace frost::restore {
namespace {

constexpr uint64_t kPage = 4096;
constexpr size_t kBatchPages = 2048;  // 8 MiB per process_vm_writev batch

class Batch {
 public:
  explicit Batch(pid_t pid) : memory_(pid), buffer_(kBatchPages * kPage) {}

  Status add(uint64_t vpn, std::span<const uint8_t, kPage> page) {
    if (used_ == kBatchPages) FROST_TRY(flush());
    if (runs_.empty() || runs_.back().first + runs_.back().second != vpn) runs_.push_back({vpn, 0});
    runs_.back().second++;
    std::copy(page.begin(), page.end(), buffer_.begin() + used_ * kPage);
    used_++;
    return Status::Ok();
  }

  Status flush() {
    std::vector<proc::MemoryRange> ranges;
    size_t off = 0;
    for (auto [vpn, n] : runs_) {
      ranges.push_back({vpn * kPage, buffer_.data() + off, n * kPage});
      off += n * kPage;
    }
    if (!ranges.empty()) FROST_TRY(memory_.write(ranges));
    runs_.clear();
    used_ = 0;
    return Status::Ok();
  }

 private:
  proc::ProcessMemory memory_;
  std::vector<uint8_t> buffer_;
  std::vector<std::pair<uint64_t, uint64_t>> runs_;  // (first vpn, pages)
  size_t used_ = 0;
};

}  // namespace

Result<std::vector<bool>> areas_with_pages(const store::Store& store, store::SnapshotId id,
                                           const image::ProcessImage& image, uint64_t* pages) {
  FROST_ASSIGN(std::vector<uint64_t> vpns, store.page_numbers(id));
  *pages = vpns.size();
  std::vector<bool> filled(image.areas.size(), false);
  for (size_t i = 0; i < image.areas.size(); ++i) {
    const image::MemoryAreaImage& a = image.areas[i];
    if (a.source == image::ContentSource::kSharedObject) continue;  // filled through its memfd
    auto it = std::lower_bound(vpns.begin(), vpns.end(), a.start / kPage);
    filled[i] = it != vpns.end() && *it < a.end / kPage;
  }
  return filled;
}

Status fill_pages(const store::Store& store, store::SnapshotId id, pid_t pid, const MeltFiles& files,
                  const ProgressFn& progress, uint64_t total_pages) {
  Batch batch(pid);
  uint64_t done = 0;
  Status st = store.for_each_page(id, [&](uint64_t vpn, std::span<const uint8_t, kPage> page) -> Status {
    if (++done % 4096 == 0 && progress) progress(done * kPage, total_pages * kPage);
    if (!image::is_shared_object_vpn(vpn)) return batch.add(vpn, page);
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
  });
  FROST_TRY(st);
  FROST_TRY(batch.flush());
  if (progress) progress(total_pages * kPage, total_pages * kPage);
  return Status::Ok();
}

}  // namespace frost::restore
