// The log-structured image store: every snapshot of every persistent process.
//
//   auto store = Store::open_or_create(path, options);
//   auto w = store->begin_snapshot("calc", parent);   // parent: std::nullopt = full
//   w->put_page(vpn, page); w->put_meta(bytes);
//   SnapshotId id = w->commit();                      // durable when it returns
//
// Writers are serialised inside the store; reads (read_page, for_each_page,
// read_meta, list, stats) are safe from many threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/env.h"
#include "store/format.h"

namespace frost::store {

using SnapshotId = uint64_t;

struct StoreOptions {
  Env* env = Env::posix();
  uint64_t segment_size = 4ull << 20;   // create only
  uint64_t capacity = 64ull << 30;      // create only: bytes of segments at most
  Codec compression = Codec::kNone;     // for new pages and meta
  int zstd_level = 1;
  uint32_t default_retention = 8;       // create only: snapshots kept per owner
  uint32_t max_snapshots = 16384;       // create only: sizes the checkpoint regions
  uint64_t checkpoint_every_bytes = 64ull << 20;  // bounds roll-forward work
  // The cleaner runs inside commit() when fewer than this fraction of segments
  // are free, until gc_target_free are. Writes (but not the cleaner) also keep
  // gc_reserve_segments free so the cleaner always has room to copy into.
  double gc_low_free = 0.05;
  double gc_target_free = 0.10;
  uint32_t gc_reserve_segments = 2;
  bool read_only = false;               // open without recovery writes or a lock
  // Fuzzing only: accept wrong checksums so the parsers behind them are reached.
  bool ignore_checksums = false;
};

struct SnapshotInfo {
  SnapshotId id = 0;
  SnapshotId parent = 0;        // 0: a full snapshot
  std::string owner;
  uint64_t created_ns = 0;
  uint64_t page_count = 0;      // present pages (zero pages included)
  uint64_t meta_length = 0;
  uint64_t bytes_written = 0;   // bytes this snapshot added to the log
  bool pinned = false;
};

struct OwnerInfo {
  std::string name;
  uint32_t retention = 0;
  std::vector<SnapshotInfo> snapshots;  // oldest first
};

struct StoreStats {
  uint64_t segment_size = 0;
  uint64_t segments_total = 0;   // capacity
  uint64_t segments_used = 0;
  uint64_t segments_free = 0;
  uint64_t live_bytes = 0;       // referenced by some snapshot
  uint64_t file_bytes = 0;
  double utilisation = 0;        // live bytes / bytes of used segments
  uint64_t bytes_written = 0;    // all bytes appended to the log
  uint64_t bytes_new = 0;        // new page and meta bytes from callers
  uint64_t bytes_cleaned = 0;    // bytes the cleaner copied
  double write_cost = 0;         // bytes_written / bytes_new
  uint64_t gc_runs = 0;
  uint64_t owners = 0;
  uint64_t snapshots = 0;
  std::vector<uint32_t> segment_live;  // live bytes per used segment, by index
};

struct GcReport {
  uint64_t segments_cleaned = 0;
  uint64_t segments_freed = 0;
  uint64_t bytes_copied = 0;
  uint64_t segments_free_after = 0;
};

struct FsckReport {
  std::vector<std::string> damage;   // one line per damaged thing, naming it
  std::vector<std::string> notes;    // harmless findings (e.g. a torn log tail)
  uint64_t snapshots_checked = 0;
  uint64_t pages_checked = 0;
  uint64_t nodes_checked = 0;
  bool clean() const { return damage.empty(); }
};

class SnapshotWriter;
class StoreImpl;

class Store {
 public:
  // Creates a new store file (mode 0600) and makes it durable, directory entry included.
  static Result<std::unique_ptr<Store>> create(const std::string& path, const StoreOptions& options);
  // Opens and recovers: newest valid checkpoint, then roll-forward through the log.
  static Result<std::unique_ptr<Store>> open(const std::string& path, const StoreOptions& options);
  static Result<std::unique_ptr<Store>> open_or_create(const std::string& path, const StoreOptions& options);
  ~Store();

  // Starts a snapshot of owner (created on first use). With a parent, every page
  // of the parent is inherited unless put or removed again: an incremental snapshot.
  Result<std::unique_ptr<SnapshotWriter>> begin_snapshot(const std::string& owner,
                                                         std::optional<SnapshotId> parent = std::nullopt);

  std::vector<OwnerInfo> list() const;
  Result<SnapshotInfo> info(SnapshotId id) const;
  // Newest committed snapshot of owner.
  Result<SnapshotId> latest(const std::string& owner) const;
  // Newest snapshot of owner whose index, pages and meta all verify.
  Result<SnapshotId> latest_intact(const std::string& owner) const;

  // Reads one page into out (4 KiB). Returns false when the snapshot has no such page.
  Result<bool> read_page(SnapshotId id, uint64_t vpn, std::span<uint8_t, kPageSize> out) const;
  // Calls fn for every present page in vpn order; fn returning an error stops the walk.
  Status for_each_page(SnapshotId id,
                       const std::function<Status(uint64_t vpn, std::span<const uint8_t, kPageSize>)>& fn) const;
  // The same for the pages with first <= vpn <= last: only the index nodes
  // that meet the range are read.
  Status for_each_page_in(SnapshotId id, uint64_t first, uint64_t last,
                          const std::function<Status(uint64_t vpn, std::span<const uint8_t, kPageSize>)>& fn) const;
  // Whether the snapshot holds any page with first <= vpn <= last (a few node reads).
  Result<bool> has_pages(SnapshotId id, uint64_t first, uint64_t last) const;
  // Every present vpn, in order, without reading pages.
  Result<std::vector<uint64_t>> page_numbers(SnapshotId id) const;
  Result<std::vector<uint8_t>> read_meta(SnapshotId id) const;
  // Reads every index node, page and meta chunk of the snapshot.
  Status verify(SnapshotId id) const;

  // Pinned snapshots survive retention (a frozen process's image is pinned).
  Status pin(SnapshotId id);
  Status unpin(SnapshotId id);
  Status remove(SnapshotId id);
  Status remove_owner(const std::string& owner);
  Status set_retention(const std::string& owner, uint32_t keep);
  // While held, the cleaner does not move the snapshot's blocks (lazy melt reads them).
  Status hold(SnapshotId id);
  void release(SnapshotId id);

  // Runs the cleaner now: frees segments, copying their live blocks.
  Result<GcReport> gc();
  // Writes a checkpoint so the next open needs no roll-forward.
  Status checkpoint();
  Result<FsckReport> fsck() const;
  StoreStats stats() const;
  const std::string& path() const;

 private:
  friend class SnapshotWriter;
  explicit Store(std::unique_ptr<StoreImpl> impl);
  std::unique_ptr<StoreImpl> impl_;
};

// One snapshot being written. Destroying it without commit() abandons it:
// nothing becomes visible, and its blocks are garbage for the cleaner.
class SnapshotWriter {
 public:
  ~SnapshotWriter();
  // Stores one 4 KiB page; an all-zero page takes no block. A later put of the same vpn wins.
  Status put_page(uint64_t vpn, std::span<const uint8_t, kPageSize> data);
  // Stores a run of whole pages from first_vpn on. Faster than one put_page
  // per page: zero tests, compression and checksums run on every core.
  Status put_pages(uint64_t first_vpn, std::span<const uint8_t> pages);
  // Drops inherited pages with first <= vpn <= last (an area the process unmapped).
  Status remove_pages(uint64_t first, uint64_t last);
  // Replaces the snapshot's metadata blob.
  Status put_meta(std::span<const uint8_t> bytes);
  // Makes the snapshot durable; returns only after the sync. The writer is spent after.
  Result<SnapshotId> commit();
  SnapshotId id() const { return id_; }

 private:
  friend class StoreImpl;
  SnapshotWriter(StoreImpl* store, SnapshotId id) : store_(store), id_(id) {}
  StoreImpl* store_;
  SnapshotId id_;
  bool done_ = false;
};

}  // namespace frost::store
