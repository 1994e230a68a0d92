// Creating a store, opening it, and recovery: the newest valid checkpoint,
// then roll-forward through the partials written after it.
#include <sys/random.h>

#include <algorithm>
#include <cstring>

#include "store/checkpoint.h"
#include "store/checksum.h"
#include "store/log_reader.h"
#include "store/store_impl.h"

namespace frost::store {
namespace {

Status validate_options(const StoreOptions& opt) {
  if (opt.segment_size % kBlockSize != 0 || opt.segment_size < 4 * kBlockSize || opt.segment_size > (1ull << 30))
    return Error::invalid("segment size must be a multiple of 4 KiB between 16 KiB and 1 GiB");
  if (opt.capacity / opt.segment_size < 4) return Error::invalid("capacity must hold at least 4 segments");
  if (opt.capacity / opt.segment_size > (1ull << 24)) return Error::invalid("capacity holds too many segments");
  if (opt.max_snapshots == 0) return Error::invalid("max_snapshots must be positive");
  return Status::Ok();
}

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Status StoreImpl::initialise(File& file, Env& env, const std::string& path, const StoreOptions& opt) {
  FROST_TRY(validate_options(opt));
  Superblock sb{};
  sb.magic = kSuperMagic;
  sb.version = kFormatVersion;
  sb.block_size = kBlockSize;
  if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid)) return Error::io("getrandom");
  sb.segment_size = opt.segment_size;
  sb.segment_count = opt.capacity / opt.segment_size;
  uint64_t owners_budget = uint64_t(opt.max_snapshots) / 2 * (sizeof(OwnerRecord) + 64);
  uint64_t cr_bytes = sizeof(CheckpointHeader) + uint64_t(opt.max_snapshots) * sizeof(SnapshotRecord) +
                      owners_budget + sb.segment_count * sizeof(SegmentUsage);
  sb.cr_size = std::max<uint64_t>(2 * kBlockSize, align_up(cr_bytes, kBlockSize));
  sb.cr_offset[0] = kBlockSize;
  sb.cr_offset[1] = kBlockSize + sb.cr_size;
  sb.segment_base = kBlockSize + 2 * sb.cr_size;
  sb.created_ns = wall_ns();
  sb.default_codec = uint8_t(opt.compression);
  sb.checksum = struct_checksum(sb);

  // The log starts in segment 0 with segment 1 reserved as its successor.
  CheckpointData cp;
  cp.catalog.clear(opt.default_retention);
  cp.segments.resize(sb.segment_count);
  for (uint32_t s : {0u, 1u}) cp.segments[s].state = uint8_t(SegmentState::kUsed);
  cp.header.cp_seq = 1;
  cp.header.log_seq = 1;
  cp.header.prev_hash = checksum(sb.uuid, sizeof(sb.uuid));
  cp.header.head_segment = 0;
  cp.header.head_offset = 0;
  cp.header.next_segment = 1;
  cp.header.written_ns = sb.created_ns;
  FROST_ASSIGN(auto cp_bytes, encode_checkpoint(cp, sb));

  uint64_t first_segments = std::min<uint64_t>(sb.segment_count, 2 + opt.gc_reserve_segments);
  FROST_TRY(file.reserve(0, sb.segment_base + first_segments * sb.segment_size));
  std::vector<uint8_t> block(kBlockSize, 0);
  std::memcpy(block.data(), &sb, sizeof(sb));
  FROST_TRY(file.write_at(0, block.data(), block.size()));
  // Checkpoint n lives in region n % 2: the first one in B, so the next one
  // (in A) never overwrites the only valid region.
  FROST_TRY(file.write_at(sb.cr_offset[cp.header.cp_seq % 2], cp_bytes.data(), cp_bytes.size()));
  FROST_TRY(file.sync());
  return env.sync_dir(dir_of(path));
}

// Why roll-forward stopped. A partial that chains correctly but does not
// verify is either a write in flight at a crash (normal) or damage. It is
// damage when a later valid partial says it had already been synced.
void StoreImpl::describe_log_end(const LogPosition& pos) {
  ReadOptions ro{true, opt_.ignore_checksums};
  for (auto [seg, off] : {std::pair{pos.segment, pos.offset}, std::pair{pos.next_segment, 0u}}) {
    if (seg == kNoSegment || seg >= sb_.segment_count || uint64_t(off) + kMinPartial > sb_.segment_size) continue;
    PartialHeader h;
    auto got = file_->read_at(geo_.segment_offset(seg) + off, &h, sizeof(h));
    if (!got.ok() || *got != sizeof(h) || h.magic != kPartialMagic || h.header_checksum != struct_checksum(h)) continue;
    if (h.seq != pos.seq || h.prev_hash != pos.prev_hash || h.segment != seg || h.offset != off) continue;
    auto broken = read_partial(*file_, sb_, seg, off, ro);
    std::string where = "segment " + std::to_string(seg) + " offset " + std::to_string(off) + " (log seq " +
                        std::to_string(h.seq) + ")";
    std::string why = broken.ok() ? "" : ": " + broken.error().message();
    uint64_t after = uint64_t(off) + h.length;
    auto next = after + kMinPartial <= sb_.segment_size ? read_partial(*file_, sb_, seg, uint32_t(after), ro)
                                                        : Result<Partial>(Error::not_found("end of segment"));
    if (!next.ok() && h.next_segment != kNoSegment) next = read_partial(*file_, sb_, h.next_segment, 0, ro);
    if (next.ok() && next->header.seq == h.seq + 1 && next->header.prev_hash == h.header_checksum &&
        next->header.durable_seq >= h.seq)
      open_damage_.push_back("log damaged at " + where + why + "; it and every later commit were dropped");
    else
      open_notes_.push_back("log ends in a partial cut short at " + where + why + " (the write in flight at a crash)");
    return;
  }
}

Result<Superblock> StoreImpl::find_superblock() {
  Superblock sb;
  FROST_ASSIGN(size_t got, file_->read_at(0, &sb, sizeof(sb)));
  // The checksum first: a flipped bit in the version field is damage, not a
  // store from a newer frost.
  Status st = got != sizeof(sb) ? Status(Error::corruption("file too short for a store"))
              : sb.magic != kSuperMagic ? Status(Error::corruption("not a frost store (bad superblock magic)"))
              : (!opt_.ignore_checksums && sb.checksum != struct_checksum(sb))
                  ? Status(Error::corruption("superblock checksum mismatch"))
                  : validate_superblock(sb);
  if (st.ok()) return sb;
  if (st.error().is(ErrorKind::kUnsupported)) return st.error();

  // Every partial header carries the superblock fields: look for one.
  FROST_ASSIGN(uint64_t size, file_->size());
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = kBlockSize; off < size; off += buf.size()) {
    FROST_ASSIGN(size_t n, file_->read_at(off, buf.data(), buf.size()));
    for (size_t i = 0; i + sizeof(PartialHeader) <= n; i += kBlockSize) {
      PartialHeader h;
      std::memcpy(&h, buf.data() + i, sizeof(h));
      if (h.magic != kPartialMagic || h.header_checksum != struct_checksum(h)) continue;
      if (!validate_superblock(h.super).ok() || h.super.checksum != struct_checksum(h.super)) continue;
      if (h.super.segment_base + uint64_t(h.segment) * h.super.segment_size + h.offset != off + i) continue;
      open_damage_.push_back("superblock: " + st.error().message() + " (recovered from the copy in segment " +
                             std::to_string(h.segment) + ")");
      return h.super;
    }
  }
  return st.error();
}

Status StoreImpl::open() {
  FROST_ASSIGN(file_, opt_.env->open_file(path_, opt_.read_only ? OpenMode::kReadOnly : OpenMode::kReadWrite));
  if (!opt_.read_only) FROST_TRY(file_->lock_exclusive());
  FROST_ASSIGN(sb_, find_superblock());
  geo_ = Geometry{sb_.segment_base, sb_.segment_size, sb_.segment_count};
  if (!opt_.read_only && !open_damage_.empty()) {
    // Put the good superblock back so the next open does not need the scan.
    std::vector<uint8_t> block(kBlockSize, 0);
    std::memcpy(block.data(), &sb_, sizeof(sb_));
    FROST_TRY(file_->write_at(0, block.data(), block.size()));
  }

  std::optional<CheckpointData> best;
  for (int region = 0; region < 2; region++) {
    auto cp = read_checkpoint(*file_, sb_, region, opt_.ignore_checksums);
    if (!cp.ok()) continue;  // fsck re-reads both regions and names what is wrong
    if (!best || cp->header.cp_seq > best->header.cp_seq) best = std::move(cp).value();
  }
  if (!best) return Error::corruption("both checkpoint regions of " + path_ + " are damaged");

  cp_seq_ = best->header.cp_seq;
  catalog_ = std::move(best->catalog);
  segments_.reset(std::move(best->segments));
  log_bytes_base_ = best->header.bytes_written;
  bytes_new_ = best->header.bytes_new;
  bytes_cleaned_ = best->header.bytes_cleaned;
  gc_runs_ = best->header.gc_runs;
  reader_ = std::make_unique<BlockReader>(file_.get(), geo_, opt_.ignore_checksums);
  log_ = std::make_unique<LogWriter>(file_.get(), sb_, &segments_, opt_.gc_reserve_segments);

  uint64_t replayed = 0;
  FROST_TRY(roll_forward(best->header, &replayed));
  if (replayed > 0) {
    auto live = count_live(&open_damage_, nullptr);
    for (uint32_t s = 0; s < live.size(); s++) segments_.set_live(s, live[s]);
  }
  log_bytes_at_checkpoint_ = log_->bytes_written();
  if (replayed > 0 && !opt_.read_only) {
    std::lock_guard lock(write_mu_);
    FROST_TRY(checkpoint_locked());
  }
  return Status::Ok();
}

Status StoreImpl::roll_forward(const CheckpointHeader& from, uint64_t* replayed) {
  LogPosition pos{from.head_segment, from.head_offset, from.next_segment, from.log_seq, from.prev_hash};
  ReadOptions ro{true, opt_.ignore_checksums};
  uint64_t max_epoch = 0, replayed_bytes = 0;
  auto chained = [&](const Result<Partial>& p) {
    return p.ok() && p->header.seq == pos.seq && p->header.prev_hash == pos.prev_hash;
  };
  for (;;) {
    Result<Partial> p = Error::not_found("no room");
    if (uint64_t(pos.offset) + kMinPartial <= sb_.segment_size) p = read_partial(*file_, sb_, pos.segment, pos.offset, ro);
    if (!chained(p) && pos.next_segment != kNoSegment) {
      auto q = read_partial(*file_, sb_, pos.next_segment, 0, ro);
      if (chained(q)) p = std::move(q);
    }
    if (!chained(p) && pos.next_segment == kNoSegment) {
      // The store was full when this segment filled, so no successor was
      // named. The hash chain makes the one that followed unambiguous: look
      // for it at the start of every segment.
      for (uint32_t s = 0; s < sb_.segment_count && !chained(p); s++) {
        PartialHeader h;
        auto got = file_->read_at(geo_.segment_offset(s), &h, sizeof(h));
        if (s == pos.segment || !got.ok() || *got != sizeof(h) || h.seq != pos.seq || h.prev_hash != pos.prev_hash)
          continue;  // a cheap look at the header before reading the whole partial
        auto q = read_partial(*file_, sb_, s, 0, ro);
        if (chained(q)) p = std::move(q);
      }
    }
    if (!chained(p)) break;
    const PartialHeader& h = p->header;
    for (const auto& e : p->entries) {
      max_epoch = std::max(max_epoch, e.epoch);
      auto rec = p->record(e);
      Status st;
      if (e.kind == uint8_t(RecordKind::kCommit)) {
        CommitRecord c;
        if (rec.size() < sizeof(c)) continue;
        std::memcpy(&c, rec.data(), sizeof(c));
        if (rec.size() != sizeof(c) + c.owner_name_length + size_t(c.retired_count) * sizeof(uint64_t)) {
          st = Error::corruption("commit record has a bad length");
        } else {
          st = catalog_.apply_commit(c, std::string(reinterpret_cast<const char*>(rec.data()) + sizeof(c), c.owner_name_length));
          const uint8_t* ids = rec.data() + sizeof(c) + c.owner_name_length;
          for (uint16_t i = 0; i < c.retired_count && st.ok(); i++) {
            OpRecord del{uint32_t(OpKind::kDelete), c.owner, 0};
            std::memcpy(&del.snapshot, ids + i * sizeof(uint64_t), sizeof(uint64_t));
            st = catalog_.apply_op(del);
          }
        }
      } else if (e.kind == uint8_t(RecordKind::kOp)) {
        if (rec.size() % sizeof(OpRecord) != 0) st = Error::corruption("op record has a bad length");
        for (size_t i = 0; st.ok() && i < rec.size() / sizeof(OpRecord); i++) {
          OpRecord op;
          std::memcpy(&op, rec.data() + i * sizeof(op), sizeof(op));
          st = catalog_.apply_op(op);
        }
      }
      if (!st.ok()) open_damage_.push_back("log seq " + std::to_string(h.seq) + ": " + st.error().message());
    }
    segments_.mark_written(h.segment, h.seq);
    pos = LogPosition{h.segment, h.offset + h.length, h.next_segment, h.seq + 1, h.header_checksum};
    replayed_bytes += h.length;
    (*replayed)++;
  }
  describe_log_end(pos);
  if (pos.next_segment != kNoSegment) segments_.mark_written(pos.next_segment, 0);
  catalog_.next_snapshot = std::max(catalog_.next_snapshot, max_epoch + 1);
  log_bytes_base_ += replayed_bytes;
  log_->reset(pos);
  return Status::Ok();
}

}  // namespace frost::store
