#include "store/log_writer.h"

#include <chrono>
#include <cstring>

#include "store/checksum.h"

namespace frost::store {
namespace {

uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

LogWriter::LogWriter(File* file, const Superblock& super, SegmentTable* segments, uint32_t reserve_segments)
    : file_(file),
      super_(super),
      geo_{super.segment_base, super.segment_size, super.segment_count},
      segments_(segments),
      reserve_(reserve_segments),
      buf_() {}

void LogWriter::reset(const LogPosition& pos) {
  pos_ = pos;
  durable_seq_ = pos.seq - 1;
  entries_.clear();
  data_length_ = 0;
}

LogPosition LogWriter::position() const { return pos_; }

bool LogWriter::fits(size_t length) const {
  size_t need = kPartialHeaderSize + data_length_ + align_up(length, kRecordAlign) + (entries_.size() + 1) * sizeof(SummaryEntry);
  return align_up(need, kBlockSize) + pos_.offset <= geo_.segment_size;
}

std::optional<uint32_t> LogWriter::allocate() {
  auto s = segments_->allocate(for_cleaner_, reserve_);
  if (!s) return std::nullopt;
  // Reserve the disk space now: a segment the log has chained to must be
  // writable. Ordinary writes also reserve the space of the segments kept back
  // for the cleaner, so that on a full disk deletes and cleaning still work.
  uint64_t count = for_cleaner_ ? 1 : std::min<uint64_t>(1 + reserve_, geo_.segment_count - *s);
  if (!file_->reserve(geo_.segment_offset(*s), count * geo_.segment_size).ok()) {
    segments_->unallocate(*s);
    return std::nullopt;
  }
  return s;
}

Status LogWriter::advance_segment() {
  if (pos_.next_segment == kNoSegment) {
    auto s = allocate();
    if (!s) return Error::no_space("store is full: no free segment of " + std::to_string(geo_.segment_count));
    pos_.next_segment = *s;
  }
  pos_.segment = pos_.next_segment;
  pos_.offset = 0;
  pos_.next_segment = allocate().value_or(kNoSegment);
  return Status::Ok();
}

Result<IndexEntry> LogWriter::append(const RecordSpec& spec, std::span<const uint8_t> bytes,
                                     std::optional<uint64_t> precomputed) {
  if (bytes.size() > 0xffff || bytes.empty()) return Error::invalid("record of " + std::to_string(bytes.size()) + " bytes");
  if (pos_.next_segment == kNoSegment && pos_.offset == 0 && entries_.empty()) {
    // A fresh head (after recovery with no reservation): find a successor early.
    pos_.next_segment = allocate().value_or(kNoSegment);
  }
  if (!fits(bytes.size())) {
    FROST_TRY(flush());
    if (!fits(bytes.size())) FROST_TRY(advance_segment());
    if (!fits(bytes.size())) return Error::invalid("record larger than a segment");
  }
  if (pos_.next_segment == kNoSegment) pos_.next_segment = allocate().value_or(kNoSegment);

  // Allocated on the first write: a read-only open never needs it.
  if (buf_.empty()) buf_.resize(geo_.segment_size);
  uint64_t sum = precomputed ? *precomputed : block_checksum(bytes.data(), bytes.size());
  uint32_t rel = kPartialHeaderSize + data_length_;
  std::memcpy(buf_.data() + rel, bytes.data(), bytes.size());
  uint32_t padded = record_footprint(uint32_t(bytes.size()));
  std::memset(buf_.data() + rel + bytes.size(), 0, padded - bytes.size());
  data_length_ += padded;

  SummaryEntry e{};
  e.kind = uint8_t(spec.kind);
  e.tree = uint8_t(spec.tree);
  e.level = spec.level;
  e.codec = uint8_t(spec.codec);
  e.owner = spec.owner;
  e.key = spec.key;
  e.epoch = spec.epoch;
  e.offset = pos_.offset + rel;
  e.length = uint32_t(bytes.size());
  e.checksum = sum;
  entries_.push_back(e);
  uint64_t file_off = geo_.segment_offset(pos_.segment) + e.offset;
  return IndexEntry::make(file_off, e.length, spec.codec, sum);
}

Status LogWriter::flush() {
  if (entries_.empty()) return Status::Ok();
  size_t summary_bytes = entries_.size() * sizeof(SummaryEntry);
  size_t end = kPartialHeaderSize + data_length_ + summary_bytes;
  uint32_t length = uint32_t(align_up(end, kBlockSize));
  std::memcpy(buf_.data() + kPartialHeaderSize + data_length_, entries_.data(), summary_bytes);
  std::memset(buf_.data() + end, 0, length - end);

  PartialHeader h{};
  h.magic = kPartialMagic;
  h.seq = pos_.seq;
  h.prev_hash = pos_.prev_hash;
  h.segment = pos_.segment;
  h.offset = pos_.offset;
  h.length = length;
  h.data_length = data_length_;
  h.entry_count = uint32_t(entries_.size());
  h.next_segment = pos_.next_segment;
  h.summary_checksum = checksum(entries_.data(), summary_bytes);
  h.written_ns = now_ns();
  h.super = super_;
  h.durable_seq = durable_seq_;
  h.header_checksum = struct_checksum(h);
  std::memcpy(buf_.data(), &h, sizeof(h));

  uint64_t off = geo_.segment_offset(pos_.segment) + pos_.offset;
  FROST_TRY(file_->write_at(off, buf_.data(), length));
  file_->start_writeback(off, length);
  segments_->mark_written(pos_.segment, pos_.seq);
  bytes_written_ += length;
  pos_.prev_hash = h.header_checksum;
  pos_.seq++;
  pos_.offset += length;
  entries_.clear();
  data_length_ = 0;
  return Status::Ok();
}

Status LogWriter::sync() {
  FROST_TRY(flush());
  FROST_TRY(file_->sync());
  durable_seq_ = pos_.seq - 1;
  return Status::Ok();
}

}  // namespace frost::store
