// fsck: read everything, trust nothing, name what is damaged.
#include <unordered_set>

#include "store/checkpoint.h"
#include "store/log_reader.h"
#include "store/store_impl.h"

namespace frost::store {

std::vector<uint32_t> StoreImpl::count_live(std::vector<std::string>* damage, FsckReport* report) const {
  std::vector<uint32_t> live(sb_.segment_count, 0);
  std::vector<std::pair<SnapshotRecord, std::string>> snaps;
  {
    std::shared_lock sl(state_mu_);
    for (const auto& [id, s] : catalog_.snapshots()) snaps.push_back({s, catalog_.owner(s.owner)->name});
  }
  std::unordered_set<uint64_t> seen;
  auto add = [&](const IndexEntry& e) {
    uint32_t seg = geo_.segment_of(e.offset());
    if (seg < live.size()) live[seg] += record_footprint(e.length());
  };
  IndexVisitor v;
  v.on_node = [&](const IndexEntry& e, int, uint64_t) {
    add(e);
    if (report) report->nodes_checked++;
    return Status::Ok();
  };
  v.on_page = [&](const IndexEntry& e, uint64_t) {
    add(e);
    return Status::Ok();
  };
  for (const auto& [s, owner] : snaps) {
    for (auto [tree, root] : {std::pair{Tree::kPages, s.page_root}, std::pair{Tree::kMeta, s.meta_root}}) {
      Status st = index_visit_all(*reader_, tree, root, v, &seen);
      if (!st.ok() && damage)
        damage->push_back("snapshot " + std::to_string(s.id) + " of " + owner + ": index: " + st.error().message());
    }
  }
  return live;
}

Result<FsckReport> StoreImpl::fsck() const {
  FsckReport r;
  r.damage = open_damage_;
  r.notes = open_notes_;

  // Every snapshot: index, pages and meta, each checksum verified.
  std::vector<std::pair<uint64_t, std::string>> snaps;
  {
    std::shared_lock sl(state_mu_);
    for (const auto& [id, s] : catalog_.snapshots()) snaps.push_back({id, catalog_.owner(s.owner)->name});
  }
  for (const auto& [id, owner] : snaps) {
    r.snapshots_checked++;
    uint64_t pages = 0;
    Status st = for_each_page(id, [&](uint64_t, std::span<const uint8_t, kPageSize>) {
      pages++;
      return Status::Ok();
    });
    r.pages_checked += pages;
    if (st.ok()) st = verify(id);
    if (!st.ok()) r.damage.push_back("snapshot " + std::to_string(id) + " of " + owner + ": " + st.error().message());
  }

  // The usage table must never count fewer live bytes than there are: the
  // store frees segments it believes empty.
  auto live = count_live(nullptr, &r);
  auto table = segments_.snapshot();
  for (uint32_t s = 0; s < live.size(); s++) {
    if (table[s].live_bytes > live[s])  // harmless, but the cleaner then misjudges the segment
      r.notes.push_back("segment " + std::to_string(s) + ": usage table counts " + std::to_string(table[s].live_bytes) +
                        " live bytes, the indexes " + std::to_string(live[s]));
    if (live[s] == 0) continue;
    if (table[s].state == uint8_t(SegmentState::kFree))
      r.damage.push_back("segment " + std::to_string(s) + " holds live blocks but is marked free");
    else if (table[s].live_bytes < live[s])
      r.damage.push_back("segment " + std::to_string(s) + ": usage table counts " + std::to_string(table[s].live_bytes) +
                         " live bytes, the indexes " + std::to_string(live[s]));
  }

  // Both checkpoint regions; one being stale or torn after a crash is normal.
  for (int region = 0; region < 2; region++) {
    auto cp = read_checkpoint(*file_, sb_, region, opt_.ignore_checksums);
    if (!cp.ok()) r.notes.push_back(cp.error().message());
  }
  return r;
}

}  // namespace frost::store
