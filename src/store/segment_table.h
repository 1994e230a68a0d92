// The segment usage table: which segments hold log data, how many of their
// bytes some snapshot still references, and when they were last written (their
// age for the cleaner). Thread-safe: the writer, the cleaner and stats() share it.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "store/format.h"

namespace frost::store {

class SegmentTable {
 public:
  void reset(std::vector<SegmentUsage> entries);
  std::vector<SegmentUsage> snapshot() const;

  uint64_t count() const;
  uint64_t free_count() const;
  // Lowest-numbered free segment, marked used. Unless for_cleaner, the last
  // `reserve` free segments are kept back so the cleaner always has room.
  std::optional<uint32_t> allocate(bool for_cleaner, uint32_t reserve);
  // Returns a segment taken by allocate() that was never written.
  void unallocate(uint32_t segment);
  void mark_written(uint32_t segment, uint64_t seq);
  void add_live(uint32_t segment, int64_t bytes);
  void set_live(uint32_t segment, uint32_t bytes);
  void clear_live();
  SegmentUsage get(uint32_t segment) const;
  // Frees used segments without live bytes, except those in `keep` and those
  // written at or after `protect_from_seq`. Returns what it freed.
  std::vector<uint32_t> free_empty(const std::vector<uint32_t>& keep, uint64_t protect_from_seq);
  // The set free_empty() would free, without freeing.
  std::vector<uint32_t> empty_segments(const std::vector<uint32_t>& keep, uint64_t protect_from_seq) const;
  void mark_free(const std::vector<uint32_t>& segments);

 private:
  mutable std::mutex mu_;
  std::vector<SegmentUsage> s_;
  uint64_t free_ = 0;
};

}  // namespace frost::store
