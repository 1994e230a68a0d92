#include "store/log_reader.h"

#include <cstring>
#include <string>

#include "store/checksum.h"

namespace frost::store {
namespace {

Error bad(uint32_t segment, uint32_t offset, const std::string& what) {
  return Error::corruption("segment " + std::to_string(segment) + " offset " + std::to_string(offset) + ": " + what);
}

Status validate_header(const PartialHeader& h, const Superblock& sb, uint32_t segment, uint32_t offset,
                       const ReadOptions& opt) {
  if (h.magic != kPartialMagic) return bad(segment, offset, "no partial segment header");
  if (!opt.ignore_checksums && h.header_checksum != struct_checksum(h))
    return bad(segment, offset, "partial header checksum mismatch");
  if (std::memcmp(h.super.uuid, sb.uuid, sizeof(sb.uuid)) != 0) return bad(segment, offset, "header of another store");
  if (h.segment != segment || h.offset != offset) return bad(segment, offset, "header names another place");
  uint64_t room = sb.segment_size - offset;
  if (h.length < kMinPartial || h.length % kBlockSize != 0 || h.length > room)
    return bad(segment, offset, "bad partial length");
  if (h.data_length % kRecordAlign != 0) return bad(segment, offset, "misaligned data length");
  uint64_t need = uint64_t(kPartialHeaderSize) + h.data_length + uint64_t(h.entry_count) * sizeof(SummaryEntry);
  if (h.entry_count == 0 || need > h.length) return bad(segment, offset, "summary does not fit the partial");
  if (h.next_segment != kNoSegment && h.next_segment >= sb.segment_count)
    return bad(segment, offset, "next segment out of range");
  return Status::Ok();
}

Status validate_entry(const SummaryEntry& e, const PartialHeader& h, uint32_t segment) {
  uint64_t data_begin = uint64_t(h.offset) + kPartialHeaderSize;
  uint64_t data_end = data_begin + h.data_length;
  if (e.kind < uint8_t(RecordKind::kPage) || e.kind > uint8_t(RecordKind::kOp))
    return bad(segment, h.offset, "summary entry of unknown kind");
  if (e.codec > uint8_t(Codec::kZstd) || e.tree > uint8_t(Tree::kMeta) || e.level >= kLevels)
    return bad(segment, h.offset, "summary entry with bad fields");
  if (e.length == 0 || e.offset < data_begin || e.offset % kRecordAlign != 0 || e.offset + uint64_t(e.length) > data_end)
    return bad(segment, h.offset, "summary entry points outside its partial");
  return Status::Ok();
}

}  // namespace

Status validate_superblock(const Superblock& sb) {
  if (sb.magic != kSuperMagic) return Error::corruption("not a frost store (bad superblock magic)");
  if (sb.version != kFormatVersion)
    return Error(ErrorKind::kUnsupported, "store format version " + std::to_string(sb.version) +
                                              " is not supported (this frost reads version " +
                                              std::to_string(kFormatVersion) + " only)");
  if (sb.block_size != kBlockSize) return Error::corruption("superblock: bad block size");
  if (sb.segment_size < 4 * kBlockSize || sb.segment_size > (1ull << 30) || sb.segment_size % kBlockSize != 0)
    return Error::corruption("superblock: bad segment size");
  if (sb.segment_count == 0 || sb.segment_count > (1ull << 24)) return Error::corruption("superblock: bad segment count");
  if (sb.cr_size < 2 * kBlockSize || sb.cr_size > (1ull << 30) || sb.cr_size % kBlockSize != 0)
    return Error::corruption("superblock: bad checkpoint region size");
  if (sb.cr_offset[0] != kBlockSize || sb.cr_offset[1] != kBlockSize + sb.cr_size ||
      sb.segment_base != kBlockSize + 2 * sb.cr_size)
    return Error::corruption("superblock: inconsistent layout");
  if (sb.default_codec > uint8_t(Codec::kZstd)) return Error::corruption("superblock: unknown codec");
  return Status::Ok();
}

Result<Partial> read_partial(const File& file, const Superblock& sb, uint32_t segment, uint32_t offset,
                             const ReadOptions& opt) {
  if (segment >= sb.segment_count || uint64_t(offset) + kMinPartial > sb.segment_size)
    return bad(segment, offset, "position outside the store");
  Partial p;
  p.file_offset = sb.segment_base + uint64_t(segment) * sb.segment_size + offset;
  FROST_ASSIGN(size_t got, file.read_at(p.file_offset, &p.header, sizeof(PartialHeader)));
  if (got < sizeof(PartialHeader)) return bad(segment, offset, "past the end of the file");
  FROST_TRY(validate_header(p.header, sb, segment, offset, opt));

  const PartialHeader& h = p.header;
  p.bytes.resize(h.length);
  FROST_ASSIGN(got, file.read_at(p.file_offset, p.bytes.data(), h.length));
  if (got != h.length) return bad(segment, offset, "partial cut short by the end of the file");
  const uint8_t* summary = p.bytes.data() + kPartialHeaderSize + h.data_length;
  size_t summary_bytes = size_t(h.entry_count) * sizeof(SummaryEntry);
  if (!opt.ignore_checksums && checksum(summary, summary_bytes) != h.summary_checksum)
    return bad(segment, offset, "summary checksum mismatch");
  p.entries.resize(h.entry_count);
  std::memcpy(p.entries.data(), summary, summary_bytes);
  for (const auto& e : p.entries) {
    FROST_TRY(validate_entry(e, h, segment));
    if (opt.verify_records && !opt.ignore_checksums) {
      auto rec = p.record(e);
      if (block_checksum(rec.data(), rec.size()) != e.checksum) return bad(segment, offset, "record checksum mismatch");
    }
  }
  return p;
}

std::vector<Partial> read_segment(const File& file, const Superblock& sb, uint32_t segment, const ReadOptions& opt) {
  std::vector<Partial> out;
  uint32_t offset = 0;
  while (uint64_t(offset) + kMinPartial <= sb.segment_size) {
    auto p = read_partial(file, sb, segment, offset, opt);
    if (!p.ok()) break;
    if (!out.empty() && (p->header.seq != out.back().header.seq + 1 ||
                         p->header.prev_hash != out.back().header.header_checksum))
      break;
    offset += p->header.length;
    out.push_back(std::move(p).value());
  }
  return out;
}

}  // namespace frost::store
