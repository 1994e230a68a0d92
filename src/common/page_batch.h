// Whole pages gathered for one bulk transfer: runs of consecutive page
// numbers and their bytes, back to back in one buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace frost {

struct PageBatch {
  static constexpr uint64_t kPage = 4096;
  // 2 MiB: large enough that a process_vm_* call or a store write costs
  // little per byte, small enough that the buffers (a pipeline holds three)
  // cost little to fault in for a small process.
  static constexpr size_t kCapacityPages = 512;

  // Not zero-filled: every byte is written before it is read.
  std::unique_ptr<uint8_t[]> storage{new uint8_t[kCapacityPages * kPage]};
  uint8_t* bytes_data() { return storage.get(); }
  const uint8_t* bytes_data() const { return storage.get(); }
  std::vector<std::pair<uint64_t, uint64_t>> runs;  // (first page number, pages)
  size_t pages = 0;

  size_t room() const { return kCapacityPages - pages; }
  bool empty() const { return pages == 0; }
  void clear() {
    runs.clear();
    pages = 0;
  }
  // Reserves n pages at page number first; returns where their bytes go.
  uint8_t* add(uint64_t first, uint64_t n) {
    if (!runs.empty() && runs.back().first + runs.back().second == first) {
      runs.back().second += n;
    } else {
      runs.emplace_back(first, n);
    }
    uint8_t* at = storage.get() + pages * kPage;
    pages += n;
    return at;
  }
  // Calls fn(first page number, bytes of the run) for each run.
  template <typename Fn>
  auto for_each_run(Fn&& fn) const -> decltype(fn(uint64_t{}, std::span<const uint8_t>{})) {
    size_t off = 0;
    for (auto [first, n] : runs) {
      auto st = fn(first, std::span<const uint8_t>(storage.get() + off * kPage, n * kPage));
      if (!st.ok()) return st;
      off += n;
    }
    return decltype(fn(uint64_t{}, std::span<const uint8_t>{}))();
  }
};

}  // namespace frost
