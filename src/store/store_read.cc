// Reading snapshots back. Readers share state_mu_ for the moment they need a
// snapshot's roots; long walks hold the snapshot instead, so the cleaner leaves
// its blocks where they are while the walk runs.
#include <algorithm>
#include <cstring>

#include "store/index_range.h"
#include "store/store_impl.h"

namespace frost::store {
namespace {

Error no_snapshot(SnapshotId id) { return Error::not_found("snapshot " + std::to_string(id) + " does not exist"); }

// Releases a hold when the walk ends, however it ends.
class HoldGuard {
 public:
  HoldGuard(StoreImpl* s, SnapshotId id) : s_(s), id_(id) {}
  ~HoldGuard() { s_->release(id_); }

 private:
  StoreImpl* s_;
  SnapshotId id_;
};

}  // namespace

SnapshotRecord StoreImpl::snapshot_copy(SnapshotId id, bool* found) const {
  std::shared_lock sl(state_mu_);
  const SnapshotRecord* s = catalog_.snapshot(id);
  *found = s != nullptr;
  return s ? *s : SnapshotRecord{};
}

bool StoreImpl::is_held(SnapshotId id) const {
  std::lock_guard hl(hold_mu_);
  return holds_.count(id) != 0;
}

Status StoreImpl::hold(SnapshotId id) {
  std::shared_lock sl(state_mu_);
  if (!catalog_.snapshot(id)) return no_snapshot(id);
  std::lock_guard hl(hold_mu_);
  holds_[id]++;
  return Status::Ok();
}

void StoreImpl::release(SnapshotId id) {
  std::lock_guard hl(hold_mu_);
  auto it = holds_.find(id);
  if (it != holds_.end() && --it->second == 0) holds_.erase(it);
}

static SnapshotInfo to_info(const SnapshotRecord& s, const std::string& owner) {
  SnapshotInfo i;
  i.id = s.id;
  i.parent = s.parent;
  i.owner = owner;
  i.created_ns = s.created_ns;
  i.page_count = s.page_count;
  i.meta_length = s.meta_length;
  i.bytes_written = s.bytes_written;
  i.pinned = s.flags & kSnapshotPinned;
  return i;
}

std::vector<OwnerInfo> StoreImpl::list() const {
  std::shared_lock sl(state_mu_);
  std::vector<OwnerInfo> out;
  for (const auto& [id, o] : catalog_.owners()) {
    OwnerInfo info{o.name, catalog_.retention_of(o), {}};
    for (uint64_t s : o.snapshots) info.snapshots.push_back(to_info(*catalog_.snapshot(s), o.name));
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

Result<SnapshotInfo> StoreImpl::info(SnapshotId id) const {
  std::shared_lock sl(state_mu_);
  const SnapshotRecord* s = catalog_.snapshot(id);
  if (!s) return no_snapshot(id);
  return to_info(*s, catalog_.owner(s->owner)->name);
}

Result<SnapshotId> StoreImpl::latest(const std::string& owner) const {
  std::shared_lock sl(state_mu_);
  const OwnerEntry* o = catalog_.owner(owner);
  if (!o || o->snapshots.empty()) return Error::not_found("no snapshots named " + owner);
  return o->snapshots.back();
}

Result<SnapshotId> StoreImpl::latest_intact(const std::string& owner) const {
  std::vector<uint64_t> ids;
  {
    std::shared_lock sl(state_mu_);
    const OwnerEntry* o = catalog_.owner(owner);
    if (!o || o->snapshots.empty()) return Error::not_found("no snapshots named " + owner);
    ids = o->snapshots;
  }
  std::optional<Error> newest_damage;
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    Status st = verify(*it);
    if (st.ok()) return *it;
    if (!newest_damage) newest_damage = st.error();
  }
  return Error::corruption("every snapshot of " + owner + " is damaged; newest: " + newest_damage->message());
}

Result<bool> StoreImpl::read_page(SnapshotId id, uint64_t vpn, std::span<uint8_t, kPageSize> out) const {
  std::shared_lock sl(state_mu_);
  const SnapshotRecord* s = catalog_.snapshot(id);
  if (!s) return no_snapshot(id);
  FROST_ASSIGN(IndexEntry e, index_lookup(*reader_, Tree::kPages, s->page_root, vpn));
  if (e.empty()) return false;
  FROST_TRY(reader_->read_page(e, out));
  return true;
}

Status StoreImpl::for_each_page(SnapshotId id, uint64_t first, uint64_t last,
                                const std::function<Status(uint64_t, std::span<const uint8_t, kPageSize>)>& fn) const {
  FROST_TRY(const_cast<StoreImpl*>(this)->hold(id));
  HoldGuard guard(const_cast<StoreImpl*>(this), id);
  bool found;
  SnapshotRecord s = snapshot_copy(id, &found);
  if (!found) return no_snapshot(id);
  // Pages are read a batch at a time, so runs of blocks take one read each.
  constexpr size_t kBatch = 256;
  std::vector<uint64_t> vpns;
  std::vector<IndexEntry> entries;
  std::unique_ptr<uint8_t[]> pages(new uint8_t[kBatch * kPageSize]);  // written before read
  auto flush = [&]() -> Status {
    FROST_TRY(reader_->read_pages(entries, pages.get()));
    for (size_t i = 0; i < vpns.size(); ++i) {
      FROST_TRY(fn(vpns[i], std::span<const uint8_t, kPageSize>(pages.get() + i * kPageSize, kPageSize)));
    }
    vpns.clear();
    entries.clear();
    return Status::Ok();
  };
  FROST_TRY(index_walk_range(*reader_, Tree::kPages, s.page_root, first, last, [&](uint64_t vpn, const IndexEntry& e) -> Status {
    vpns.push_back(vpn);
    entries.push_back(e);
    return vpns.size() == kBatch ? flush() : Status::Ok();
  }));
  return flush();
}

Result<bool> StoreImpl::has_pages(SnapshotId id, uint64_t first, uint64_t last) const {
  std::shared_lock sl(state_mu_);
  const SnapshotRecord* s = catalog_.snapshot(id);
  if (!s) return no_snapshot(id);
  FROST_ASSIGN(std::optional<uint64_t> key, index_first_key(*reader_, Tree::kPages, s->page_root, first, last));
  return key.has_value();
}

Result<std::vector<uint64_t>> StoreImpl::page_numbers(SnapshotId id) const {
  FROST_TRY(const_cast<StoreImpl*>(this)->hold(id));
  HoldGuard guard(const_cast<StoreImpl*>(this), id);
  bool found;
  SnapshotRecord s = snapshot_copy(id, &found);
  if (!found) return no_snapshot(id);
  std::vector<uint64_t> out;
  FROST_TRY(index_walk(*reader_, Tree::kPages, s.page_root, [&](uint64_t vpn, const IndexEntry&) {
    out.push_back(vpn);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<uint8_t>> StoreImpl::read_meta(SnapshotId id) const {
  FROST_TRY(const_cast<StoreImpl*>(this)->hold(id));
  HoldGuard guard(const_cast<StoreImpl*>(this), id);
  bool found;
  SnapshotRecord s = snapshot_copy(id, &found);
  if (!found) return no_snapshot(id);
  uint64_t chunks = (s.meta_length + kPageSize - 1) / kPageSize;
  if (s.meta_length > (1ull << 40)) return Error::corruption("snapshot " + std::to_string(id) + ": meta length is absurd");
  std::vector<uint8_t> out;
  std::array<uint8_t, kPageSize> chunk;
  uint64_t expect = 0;
  FROST_TRY(index_walk(*reader_, Tree::kMeta, s.meta_root, [&](uint64_t key, const IndexEntry& e) -> Status {
    if (key != expect || key >= chunks) return Error::corruption("snapshot " + std::to_string(id) + ": meta has a hole");
    expect++;
    FROST_TRY(reader_->read_page(e, chunk));
    size_t n = std::min<uint64_t>(kPageSize, s.meta_length - key * kPageSize);
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
    return Status::Ok();
  }));
  if (out.size() != s.meta_length) return Error::corruption("snapshot " + std::to_string(id) + ": meta is cut short");
  return out;
}

Status StoreImpl::verify(SnapshotId id) const {
  uint64_t pages = 0;
  auto st = for_each_page(id, [&](uint64_t, std::span<const uint8_t, kPageSize>) {
    pages++;
    return Status::Ok();
  });
  if (!st.ok()) return st.error().context("snapshot " + std::to_string(id));
  bool found;
  SnapshotRecord s = snapshot_copy(id, &found);
  if (found && pages != s.page_count)
    return Error::corruption("snapshot " + std::to_string(id) + ": index holds " + std::to_string(pages) +
                             " pages, its record says " + std::to_string(s.page_count));
  auto meta = read_meta(id);
  if (!meta.ok()) return meta.error();
  return Status::Ok();
}

StoreStats StoreImpl::stats() const {
  StoreStats st;
  auto segs = segments_.snapshot();
  st.segment_size = sb_.segment_size;
  st.segments_total = segs.size();
  st.segment_live.assign(segs.size(), 0);
  for (size_t i = 0; i < segs.size(); i++) {
    if (segs[i].state == uint8_t(SegmentState::kFree)) {
      st.segments_free++;
      continue;
    }
    st.segments_used++;
    st.live_bytes += segs[i].live_bytes;
    st.segment_live[i] = segs[i].live_bytes;
  }
  st.file_bytes = file_->size().ok() ? *file_->size() : 0;
  st.utilisation = st.segments_used ? double(st.live_bytes) / double(st.segments_used * st.segment_size) : 0;
  std::shared_lock sl(state_mu_);
  st.bytes_written = log_bytes_base_ + log_->bytes_written();
  st.bytes_new = bytes_new_;
  st.bytes_cleaned = bytes_cleaned_;
  st.write_cost = bytes_new_ ? double(st.bytes_written) / double(bytes_new_) : 0;
  st.gc_runs = gc_runs_;
  st.owners = catalog_.owners().size();
  st.snapshots = catalog_.snapshots().size();
  return st;
}

}  // namespace frost::store
