// The cleaner (as in Sprite LFS): pick segments by cost-benefit, decide for
// each block its summary names whether some snapshot still references it at
// that place, copy the live ones to the head of the log, rewrite the index
// paths above them (sharing preserved), log the new roots, and free the
// segments with the next checkpoint.
#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_map>

#include "store/checksum.h"
#include "store/log_reader.h"
#include "store/store_impl.h"

namespace frost::store {

namespace {

// The entry of the node at `level` on the path to key (or empty).
Result<IndexEntry> node_on_path(const NodeSource& src, Tree tree, IndexEntry root, uint64_t key, int level) {
  IndexEntry e = root;
  for (int l = kRootLevel; l > level && !e.empty(); l--) {
    FROST_ASSIGN(auto n, src.load_node(e, l, tree));
    e = n->slot[slot_of(key, l)];
  }
  return e;
}

struct LiveBlock {
  SummaryEntry entry;
  uint64_t file_offset;
  std::vector<uint8_t> bytes;
};

}  // namespace

class Cleaner {
 public:
  explicit Cleaner(StoreImpl& s) : s_(s) {}

  Result<GcReport> run(bool explicit_run);

 private:
  std::vector<uint32_t> pick(bool explicit_run);
  // Chooses the next segments to clean and gathers their live blocks.
  Status fill_batch(bool explicit_run, std::vector<uint32_t>* batch, std::vector<LiveBlock>* live);
  // Finds the live blocks of segment seg; false when a held snapshot uses it.
  Result<bool> collect(uint32_t seg, std::vector<LiveBlock>* live);
  Result<bool> is_live(const SummaryEntry& e, uint64_t file_offset, bool* held);
  Status relocate(std::vector<LiveBlock>& live, GcReport* report);
  Result<IndexEntry> rewrite(Tree tree, uint32_t owner, SnapshotId epoch, const IndexEntry& e, int level,
                             uint64_t base);

  StoreImpl& s_;
  uint64_t run_start_seq_ = 0;
  std::set<uint32_t> skipped_;  // held by a reader, or not fully readable
  // Per relocation batch:
  std::unordered_map<uint64_t, IndexEntry> moved_pages_;  // old offset -> new entry
  std::set<uint64_t> moving_nodes_;                        // old offsets of live nodes to copy
  std::set<std::tuple<uint8_t, int, uint64_t>> dirty_;     // (tree, level, base) on a path to either
  std::unordered_map<uint64_t, IndexEntry> memo_;          // old node offset -> its replacement
};

Result<GcReport> StoreImpl::gc(bool explicit_run) {
  std::lock_guard wl(write_mu_);
  return gc_locked(explicit_run);
}

Result<GcReport> StoreImpl::gc_locked(bool explicit_run) {
  FROST_TRY(ensure_writable());
  Cleaner c(*this);
  return c.run(explicit_run);
}

std::vector<uint32_t> Cleaner::pick(bool explicit_run) {
  auto segs = s_.segments_.snapshot();
  uint64_t now = s_.log_->seq();
  // Segments written since the run began hold the cleaner's own copies: cleaning
  // them again would only chase our tail.
  uint64_t protect = std::min(s_.protect_from_seq(), run_start_seq_);
  std::vector<std::pair<double, uint32_t>> scored;
  for (uint32_t i = 0; i < segs.size(); i++) {
    const auto& u = segs[i];
    if (u.state != uint8_t(SegmentState::kUsed) || i == s_.log_->head_segment() || i == s_.log_->next_segment())
      continue;
    if (u.last_seq >= protect || u.last_seq == 0 || skipped_.count(i)) continue;
    double util = double(u.live_bytes) / double(s_.sb_.segment_size);
    if (util > (explicit_run ? 0.8 : 0.95)) continue;
    double age = double(now - std::min(now, u.last_seq)) + 1;
    scored.push_back({(1 - util) * age / (1 + util), i});  // Rosenblum & Ousterhout's cost-benefit
  }
  std::sort(scored.begin(), scored.end(), std::greater<>());
  std::vector<uint32_t> out;
  for (auto& [score, seg] : scored) out.push_back(seg);
  return out;
}

Result<GcReport> Cleaner::run(bool explicit_run) {
  GcReport report;
  // A checkpoint first: it frees segments that are already empty, and makes
  // every other segment older than the checkpoint, so none is needed for roll-forward.
  uint64_t free_before = s_.segments_.free_count();
  FROST_TRY(s_.checkpoint_locked());
  report.segments_freed = s_.segments_.free_count() - std::min(free_before, s_.segments_.free_count());
  uint64_t target = uint64_t(s_.opt_.gc_target_free * double(s_.sb_.segment_count));
  run_start_seq_ = s_.log_->seq();

  s_.log_->set_cleaner_mode(true);
  Status st;
  for (;;) {
    if (!explicit_run && s_.segments_.free_count() >= target) break;
    std::vector<uint32_t> batch;
    std::vector<LiveBlock> live;
    st = fill_batch(explicit_run, &batch, &live);
    if (!st.ok() || batch.empty()) break;
    st = relocate(live, &report);
    if (!st.ok() && st.error().is(ErrorKind::kNoSpace)) {
      // Out of room to copy into: this batch's copies are garbage no root
      // names; a checkpoint gives back the segments they filled.
      st = s_.checkpoint_locked();
      break;
    }
    if (!st.ok()) break;
    // Free the batch now, so the next one has room: sync, zero, checkpoint.
    st = s_.sync_or_fail();
    if (!st.ok()) break;
    for (uint32_t seg : batch) s_.segments_.set_live(seg, 0);
    st = s_.checkpoint_locked();
    if (!st.ok()) break;
    report.segments_cleaned += batch.size();
    report.segments_freed += batch.size();
  }
  s_.log_->set_cleaner_mode(false);
  FROST_TRY(st);
  s_.gc_runs_++;
  report.segments_free_after = s_.segments_.free_count();
  if (report.segments_freed == 0) s_.no_gc_before_seq_ = s_.log_->seq() + 8;
  return report;
}

Status Cleaner::fill_batch(bool explicit_run, std::vector<uint32_t>* batch, std::vector<LiveBlock>* live) {
  constexpr size_t kMaxBatch = 16;
  uint64_t free = s_.segments_.free_count();
  // The last free segment is never the cleaner's (ops that find no room at
  // all fall back to a checkpoint). Copies must fit the rest, with room for
  // headers and the index nodes rewritten above them.
  if (free <= 1) return Status::Ok();
  uint64_t room = (free - 1) * s_.sb_.segment_size * 2 / 3;
  uint64_t bytes = 0;
  for (uint32_t seg : pick(explicit_run)) {
    if (batch->size() == kMaxBatch) break;
    std::vector<LiveBlock> seg_live;
    FROST_ASSIGN(bool ok, collect(seg, &seg_live));
    if (!ok) {
      skipped_.insert(seg);
      continue;
    }
    uint64_t seg_bytes = 0;
    for (const auto& b : seg_live) seg_bytes += record_footprint(uint32_t(b.bytes.size()));
    if (bytes + seg_bytes > room) continue;  // an emptier candidate may still fit
    bytes += seg_bytes;
    batch->push_back(seg);
    for (auto& b : seg_live) live->push_back(std::move(b));
  }
  return Status::Ok();
}

Result<bool> Cleaner::is_live(const SummaryEntry& e, uint64_t file_offset, bool* held) {
  std::vector<SnapshotRecord> candidates;
  {
    std::shared_lock sl(s_.state_mu_);
    const OwnerEntry* o = s_.catalog_.owner(e.owner);
    if (!o) return false;
    for (uint64_t id : o->snapshots)
      if (id >= e.epoch) candidates.push_back(*s_.catalog_.snapshot(id));
  }
  bool live = false;
  for (const auto& snap : candidates) {
    IndexEntry root = e.tree == uint8_t(Tree::kMeta) ? snap.meta_root : snap.page_root;
    Result<IndexEntry> found = e.kind == uint8_t(RecordKind::kPage)
                                   ? index_lookup(*s_.reader_, Tree(e.tree), root, e.key)
                                   : node_on_path(*s_.reader_, Tree(e.tree), root, e.key, e.level);
    if (!found.ok()) return found.error().context("cleaner: snapshot " + std::to_string(snap.id));
    if (!found->empty() && !found->zero() && found->offset() == file_offset) {
      live = true;
      if (s_.is_held(snap.id)) *held = true;
    }
  }
  return live;
}

Result<bool> Cleaner::collect(uint32_t seg, std::vector<LiveBlock>* live) {
  // Record checksums are checked one by one below, so that one damaged record
  // does not hide the partials after it.
  auto partials = read_segment(*s_.file_, s_.sb_, seg, ReadOptions{false, s_.opt_.ignore_checksums});
  uint64_t found = 0;
  for (const auto& p : partials) {
    for (const auto& e : p.entries) {
      if (e.kind != uint8_t(RecordKind::kPage) && e.kind != uint8_t(RecordKind::kNode)) continue;
      uint64_t off = s_.geo_.segment_offset(seg) + e.offset;
      bool held = false;
      FROST_ASSIGN(bool is, is_live(e, off, &held));
      if (held) return false;
      if (!is) continue;
      auto rec = p.record(e);
      // A damaged live block stays where it is, for fsck to name: copying it
      // would only move the damage.
      if (!s_.opt_.ignore_checksums && block_checksum(rec.data(), rec.size()) != e.checksum) return false;
      found += record_footprint(e.length);
      live->push_back(LiveBlock{e, off, std::vector<uint8_t>(rec.begin(), rec.end())});
    }
  }
  // Fewer live bytes than the usage table counts means some summary could not
  // be read: freeing the segment could lose data, so leave it alone.
  if (found < s_.segments_.get(seg).live_bytes) return false;
  return true;
}

Status Cleaner::relocate(std::vector<LiveBlock>& live, GcReport* report) {
  moved_pages_.clear();
  moving_nodes_.clear();
  dirty_.clear();
  memo_.clear();
  std::set<uint32_t> owners;
  auto mark_path = [&](uint8_t tree, uint64_t key, int from_level) {
    for (int l = from_level; l <= kRootLevel; l++) dirty_.insert({tree, l, node_base(key, l)});
  };
  for (auto& b : live) {
    const SummaryEntry& e = b.entry;
    owners.insert(e.owner);
    if (e.kind == uint8_t(RecordKind::kPage)) {
      RecordSpec spec{RecordKind::kPage, Tree(e.tree), 0, Codec(e.codec), e.owner, e.key, e.epoch};
      FROST_ASSIGN(IndexEntry ne, s_.append(spec, b.bytes, false));
      moved_pages_[b.file_offset] = ne;
      s_.account(ne, +1);
      report->bytes_copied += b.bytes.size();
      s_.bytes_cleaned_ += record_footprint(uint32_t(b.bytes.size()));
      mark_path(e.tree, e.key, 0);
    } else {
      moving_nodes_.insert(b.file_offset);
      mark_path(e.tree, e.key, e.level);
    }
  }

  std::vector<OpRecord> updates;
  for (uint32_t owner : owners) {
    std::vector<SnapshotRecord> snaps;
    {
      std::shared_lock sl(s_.state_mu_);
      const OwnerEntry* o = s_.catalog_.owner(owner);
      if (!o) continue;
      for (uint64_t id : o->snapshots) snaps.push_back(*s_.catalog_.snapshot(id));
    }
    memo_.clear();  // node offsets are per owner; a fresh memo per owner keeps epochs right
    for (const auto& snap : snaps) {
      FROST_ASSIGN(IndexEntry pr, rewrite(Tree::kPages, owner, snap.id, snap.page_root, kRootLevel, 0));
      FROST_ASSIGN(IndexEntry mr, rewrite(Tree::kMeta, owner, snap.id, snap.meta_root, kRootLevel, 0));
      if (pr == snap.page_root && mr == snap.meta_root) continue;
      updates.push_back(OpRecord{uint32_t(OpKind::kRootUpdate), owner, snap.id, 0, pr, mr});
    }
  }
  if (updates.empty()) return Status::Ok();
  FROST_TRY(s_.append_ops(updates));
  // Readers may use the new roots once the copies are in the file (readers
  // pread it; the log buffer is invisible to them). Durability can wait: the
  // old copies stay where they are until the sync and the checkpoint that
  // free their segments.
  FROST_TRY(s_.log_->flush());
  std::unique_lock sl(s_.state_mu_);
  for (const auto& op : updates) FROST_TRY(s_.catalog_.apply_op(op));
  return Status::Ok();
}

Result<IndexEntry> Cleaner::rewrite(Tree tree, uint32_t owner, SnapshotId epoch, const IndexEntry& e, int level,
                                    uint64_t base) {
  if (e.empty() || !dirty_.count({uint8_t(tree), level, base})) return e;
  if (auto m = memo_.find(e.offset()); m != memo_.end()) return m->second;
  FROST_ASSIGN(auto old, s_.reader_->load_node(e, level, tree));
  Node node = *old;
  bool changed = moving_nodes_.count(e.offset()) != 0;
  for (int i = 0; i < kFanout; i++) {
    IndexEntry& c = node.slot[i];
    if (c.empty()) continue;
    IndexEntry next = c;
    if (level == 0) {
      if (!c.zero())
        if (auto mv = moved_pages_.find(c.offset()); mv != moved_pages_.end()) next = mv->second;
    } else {
      FROST_ASSIGN(next, rewrite(tree, owner, epoch, c, level - 1, base + uint64_t(i) * slot_span(level)));
    }
    if (!(next == c)) {
      c = next;
      changed = true;
    }
  }
  IndexEntry out = e;
  if (changed) {
    auto bytes = encode_node(node);
    // The first snapshot (lowest id) to reach a shared node names its epoch:
    // liveness checks look at snapshots from the epoch on.
    FROST_ASSIGN(out, s_.append(RecordSpec{RecordKind::kNode, tree, uint8_t(level), Codec::kNone, owner, base, epoch},
                                bytes, false));
    s_.account(out, +1);
    if (!moving_nodes_.count(e.offset())) s_.account(e, -1);  // cleaned segments are zeroed wholesale
  }
  memo_[e.offset()] = out;
  return out;
}

}  // namespace frost::store
