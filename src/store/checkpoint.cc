#include "store/checkpoint.h"

#include <cstring>
#include <string>

#include "store/checksum.h"

namespace frost::store {
namespace {

template <class T>
void put(std::vector<uint8_t>& out, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

// Bounds-checked cursor over the payload.
struct Cursor {
  const uint8_t* p;
  size_t left;
  template <class T>
  bool get(T& v) {
    if (left < sizeof(T)) return false;
    std::memcpy(&v, p, sizeof(T));
    p += sizeof(T);
    left -= sizeof(T);
    return true;
  }
  bool get_string(std::string& s, size_t n) {
    if (left < n) return false;
    s.assign(reinterpret_cast<const char*>(p), n);
    p += n;
    left -= n;
    return true;
  }
};

Error bad(int region, const std::string& what) {
  return Error::corruption("checkpoint region " + std::string(region ? "B" : "A") + ": " + what);
}

}  // namespace

Result<std::vector<uint8_t>> encode_checkpoint(const CheckpointData& cp, const Superblock& sb) {
  std::vector<uint8_t> payload;
  for (const auto& [id, o] : cp.catalog.owners()) {
    OwnerRecord r{};
    r.id = id;
    r.retention = o.retention;
    r.name_length = uint16_t(o.name.size());
    put(payload, r);
    payload.insert(payload.end(), o.name.begin(), o.name.end());
  }
  for (const auto& [id, s] : cp.catalog.snapshots()) put(payload, s);
  for (const auto& u : cp.segments) put(payload, u);

  CheckpointHeader h = cp.header;
  h.magic = kCheckpointMagic;
  h.payload_length = payload.size();
  h.payload_checksum = checksum(payload.data(), payload.size());
  h.owner_count = uint32_t(cp.catalog.owners().size());
  h.snapshot_count = cp.catalog.snapshots().size();
  h.segment_count = cp.segments.size();
  h.next_snapshot = cp.catalog.next_snapshot;
  h.next_owner = cp.catalog.next_owner;
  h.default_retention = cp.catalog.default_retention();
  h.header_checksum = struct_checksum(h);

  std::vector<uint8_t> out;
  out.reserve(sizeof(h) + payload.size());
  put(out, h);
  out.insert(out.end(), payload.begin(), payload.end());
  if (out.size() > sb.cr_size)
    return Error::no_space("too many snapshots for the checkpoint region (" + std::to_string(h.snapshot_count) + ")");
  out.resize(align_up(out.size(), kBlockSize), 0);
  return out;
}

Result<CheckpointData> read_checkpoint(const File& file, const Superblock& sb, int region, bool ignore_checksums) {
  CheckpointData cp;
  CheckpointHeader& h = cp.header;
  FROST_ASSIGN(size_t got, file.read_at(sb.cr_offset[region], &h, sizeof(h)));
  if (got != sizeof(h)) return bad(region, "cut short");
  if (h.magic != kCheckpointMagic) return bad(region, "never written or overwritten");
  if (!ignore_checksums && h.header_checksum != struct_checksum(h)) return bad(region, "header checksum mismatch");
  if (h.payload_length > sb.cr_size - sizeof(h)) return bad(region, "payload larger than the region");
  if (h.segment_count != sb.segment_count) return bad(region, "segment count differs from the superblock");
  if (h.head_segment >= sb.segment_count || h.head_offset > sb.segment_size || h.head_offset % kBlockSize != 0 ||
      (h.next_segment != kNoSegment && h.next_segment >= sb.segment_count))
    return bad(region, "log position outside the store");

  // Bounded by the file before allocating: the length is not trusted yet.
  FROST_ASSIGN(uint64_t file_size, file.size());
  if (sb.cr_offset[region] + sizeof(h) + h.payload_length > file_size) return bad(region, "payload cut short");
  std::vector<uint8_t> payload(h.payload_length);
  if (!payload.empty()) {
    FROST_ASSIGN(got, file.read_at(sb.cr_offset[region] + sizeof(h), payload.data(), payload.size()));
    if (got != payload.size()) return bad(region, "payload cut short");
  }
  if (!ignore_checksums && checksum(payload.data(), payload.size()) != h.payload_checksum)
    return bad(region, "payload checksum mismatch");

  Cursor c{payload.data(), payload.size()};
  cp.catalog.clear(h.default_retention);
  for (uint32_t i = 0; i < h.owner_count; i++) {
    OwnerRecord r;
    std::string name;
    if (!c.get(r) || !c.get_string(name, r.name_length)) return bad(region, "owner table cut short");
    auto st = cp.catalog.add_owner(r.id, name, r.retention);
    if (!st.ok()) return bad(region, st.error().message());
  }
  if (h.snapshot_count > c.left / sizeof(SnapshotRecord)) return bad(region, "snapshot table cut short");
  for (uint64_t i = 0; i < h.snapshot_count; i++) {
    SnapshotRecord s;
    c.get(s);
    auto st = cp.catalog.add_snapshot(s);
    if (!st.ok()) return bad(region, st.error().message());
  }
  if (c.left != h.segment_count * sizeof(SegmentUsage)) return bad(region, "segment table has the wrong size");
  cp.segments.resize(h.segment_count);
  for (auto& u : cp.segments) {
    c.get(u);
    if (u.state > uint8_t(SegmentState::kUsed) || u.live_bytes > sb.segment_size)
      return bad(region, "segment table entry out of range");
  }
  cp.catalog.next_snapshot = std::max(cp.catalog.next_snapshot, h.next_snapshot);
  cp.catalog.next_owner = std::max(cp.catalog.next_owner, h.next_owner);
  return cp;
}

}  // namespace frost::store
