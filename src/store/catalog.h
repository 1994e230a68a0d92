// Owners and their committed snapshots: the store's table of contents. It is
// changed only by applying commit and op records, both when they are written
// and when recovery replays them, so both paths give the same state.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/format.h"

namespace frost::store {

struct OwnerEntry {
  uint32_t id = 0;
  std::string name;
  uint32_t retention = 0;           // 0: the store default
  std::vector<uint64_t> snapshots;  // ascending ids
};

class Catalog {
 public:
  void clear(uint32_t default_retention);

  // Validates, then applies. Errors leave the catalog unchanged.
  Status apply_commit(const CommitRecord& c, const std::string& owner_name);
  Status apply_op(const OpRecord& op);
  // For checkpoint loading.
  Status add_owner(uint32_t id, const std::string& name, uint32_t retention);
  Status add_snapshot(const SnapshotRecord& s);

  const OwnerEntry* owner(uint32_t id) const;
  const OwnerEntry* owner(const std::string& name) const;
  const SnapshotRecord* snapshot(uint64_t id) const;
  const std::map<uint32_t, OwnerEntry>& owners() const { return owners_; }
  const std::map<uint64_t, SnapshotRecord>& snapshots() const { return snaps_; }

  uint32_t retention_of(const OwnerEntry& o) const { return o.retention ? o.retention : default_retention_; }
  uint32_t default_retention() const { return default_retention_; }
  void set_default_retention(uint32_t k) { default_retention_ = k; }

  // Snapshots of the owner that retention removes: beyond the newest K,
  // neither pinned nor in `keep`. `incoming`, when not 0, is a snapshot about
  // to be committed, counted as the newest.
  // `k`, when not 0, replaces the owner's retention.
  std::vector<uint64_t> retention_victims(uint32_t owner, const std::vector<uint64_t>& keep,
                                          uint64_t incoming = 0, uint32_t k = 0) const;

  uint64_t next_snapshot = 1;
  uint32_t next_owner = 1;

 private:
  std::map<uint32_t, OwnerEntry> owners_;
  std::map<std::string, uint32_t> by_name_;
  std::map<uint64_t, SnapshotRecord> snaps_;
  uint32_t default_retention_ = 8;
};

// Owner names are what a user types: printable, no '/', at most 255 bytes.
Status validate_owner_name(const std::string& name);

}  // namespace frost::store
