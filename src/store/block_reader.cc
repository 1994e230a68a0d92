#include "store/block_reader.h"

#include <string>

#include "store/checksum.h"
#include "store/codec.h"

namespace frost::store {

BlockReader::BlockReader(const File* file, Geometry geo, bool ignore_checksums, size_t cache_nodes)
    : file_(file), geo_(geo), ignore_checksums_(ignore_checksums), cache_nodes_(cache_nodes) {}

Result<std::vector<uint8_t>> BlockReader::read_record(const IndexEntry& e) const {
  uint64_t off = e.offset();
  uint32_t len = e.length();
  if (e.zero() || len == 0 || !geo_.in_segments(off, len) ||
      geo_.segment_of(off) != geo_.segment_of(off + len - 1))
    return Error::corruption("index points outside the log (offset " + std::to_string(off) + ")");
  std::vector<uint8_t> buf(len);
  FROST_ASSIGN(size_t got, file_->read_at(off, buf.data(), len));
  if (got != len) return Error::corruption("record at offset " + std::to_string(off) + " is past the end of the file");
  if (!ignore_checksums_ && block_checksum(buf.data(), len) != e.checksum)
    return Error::corruption("checksum mismatch in record at offset " + std::to_string(off));
  return buf;
}

Status BlockReader::read_page(const IndexEntry& e, std::span<uint8_t, kPageSize> out) const {
  if (e.zero()) {
    std::fill(out.begin(), out.end(), 0);
    return Status::Ok();
  }
  if (e.codec() == Codec::kNone && e.length() == kPageSize) {
    // The common case: straight into the caller's buffer, no copy.
    uint64_t off = e.offset();
    if (!geo_.in_segments(off, kPageSize) || geo_.segment_of(off) != geo_.segment_of(off + kPageSize - 1))
      return Error::corruption("index points outside the log (offset " + std::to_string(off) + ")");
    FROST_ASSIGN(size_t got, file_->read_at(off, out.data(), kPageSize));
    if (got != kPageSize) return Error::corruption("page at offset " + std::to_string(off) + " is past the end of the file");
    if (!ignore_checksums_ && block_checksum(out.data(), kPageSize) != e.checksum)
      return Error::corruption("checksum mismatch in page at offset " + std::to_string(off));
    return Status::Ok();
  }
  FROST_ASSIGN(auto bytes, read_record(e));
  auto st = decompress_block(e.codec(), bytes, out);
  if (!st.ok()) return st.error().context("page at offset " + std::to_string(e.offset()));
  return Status::Ok();
}

Status BlockReader::read_pages(std::span<const IndexEntry> entries, uint8_t* out) const {
  auto raw = [](const IndexEntry& e) { return !e.zero() && e.codec() == Codec::kNone && e.length() == kPageSize; };
  for (size_t i = 0; i < entries.size();) {
    const IndexEntry& first = entries[i];
    if (!raw(first)) {
      FROST_TRY(read_page(first, std::span<uint8_t, kPageSize>(out + i * kPageSize, kPageSize)));
      ++i;
      continue;
    }
    // The longest run of raw blocks, each right after the one before, in one segment.
    uint64_t off = first.offset();
    size_t n = 1;
    while (i + n < entries.size() && raw(entries[i + n]) && entries[i + n].offset() == off + n * kPageSize &&
           geo_.segment_of(off) == geo_.segment_of(off + (n + 1) * kPageSize - 1)) {
      ++n;
    }
    if (!geo_.in_segments(off, n * kPageSize) || geo_.segment_of(off) != geo_.segment_of(off + n * kPageSize - 1))
      return Error::corruption("index points outside the log (offset " + std::to_string(off) + ")");
    uint8_t* dst = out + i * kPageSize;
    FROST_ASSIGN(size_t got, file_->read_at(off, dst, n * kPageSize));
    if (got != n * kPageSize) return Error::corruption("page at offset " + std::to_string(off) + " is past the end of the file");
    for (size_t k = 0; k < n && !ignore_checksums_; ++k) {
      if (block_checksum(dst + k * kPageSize, kPageSize) != entries[i + k].checksum)
        return Error::corruption("checksum mismatch in page at offset " + std::to_string(off + k * kPageSize));
    }
    i += n;
  }
  return Status::Ok();
}

Result<std::shared_ptr<const Node>> BlockReader::load_node(const IndexEntry& e, int level, Tree tree) const {
  Key key{e.offset(), e.checksum};
  {
    std::lock_guard lock(mu_);
    if (auto it = young_.find(key); it != young_.end() && it->second->level == level && it->second->tree == tree) return it->second;
    if (auto it = old_.find(key); it != old_.end() && it->second->level == level && it->second->tree == tree) {
      auto n = it->second;
      young_[key] = n;
      return n;
    }
  }
  if (e.zero() || e.codec() != Codec::kNone) return Error::corruption("index node pointer is malformed");
  FROST_ASSIGN(auto bytes, read_record(e));
  auto node = decode_node(bytes, level, tree);
  if (!node.ok()) return node.error().context("node at offset " + std::to_string(e.offset()));
  auto shared = std::make_shared<const Node>(std::move(node).value());
  std::lock_guard lock(mu_);
  if (young_.size() >= cache_nodes_ / 2) {
    old_ = std::move(young_);
    young_.clear();
  }
  young_[key] = shared;
  return shared;
}

void BlockReader::clear_cache() {
  std::lock_guard lock(mu_);
  young_.clear();
  old_.clear();
}

}  // namespace frost::store
