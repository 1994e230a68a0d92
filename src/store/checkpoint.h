// Checkpoint regions: two fixed places written alternately, each holding the
// whole table of contents (owners, snapshots, segment usage) and the log
// position where roll-forward starts. The newer region that verifies wins.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "store/catalog.h"
#include "store/env.h"
#include "store/format.h"

namespace frost::store {

struct CheckpointData {
  CheckpointHeader header{};           // magic, lengths and checksums are filled by encode
  Catalog catalog;
  std::vector<SegmentUsage> segments;
};

// The bytes of a checkpoint region; kNoSpace when they exceed cr_size.
Result<std::vector<uint8_t>> encode_checkpoint(const CheckpointData& cp, const Superblock& sb);

// Reads and verifies region (0 or 1).
Result<CheckpointData> read_checkpoint(const File& file, const Superblock& sb, int region, bool ignore_checksums);

}  // namespace frost::store
