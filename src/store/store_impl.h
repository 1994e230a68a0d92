// The store's internals, shared by store_open.cc (create, open, recovery),
// store_write.cc (snapshots, ops, checkpoints), store_read.cc, cleaner.cc and
// fsck.cc. Lock order: write_mu_ before state_mu_.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "store/block_reader.h"
#include "store/catalog.h"
#include "store/log_writer.h"
#include "store/page_index.h"
#include "store/segment_table.h"
#include "store/store.h"

namespace frost::store {

// A snapshot being written.
struct WriterState {
  uint32_t owner = 0;
  std::string owner_name;
  SnapshotId parent = 0;
  uint64_t begin_seq = 0;              // log seq when it began: its records are newer
  std::map<uint64_t, IndexEntry> puts;
  RangeSet removed;
  std::map<uint64_t, IndexEntry> meta;  // chunk index -> entry
  uint64_t meta_length = 0;
  uint64_t bytes_written = 0;          // record footprints added for it
};

class StoreImpl {
 public:
  StoreImpl(std::string path, StoreOptions opt) : path_(std::move(path)), opt_(opt) {}

  // store_open.cc
  static Status initialise(File& file, Env& env, const std::string& path, const StoreOptions& opt);
  Status open();

  // store_write.cc
  Result<std::unique_ptr<SnapshotWriter>> begin_snapshot(const std::string& owner, std::optional<SnapshotId> parent);
  Status put_page(SnapshotId id, uint64_t vpn, std::span<const uint8_t, kPageSize> data);
  Status put_pages(SnapshotId id, uint64_t first_vpn, std::span<const uint8_t> pages);
  Status remove_pages(SnapshotId id, uint64_t first, uint64_t last);
  Status put_meta(SnapshotId id, std::span<const uint8_t> bytes);
  Result<SnapshotId> commit(SnapshotId id);
  void abort(SnapshotId id);
  Result<uint32_t> owner_of(SnapshotId id) const;
  Status pin(SnapshotId id, bool on);
  Status remove(SnapshotId id);
  Status remove_owner(const std::string& owner);
  Status set_retention(const std::string& owner, uint32_t keep);
  Status checkpoint();
  Status checkpoint_locked();

  // store_read.cc
  std::vector<OwnerInfo> list() const;
  Result<SnapshotInfo> info(SnapshotId id) const;
  Result<SnapshotId> latest(const std::string& owner) const;
  Result<SnapshotId> latest_intact(const std::string& owner) const;
  Result<bool> read_page(SnapshotId id, uint64_t vpn, std::span<uint8_t, kPageSize> out) const;
  Status for_each_page(SnapshotId id, uint64_t first, uint64_t last,
                       const std::function<Status(uint64_t, std::span<const uint8_t, kPageSize>)>& fn) const;
  Status for_each_page(SnapshotId id,
                       const std::function<Status(uint64_t, std::span<const uint8_t, kPageSize>)>& fn) const {
    return for_each_page(id, 0, kMaxKey, fn);
  }
  Result<bool> has_pages(SnapshotId id, uint64_t first, uint64_t last) const;
  Result<std::vector<uint64_t>> page_numbers(SnapshotId id) const;
  Result<std::vector<uint8_t>> read_meta(SnapshotId id) const;
  Status verify(SnapshotId id) const;
  Status hold(SnapshotId id);
  void release(SnapshotId id);
  StoreStats stats() const;

  // cleaner.cc
  Result<GcReport> gc(bool explicit_run);
  Result<GcReport> gc_locked(bool explicit_run);  // write_mu_ held

  // fsck.cc
  Result<FsckReport> fsck() const;
  // Recounts live bytes per segment from every snapshot's index; damage found on the way goes to `damage`.
  std::vector<uint32_t> count_live(std::vector<std::string>* damage, FsckReport* report) const;

  const std::string& path() const { return path_; }

 private:
  friend class Cleaner;
  Status ensure_writable() const;
  Result<IndexEntry> append(const RecordSpec& spec, std::span<const uint8_t> bytes, bool allow_gc = true,
                            std::optional<uint64_t> sum = std::nullopt);
  Result<IndexEntry> store_block(const RecordSpec& spec, std::span<const uint8_t, kPageSize> data);
  Status sync_or_fail();
  void account(const IndexEntry& e, int64_t sign);
  Status forget_snapshot(SnapshotId id);  // catalog + usage, state_mu_ held
  Status apply_ops_locked(const std::vector<OpRecord>& ops);
  Status append_ops(const std::vector<OpRecord>& ops);
  Status apply_ops_in_memory(const std::vector<OpRecord>& ops);  // state_mu_ held
  SnapshotRecord snapshot_copy(SnapshotId id, bool* found) const;
  Result<IndexBuild> build_meta(WriterState& w, SnapshotId id);
  Status roll_forward(const CheckpointHeader& from, uint64_t* replayed);
  Result<Superblock> find_superblock();
  void describe_log_end(const LogPosition& pos);
  bool is_held(SnapshotId id) const;
  // Snapshots that must not be deleted: held ones, and parents of open
  // writers (but not the parent of writer `except_writer`). write_mu_ held.
  std::vector<uint64_t> in_use(SnapshotId except_writer = 0) const;
  uint64_t protect_from_seq() const;
  Status maybe_auto_gc();
  void forget_pending_owner(const std::string& name);

  std::string path_;
  StoreOptions opt_;
  std::unique_ptr<File> file_;
  Superblock sb_{};
  Geometry geo_{};
  std::unique_ptr<BlockReader> reader_;
  std::unique_ptr<LogWriter> log_;
  SegmentTable segments_;

  mutable std::shared_mutex state_mu_;  // catalog_, counters
  std::mutex write_mu_;                 // log_, writers_, checkpoints
  Catalog catalog_;
  std::map<SnapshotId, WriterState> writers_;
  std::map<std::string, uint32_t> pending_owners_;  // new owners of open writers
  mutable std::mutex hold_mu_;
  std::map<SnapshotId, int> holds_;

  uint64_t cp_seq_ = 0;
  // Counters read by stats() without write_mu_.
  std::atomic<uint64_t> log_bytes_base_{0};  // bytes written before this open
  std::atomic<uint64_t> bytes_new_{0}, bytes_cleaned_{0}, gc_runs_{0};
  uint64_t log_bytes_at_checkpoint_ = 0;
  uint64_t no_gc_before_seq_ = 0;     // backoff after a cleaner run that freed nothing
  bool failed_ = false;               // a sync failed: refuse further writes
  std::vector<std::string> open_damage_, open_notes_;
};

inline uint64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace frost::store
