// Appends records to the log: fills the current partial segment in memory and
// writes it whole (header, records, summary) when it is full or on flush().
// Not thread-safe: the store serialises writers.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/result.h"
#include "store/env.h"
#include "store/format.h"
#include "store/segment_table.h"

namespace frost::store {

// Where the next partial goes, and what it must chain to.
struct LogPosition {
  uint32_t segment = 0;
  uint32_t offset = 0;
  uint32_t next_segment = kNoSegment;
  uint64_t seq = 1;
  uint64_t prev_hash = 0;
};

struct RecordSpec {
  RecordKind kind;
  Tree tree = Tree::kPages;
  uint8_t level = 0;
  Codec codec = Codec::kNone;
  uint32_t owner = 0;
  uint64_t key = 0;
  uint64_t epoch = 0;
};

// Byte geometry shared by the writer, the reader and recovery.
struct Geometry {
  uint64_t segment_base;
  uint64_t segment_size;
  uint64_t segment_count;
  uint64_t segment_offset(uint32_t s) const { return segment_base + uint64_t(s) * segment_size; }
  // The segment holding file offset off (off must be inside the segment area).
  uint32_t segment_of(uint64_t off) const { return uint32_t((off - segment_base) / segment_size); }
  bool in_segments(uint64_t off, uint64_t len) const {
    return off >= segment_base && len <= segment_size * segment_count &&
           off - segment_base <= segment_size * segment_count - len;
  }
};

// Bytes a record occupies in its partial: what the usage table counts as live.
inline uint32_t record_footprint(uint32_t length) { return uint32_t(align_up(length, kRecordAlign)); }

class LogWriter {
 public:
  LogWriter(File* file, const Superblock& super, SegmentTable* segments, uint32_t reserve_segments);

  // After recovery every partial before pos is on disk.
  void reset(const LogPosition& pos);
  // The position of the next partial, as a checkpoint must record it. Valid
  // only right after flush().
  LogPosition position() const;

  // Appends one record; its location and checksum come back as an IndexEntry.
  // `sum`, when given, is the bytes' block_checksum, computed by the caller.
  Result<IndexEntry> append(const RecordSpec& spec, std::span<const uint8_t> bytes,
                            std::optional<uint64_t> sum = std::nullopt);
  // Writes the partial being filled (not durable until sync()).
  Status flush();
  // flush() and make everything durable.
  Status sync();
  // While set, new segments may come from the reserve kept for the cleaner.
  void set_cleaner_mode(bool on) { for_cleaner_ = on; }

  uint64_t bytes_written() const { return bytes_written_; }
  uint64_t seq() const { return pos_.seq; }
  uint32_t head_segment() const { return pos_.segment; }
  uint32_t next_segment() const { return pos_.next_segment; }

 private:
  bool fits(size_t length) const;
  Status advance_segment();
  std::optional<uint32_t> allocate();

  File* file_;
  Superblock super_;
  Geometry geo_;
  SegmentTable* segments_;
  uint32_t reserve_;
  bool for_cleaner_ = false;
  LogPosition pos_;
  std::vector<uint8_t> buf_;
  std::vector<SummaryEntry> entries_;
  uint32_t data_length_ = 0;
  std::atomic<uint64_t> bytes_written_{0};
  uint64_t durable_seq_ = 0;  // highest seq known to be on disk  // read by stats() from other threads
};

}  // namespace frost::store
