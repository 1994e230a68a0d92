#include "store/catalog.h"

#include <algorithm>

namespace frost::store {

Status validate_owner_name(const std::string& name) {
  if (name.empty() || name.size() > 255) return Error::invalid("owner name must have 1 to 255 bytes");
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f || c == '/') return Error::invalid("owner name has a control character or '/'");
  return Status::Ok();
}

void Catalog::clear(uint32_t default_retention) {
  owners_.clear();
  by_name_.clear();
  snaps_.clear();
  next_snapshot = 1;
  next_owner = 1;
  default_retention_ = default_retention;
}

Status Catalog::add_owner(uint32_t id, const std::string& name, uint32_t retention) {
  FROST_TRY(validate_owner_name(name));
  if (id == 0 || owners_.count(id) || by_name_.count(name)) return Error::corruption("duplicate owner " + name);
  owners_[id] = OwnerEntry{id, name, retention, {}};
  by_name_[name] = id;
  next_owner = std::max(next_owner, id + 1);
  return Status::Ok();
}

Status Catalog::add_snapshot(const SnapshotRecord& s) {
  auto it = owners_.find(s.owner);
  if (s.id == 0 || it == owners_.end() || snaps_.count(s.id)) return Error::corruption("bad snapshot record");
  snaps_[s.id] = s;
  auto& v = it->second.snapshots;
  v.insert(std::upper_bound(v.begin(), v.end(), s.id), s.id);
  next_snapshot = std::max(next_snapshot, s.id + 1);
  return Status::Ok();
}

Status Catalog::apply_commit(const CommitRecord& c, const std::string& owner_name) {
  if (c.snapshot == 0 || snaps_.count(c.snapshot)) return Error::corruption("commit of a known snapshot");
  auto named = by_name_.find(owner_name);
  if (named == by_name_.end()) {
    if (owners_.count(c.owner)) return Error::corruption("commit names an owner id already in use");
    FROST_TRY(add_owner(c.owner, owner_name, 0));
  } else if (named->second != c.owner) {
    return Error::corruption("commit owner id does not match its name");
  }
  SnapshotRecord s{};
  s.id = c.snapshot;
  s.parent = c.parent;
  s.owner = c.owner;
  s.created_ns = c.created_ns;
  s.page_root = c.page_root;
  s.meta_root = c.meta_root;
  s.meta_length = c.meta_length;
  s.page_count = c.page_count;
  s.bytes_written = c.bytes_written;
  return add_snapshot(s);
}

Status Catalog::apply_op(const OpRecord& op) {
  auto snap = snaps_.find(op.snapshot);
  switch (OpKind(op.op)) {
    case OpKind::kDelete: {
      if (snap == snaps_.end()) return Error::corruption("delete of an unknown snapshot");
      auto& v = owners_[snap->second.owner].snapshots;
      v.erase(std::remove(v.begin(), v.end(), op.snapshot), v.end());
      snaps_.erase(snap);
      return Status::Ok();
    }
    case OpKind::kPin:
    case OpKind::kUnpin:
      if (snap == snaps_.end()) return Error::corruption("pin of an unknown snapshot");
      if (OpKind(op.op) == OpKind::kPin) snap->second.flags |= kSnapshotPinned;
      else snap->second.flags &= ~kSnapshotPinned;
      return Status::Ok();
    case OpKind::kRootUpdate:
      if (snap == snaps_.end()) return Error::corruption("root update of an unknown snapshot");
      snap->second.page_root = op.page_root;
      snap->second.meta_root = op.meta_root;
      return Status::Ok();
    case OpKind::kRetention: {
      auto o = owners_.find(op.owner);
      if (o == owners_.end() || op.arg > 1000000) return Error::corruption("bad retention record");
      o->second.retention = uint32_t(op.arg);
      return Status::Ok();
    }
    case OpKind::kDeleteOwner: {
      auto o = owners_.find(op.owner);
      if (o == owners_.end() || !o->second.snapshots.empty()) return Error::corruption("bad owner deletion");
      by_name_.erase(o->second.name);
      owners_.erase(o);
      return Status::Ok();
    }
  }
  return Error::corruption("unknown op " + std::to_string(op.op));
}

const OwnerEntry* Catalog::owner(uint32_t id) const {
  auto it = owners_.find(id);
  return it == owners_.end() ? nullptr : &it->second;
}

const OwnerEntry* Catalog::owner(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : owner(it->second);
}

const SnapshotRecord* Catalog::snapshot(uint64_t id) const {
  auto it = snaps_.find(id);
  return it == snaps_.end() ? nullptr : &it->second;
}

std::vector<uint64_t> Catalog::retention_victims(uint32_t owner_id, const std::vector<uint64_t>& keep,
                                                 uint64_t incoming, uint32_t k_override) const {
  std::vector<uint64_t> out;
  const OwnerEntry* o = owner(owner_id);
  if (!o) return out;
  size_t k = k_override ? k_override : retention_of(*o);
  std::vector<uint64_t> v = o->snapshots;
  if (incoming) v.push_back(incoming);
  if (v.size() <= k) return out;
  for (size_t i = 0; i + k < v.size(); i++) {
    if (v[i] == incoming) continue;
    const auto& s = snaps_.at(v[i]);
    if (s.flags & kSnapshotPinned) continue;
    if (std::find(keep.begin(), keep.end(), v[i]) != keep.end()) continue;
    out.push_back(v[i]);
  }
  return out;
}

}  // namespace frost::store
