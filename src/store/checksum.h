// Checksums over store bytes. One place, so the whole store agrees on the
// seed and on the width of each kind.
#pragma once

#include <xxhash.h>

#include <cstddef>
#include <cstdint>

namespace frost::store {

inline uint64_t checksum(const void* data, size_t n) { return XXH3_64bits(data, n); }

// The checksum of a record's stored bytes (a page, a node, a commit or op
// record): XXH3-64 folded to 32 bits. Every index entry carries one, and
// index nodes are rewritten often, so its width is paid again and again;
// 32 bits is what ext4 and btrfs use per block (docs/DECISIONS.md). Every
// comparison with an IndexEntry or SummaryEntry checksum must use this.
inline uint32_t block_checksum(const void* data, size_t n) {
  uint64_t h = XXH3_64bits(data, n);
  return uint32_t(h ^ (h >> 32));
}

// Checksum of a fixed-layout struct whose last field is its own checksum.
template <class T>
uint64_t struct_checksum(const T& s) {
  return checksum(&s, sizeof(T) - sizeof(uint64_t));
}

}  // namespace frost::store
