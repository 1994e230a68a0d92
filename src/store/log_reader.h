// Reads partial segments back and checks every field before trusting it:
// recovery, the cleaner and fsck all read the log through here.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "store/env.h"
#include "store/format.h"
#include "store/log_writer.h"

namespace frost::store {

struct Partial {
  PartialHeader header{};
  uint64_t file_offset = 0;           // of the header
  std::vector<uint8_t> bytes;         // the whole partial
  std::vector<SummaryEntry> entries;

  // The stored bytes of one of this partial's records.
  std::span<const uint8_t> record(const SummaryEntry& e) const {
    return {bytes.data() + (e.offset - header.offset), e.length};
  }
};

struct ReadOptions {
  bool verify_records = true;     // check each record's checksum too
  bool ignore_checksums = false;  // fuzzing only
};

// Checks a superblock read from disk (or from a partial header's copy).
Status validate_superblock(const Superblock& sb);

// Reads and validates the partial at (segment, offset) of the store sb describes.
Result<Partial> read_partial(const File& file, const Superblock& sb, uint32_t segment, uint32_t offset,
                             const ReadOptions& opt);

// Every partial of one segment that belongs to a single run of the log: from
// offset 0, each chained to the one before. Stale partials from the segment's
// earlier life, past the first break, are not returned.
std::vector<Partial> read_segment(const File& file, const Superblock& sb, uint32_t segment, const ReadOptions& opt);

}  // namespace frost::store
