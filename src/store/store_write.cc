// Writing: snapshots (pages, meta, commit), operations (pin, delete,
// retention) and checkpoints. All under write_mu_; the catalog changes under
// state_mu_ only after the records that describe the change are durable.
#include <algorithm>
#include <cstring>

#include "store/checkpoint.h"
#include "store/checksum.h"
#include "store/codec.h"
#include "store/worker_pool.h"
#include "store/store_impl.h"

namespace frost::store {
namespace {

class LogNodeSink final : public NodeSink {
 public:
  LogNodeSink(std::function<Result<IndexEntry>(const RecordSpec&, std::span<const uint8_t>)> append, Tree tree,
              uint32_t owner, uint64_t epoch)
      : append_(std::move(append)), tree_(tree), owner_(owner), epoch_(epoch) {}
  Result<IndexEntry> write_node(const Node& n, uint64_t base) override {
    auto bytes = encode_node(n);
    return append_(RecordSpec{RecordKind::kNode, tree_, n.level, Codec::kNone, owner_, base, epoch_}, bytes);
  }

 private:
  std::function<Result<IndexEntry>(const RecordSpec&, std::span<const uint8_t>)> append_;
  Tree tree_;
  uint32_t owner_;
  uint64_t epoch_;
};

Error no_writer(SnapshotId id) { return Error::invalid("snapshot " + std::to_string(id) + " is not being written"); }

}  // namespace

Status StoreImpl::ensure_writable() const {
  if (opt_.read_only) return Error::invalid("store " + path_ + " is open read-only");
  if (failed_) return Error(ErrorKind::kFailed, "store " + path_ + " saw a failed write or sync; reopen it to recover");
  return Status::Ok();
}

Status StoreImpl::sync_or_fail() {
  Status st = log_->sync();
  // After a failed fdatasync the kernel may have dropped dirty pages while
  // marking them clean: nothing written since the last good sync can be trusted.
  if (!st.ok()) failed_ = true;
  return st;
}

void StoreImpl::account(const IndexEntry& e, int64_t sign) {
  if (e.empty() || e.zero()) return;
  segments_.add_live(geo_.segment_of(e.offset()), sign * int64_t(record_footprint(e.length())));
}

uint64_t StoreImpl::protect_from_seq() const {
  uint64_t seq = UINT64_MAX;
  for (const auto& [id, w] : writers_) seq = std::min(seq, w.begin_seq);
  return seq;
}

Result<IndexEntry> StoreImpl::append(const RecordSpec& spec, std::span<const uint8_t> bytes, bool allow_gc,
                                     std::optional<uint64_t> sum) {
  auto r = log_->append(spec, bytes, sum);
  if (!r.ok() && r.error().is(ErrorKind::kNoSpace) && allow_gc) {
    auto g = gc_locked(false);
    if (g.ok() && g->segments_freed > 0) r = log_->append(spec, bytes, sum);
  }
  if (!r.ok() && !r.error().is(ErrorKind::kNoSpace) && !r.error().is(ErrorKind::kInvalidArgument)) failed_ = true;
  return r;
}

Result<IndexEntry> StoreImpl::store_block(const RecordSpec& base, std::span<const uint8_t, kPageSize> data) {
  if (is_zero(data)) return IndexEntry::zero_page();
  std::vector<uint8_t> packed;
  RecordSpec spec = base;
  spec.codec = compress_block(opt_.compression, opt_.zstd_level, data, packed);
  std::span<const uint8_t> bytes = spec.codec == Codec::kNone ? std::span<const uint8_t>(data) : packed;
  FROST_ASSIGN(IndexEntry e, append(spec, bytes));
  bytes_new_ += record_footprint(e.length());
  return e;
}

Result<std::unique_ptr<SnapshotWriter>> StoreImpl::begin_snapshot(const std::string& owner,
                                                                  std::optional<SnapshotId> parent) {
  FROST_TRY(validate_owner_name(owner));
  std::lock_guard wl(write_mu_);
  FROST_TRY(ensure_writable());
  WriterState w;
  w.owner_name = owner;
  {
    std::shared_lock sl(state_mu_);
    const OwnerEntry* o = catalog_.owner(owner);
    if (o) {
      w.owner = o->id;
    } else if (auto p = pending_owners_.find(owner); p != pending_owners_.end()) {
      w.owner = p->second;
    } else {
      w.owner = catalog_.next_owner++;
      pending_owners_[owner] = w.owner;
    }
    if (parent) {
      const SnapshotRecord* p = catalog_.snapshot(*parent);
      if (!p) return Error::not_found("parent snapshot " + std::to_string(*parent) + " does not exist");
      if (p->owner != w.owner) return Error::invalid("parent snapshot " + std::to_string(*parent) + " belongs to another owner");
      w.parent = *parent;
    }
  }
  // The parent cannot be deleted while we build on it (see in_use), but the
  // cleaner may move its blocks: commit() builds on its root as it is then.
  SnapshotId id = catalog_.next_snapshot++;
  w.begin_seq = log_->seq();
  writers_[id] = std::move(w);
  return std::unique_ptr<SnapshotWriter>(new SnapshotWriter(this, id));
}

Status StoreImpl::put_page(SnapshotId id, uint64_t vpn, std::span<const uint8_t, kPageSize> data) {
  if (vpn > kMaxKey) return Error::invalid("page number " + std::to_string(vpn) + " is beyond 48 bits");
  std::lock_guard wl(write_mu_);
  FROST_TRY(ensure_writable());
  auto it = writers_.find(id);
  if (it == writers_.end()) return no_writer(id);
  FROST_ASSIGN(IndexEntry e, store_block(RecordSpec{RecordKind::kPage, Tree::kPages, 0, Codec::kNone,
                                                    it->second.owner, vpn, id},
                                         data));
  it->second.bytes_written += e.zero() ? 0 : record_footprint(e.length());
  it->second.puts[vpn] = e;
  // A big snapshot must not wait for the log to run dry before cleaning.
  return maybe_auto_gc();
}

namespace {

// A page made ready for the log outside the lock: zero test, compression, checksum.
struct PreparedPage {
  bool zero = false;
  Codec codec = Codec::kNone;
  std::vector<uint8_t> packed;  // compressed bytes, when codec != kNone
  uint64_t sum = 0;
};

}  // namespace

Status StoreImpl::put_pages(SnapshotId id, uint64_t first_vpn, std::span<const uint8_t> pages) {
  if (pages.size() % kPageSize != 0) return Error::invalid("put_pages needs whole pages");
  size_t n = pages.size() / kPageSize;
  if (n == 0) return Status::Ok();
  if (first_vpn > kMaxKey || n - 1 > kMaxKey - first_vpn) return Error::invalid("page numbers beyond 48 bits");
  // The CPU work runs on every core, before the log lock is taken.
  std::vector<PreparedPage> prep(n);
  constexpr size_t kChunk = 16;
  WorkerPool::shared().parallel_for((n + kChunk - 1) / kChunk, [&](size_t c) {
    for (size_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); i++) {
      std::span<const uint8_t> page = pages.subspan(i * kPageSize, kPageSize);
      PreparedPage& p = prep[i];
      p.zero = is_zero(page);
      if (p.zero) continue;
      p.codec = compress_block(opt_.compression, opt_.zstd_level, page, p.packed);
      p.sum = p.codec == Codec::kNone ? block_checksum(page.data(), page.size())
                                       : block_checksum(p.packed.data(), p.packed.size());
    }
  });
  std::lock_guard wl(write_mu_);
  FROST_TRY(ensure_writable());
  auto it = writers_.find(id);
  if (it == writers_.end()) return no_writer(id);
  for (size_t i = 0; i < n; i++) {
    const PreparedPage& p = prep[i];
    IndexEntry e = IndexEntry::zero_page();
    if (!p.zero) {
      std::span<const uint8_t> bytes = p.codec == Codec::kNone ? pages.subspan(i * kPageSize, kPageSize)
                                                               : std::span<const uint8_t>(p.packed);
      RecordSpec spec{RecordKind::kPage, Tree::kPages, 0, p.codec, it->second.owner, first_vpn + i, id};
      FROST_ASSIGN(e, append(spec, bytes, true, p.sum));
      bytes_new_ += record_footprint(e.length());
      it->second.bytes_written += record_footprint(e.length());
    }
    it->second.puts[first_vpn + i] = e;
  }
  return maybe_auto_gc();
}

Status StoreImpl::remove_pages(SnapshotId id, uint64_t first, uint64_t last) {
  if (first > last) return Error::invalid("empty page range");
  std::lock_guard wl(write_mu_);
  auto it = writers_.find(id);
  if (it == writers_.end()) return no_writer(id);
  auto& w = it->second;
  w.puts.erase(w.puts.lower_bound(first), last == UINT64_MAX ? w.puts.end() : w.puts.upper_bound(last));
  w.removed.add(first, std::min(last, kMaxKey));
  return Status::Ok();
}

Status StoreImpl::put_meta(SnapshotId id, std::span<const uint8_t> bytes) {
  std::lock_guard wl(write_mu_);
  FROST_TRY(ensure_writable());
  auto it = writers_.find(id);
  if (it == writers_.end()) return no_writer(id);
  auto& w = it->second;
  w.meta.clear();
  w.meta_length = bytes.size();
  std::array<uint8_t, kPageSize> chunk;
  for (uint64_t i = 0; i * kPageSize < bytes.size(); i++) {
    size_t n = std::min<size_t>(kPageSize, bytes.size() - i * kPageSize);
    std::memcpy(chunk.data(), bytes.data() + i * kPageSize, n);
    std::memset(chunk.data() + n, 0, kPageSize - n);
    FROST_ASSIGN(IndexEntry e, store_block(RecordSpec{RecordKind::kPage, Tree::kMeta, 0, Codec::kNone, w.owner, i, id},
                                           chunk));
    w.bytes_written += e.zero() ? 0 : record_footprint(e.length());
    w.meta[i] = e;
  }
  return Status::Ok();
}

void StoreImpl::abort(SnapshotId id) {
  std::lock_guard wl(write_mu_);
  auto it = writers_.find(id);
  if (it == writers_.end()) return;
  std::string name = it->second.owner_name;
  writers_.erase(it);
  forget_pending_owner(name);
}

void StoreImpl::forget_pending_owner(const std::string& name) {
  for (const auto& [id, w] : writers_)
    if (w.owner_name == name) return;  // another writer still uses the reserved id
  pending_owners_.erase(name);
}

Result<SnapshotId> StoreImpl::commit(SnapshotId id) {
  std::unique_lock wl(write_mu_);
  FROST_TRY(ensure_writable());
  auto it = writers_.find(id);
  if (it == writers_.end()) return no_writer(id);
  // Make room first: while the index is built the cleaner must not run, as
  // it could move (and free) the parent nodes the new tree is built from.
  FROST_TRY(maybe_auto_gc());
  WriterState& w = it->second;
  IndexEntry parent_root{};
  uint64_t parent_pages = 0;
  if (w.parent) {
    std::shared_lock sl(state_mu_);
    const SnapshotRecord* p = catalog_.snapshot(w.parent);
    if (!p) return Error::not_found("parent snapshot " + std::to_string(w.parent) + " is gone");
    parent_root = p->page_root;
    parent_pages = p->page_count;
  }
  auto appender = [this](const RecordSpec& s, std::span<const uint8_t> b) { return append(s, b, false); };

  LogNodeSink page_sink(appender, Tree::kPages, w.owner, id);
  FROST_ASSIGN(IndexBuild pages, index_build(*reader_, page_sink, Tree::kPages, parent_root, w.puts, w.removed));
  LogNodeSink meta_sink(appender, Tree::kMeta, w.owner, id);
  FROST_ASSIGN(IndexBuild meta, index_build(*reader_, meta_sink, Tree::kMeta, IndexEntry{}, w.meta, RangeSet{}));
  uint64_t page_count = uint64_t(int64_t(parent_pages) + pages.page_delta);

  // Retention: the oldest snapshots beyond K go with this commit, named in
  // its record so that both become durable together, unless pinned or held.
  std::vector<uint64_t> retired;
  {
    // Our own parent may go: the new snapshot no longer needs it once durable.
    std::vector<uint64_t> keep = in_use(id);
    std::shared_lock sl(state_mu_);
    retired = catalog_.retention_victims(w.owner, keep, id);
  }
  // A record holds at most 64 KiB: the rest retire with the next commit.
  size_t fit = (0xffff - sizeof(CommitRecord) - w.owner_name.size()) / sizeof(uint64_t);
  if (retired.size() > fit) retired.resize(fit);

  CommitRecord c{};
  c.snapshot = id;
  c.parent = w.parent;
  c.owner = w.owner;
  c.owner_name_length = uint16_t(w.owner_name.size());
  c.created_ns = wall_ns();
  c.page_root = pages.root;
  c.meta_root = meta.root;
  c.meta_length = w.meta_length;
  c.page_count = page_count;
  c.bytes_written = w.bytes_written + pages.node_bytes + meta.node_bytes;
  c.retired_count = uint16_t(retired.size());
  std::vector<uint8_t> rec(sizeof(c) + w.owner_name.size() + retired.size() * sizeof(uint64_t));
  std::memcpy(rec.data(), &c, sizeof(c));
  std::memcpy(rec.data() + sizeof(c), w.owner_name.data(), w.owner_name.size());
  if (!retired.empty())
    std::memcpy(rec.data() + sizeof(c) + w.owner_name.size(), retired.data(), retired.size() * sizeof(uint64_t));
  FROST_TRY(append(RecordSpec{RecordKind::kCommit, Tree::kPages, 0, Codec::kNone, w.owner, id, id}, rec, false));

  FROST_TRY(sync_or_fail());

  {
    std::unique_lock sl(state_mu_);
    FROST_TRY(catalog_.apply_commit(c, w.owner_name));
    for (const auto& [vpn, e] : w.puts) account(e, +1);
    for (const auto& [i, e] : w.meta) account(e, +1);
    for (const auto& e : pages.new_nodes) account(e, +1);
    for (const auto& e : meta.new_nodes) account(e, +1);
    std::vector<OpRecord> deletes;
    for (uint64_t v : retired) deletes.push_back(OpRecord{uint32_t(OpKind::kDelete), w.owner, v});
    FROST_TRY(apply_ops_in_memory(deletes));
  }
  std::string name = w.owner_name;
  writers_.erase(it);
  forget_pending_owner(name);
  if (log_->bytes_written() - log_bytes_at_checkpoint_ >= opt_.checkpoint_every_bytes) FROST_TRY(checkpoint_locked());
  FROST_TRY(maybe_auto_gc());
  return id;
}

std::vector<uint64_t> StoreImpl::in_use(SnapshotId except_writer) const {
  std::vector<uint64_t> out;
  {
    std::lock_guard hl(hold_mu_);
    for (auto& [h, n] : holds_) out.push_back(h);
  }
  for (const auto& [id, w] : writers_)
    if (w.parent && id != except_writer) out.push_back(w.parent);
  return out;
}

Status StoreImpl::maybe_auto_gc() {
  if (log_->seq() < no_gc_before_seq_) return Status::Ok();
  // Start before ordinary writes reach the reserve, however small the store.
  double low = std::max(opt_.gc_low_free * double(sb_.segment_count), double(opt_.gc_reserve_segments) + 1);
  if (double(segments_.free_count()) > low) return Status::Ok();
  auto r = gc_locked(false);
  if (!r.ok()) return r.error().is(ErrorKind::kNoSpace) ? Status::Ok() : Status(r.error());
  return Status::Ok();
}

Status StoreImpl::forget_snapshot(SnapshotId id) {
  const SnapshotRecord* s = catalog_.snapshot(id);
  if (!s) return Status::Ok();
  std::vector<IndexEntry> other_pages, other_meta;
  for (uint64_t o : catalog_.owner(s->owner)->snapshots) {
    if (o == id) continue;
    other_pages.push_back(catalog_.snapshot(o)->page_root);
    other_meta.push_back(catalog_.snapshot(o)->meta_root);
  }
  auto sub = [this](const IndexEntry& e) { account(e, -1); };
  // A damaged index frees less than it could; the recount at the next
  // recovery or fsck corrects the table, and nothing live is lost.
  (void)index_exclusive(*reader_, Tree::kPages, s->page_root, other_pages, sub);
  (void)index_exclusive(*reader_, Tree::kMeta, s->meta_root, other_meta, sub);
  return Status::Ok();
}

Status StoreImpl::append_ops(const std::vector<OpRecord>& ops) {
  // One record holds a whole batch, so a batch (a retention change and the
  // deletes it causes, an owner and all its snapshots) lands whole or not at all.
  constexpr size_t kPerRecord = 0xffff / sizeof(OpRecord);
  for (size_t i = 0; i < ops.size(); i += kPerRecord) {
    size_t n = std::min(kPerRecord, ops.size() - i);
    std::span<const uint8_t> b(reinterpret_cast<const uint8_t*>(&ops[i]), n * sizeof(OpRecord));
    FROST_TRY(append(RecordSpec{RecordKind::kOp, Tree::kPages, 0, Codec::kNone, ops[i].owner, ops[i].snapshot,
                                ops[i].snapshot},
                     b, false));
  }
  return Status::Ok();
}

Status StoreImpl::apply_ops_in_memory(const std::vector<OpRecord>& ops) {
  for (const auto& op : ops) {
    if (OpKind(op.op) == OpKind::kDelete) FROST_TRY(forget_snapshot(op.snapshot));
    FROST_TRY(catalog_.apply_op(op));
  }
  return Status::Ok();
}

Status StoreImpl::apply_ops_locked(const std::vector<OpRecord>& ops) {
  // Ops are tiny and mostly free space (a delete in a full store must work),
  // so they may use the segments held back for the cleaner.
  log_->set_cleaner_mode(true);
  Status st = append_ops(ops);
  log_->set_cleaner_mode(false);
  if (!st.ok() && st.error().is(ErrorKind::kNoSpace)) {
    // Not even the reserve has room: the checkpoint region, which holds the
    // whole catalog, makes the change durable instead of a log record.
    {
      std::unique_lock sl(state_mu_);
      FROST_TRY(apply_ops_in_memory(ops));
    }
    st = checkpoint_locked();
    if (!st.ok()) failed_ = true;  // memory is ahead of the disk now
    return st;
  }
  FROST_TRY(st);
  FROST_TRY(sync_or_fail());
  {
    std::unique_lock sl(state_mu_);
    FROST_TRY(apply_ops_in_memory(ops));
  }
  // Deleting in a nearly full store: make the space it freed usable now,
  // before the next delete has to eat into the reserve again.
  if (segments_.free_count() <= opt_.gc_reserve_segments) FROST_TRY(checkpoint_locked());
  return Status::Ok();
}

Result<uint32_t> StoreImpl::owner_of(SnapshotId id) const {
  std::shared_lock sl(state_mu_);
  const SnapshotRecord* s = catalog_.snapshot(id);
  if (!s) return Error::not_found("snapshot " + std::to_string(id) + " does not exist");
  return s->owner;
}

Status StoreImpl::pin(SnapshotId id, bool on) {
  std::lock_guard wl(write_mu_);
  FROST_TRY(ensure_writable());
  FROST_ASSIGN(uint32_t owner, owner_of(id));
  return apply_ops_locked({OpRecord{uint32_t(on ? OpKind::kPin : OpKind::kUnpin), owner, id}});
}

Status StoreImpl::remove(SnapshotId id) {
  std::lock_guard wl(write_mu_);
  FROST_TRY(ensure_writable());
  FROST_ASSIGN(uint32_t owner, owner_of(id));
  auto busy = in_use();
  if (std::find(busy.begin(), busy.end(), id) != busy.end())
    return Error(ErrorKind::kBusy, "snapshot " + std::to_string(id) + " is in use");
  return apply_ops_locked({OpRecord{uint32_t(OpKind::kDelete), owner, id}});
}

Status StoreImpl::remove_owner(const std::string& name) {
  std::lock_guard wl(write_mu_);
  FROST_TRY(ensure_writable());
  std::vector<OpRecord> ops;
  auto busy = in_use();
  {
    std::shared_lock sl(state_mu_);
    const OwnerEntry* o = catalog_.owner(name);
    if (!o) return Error::not_found("no snapshots named " + name);
    for (uint64_t s : o->snapshots) {
      if (std::find(busy.begin(), busy.end(), s) != busy.end()) return Error(ErrorKind::kBusy, "snapshot " + std::to_string(s) + " of " + name + " is in use");
      ops.push_back(OpRecord{uint32_t(OpKind::kDelete), o->id, s});
    }
    ops.push_back(OpRecord{uint32_t(OpKind::kDeleteOwner), o->id, 0});
  }
  return apply_ops_locked(ops);
}

Status StoreImpl::set_retention(const std::string& name, uint32_t keep) {
  if (keep == 0 || keep > 1000000) return Error::invalid("retention must keep between 1 and 1000000 snapshots");
  std::lock_guard wl(write_mu_);
  FROST_TRY(ensure_writable());
  uint32_t owner;
  std::vector<uint64_t> held = in_use();
  std::vector<OpRecord> ops;
  {
    std::shared_lock sl(state_mu_);
    const OwnerEntry* o = catalog_.owner(name);
    if (!o) return Error::not_found("no snapshots named " + name);
    owner = o->id;
    ops.push_back(OpRecord{uint32_t(OpKind::kRetention), owner, 0, keep});
    for (uint64_t v : catalog_.retention_victims(owner, held, 0, keep))
      ops.push_back(OpRecord{uint32_t(OpKind::kDelete), owner, v});
  }
  return apply_ops_locked(ops);
}

Status StoreImpl::checkpoint() {
  std::lock_guard wl(write_mu_);
  FROST_TRY(ensure_writable());
  return checkpoint_locked();
}

Status StoreImpl::checkpoint_locked() {
  FROST_TRY(sync_or_fail());
  std::vector<uint32_t> keep{log_->head_segment()};
  if (log_->next_segment() != kNoSegment) keep.push_back(log_->next_segment());
  auto empties = segments_.empty_segments(keep, protect_from_seq());

  CheckpointData cp;
  LogPosition pos = log_->position();
  cp.header.cp_seq = cp_seq_ + 1;
  cp.header.log_seq = pos.seq;
  cp.header.prev_hash = pos.prev_hash;
  cp.header.head_segment = pos.segment;
  cp.header.head_offset = pos.offset;
  cp.header.next_segment = pos.next_segment;
  cp.header.written_ns = wall_ns();
  cp.segments = segments_.snapshot();
  for (uint32_t s : empties) cp.segments[s] = SegmentUsage{};
  {
    std::shared_lock sl(state_mu_);
    cp.catalog = catalog_;
    cp.header.bytes_written = log_bytes_base_ + log_->bytes_written();
    cp.header.bytes_new = bytes_new_;
    cp.header.bytes_cleaned = bytes_cleaned_;
    cp.header.gc_runs = gc_runs_;
  }
  FROST_ASSIGN(auto bytes, encode_checkpoint(cp, sb_));
  int region = int(cp.header.cp_seq % 2);
  Status st = file_->write_at(sb_.cr_offset[region], bytes.data(), bytes.size());
  if (st.ok()) st = file_->sync();
  if (!st.ok()) {
    failed_ = true;
    return st;
  }
  cp_seq_ = cp.header.cp_seq;
  log_bytes_at_checkpoint_ = log_->bytes_written();
  // Only now that no durable state needs them may the empty segments be reused.
  segments_.mark_free(empties);
  return Status::Ok();
}

}  // namespace frost::store
