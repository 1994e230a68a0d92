// XXH3-64 over store bytes. One place, so the whole store agrees on the seed.
#pragma once

#include <xxhash.h>

#include <cstddef>
#include <cstdint>

namespace frost::store {

inline uint64_t checksum(const void* data, size_t n) { return XXH3_64bits(data, n); }

// Checksum of a fixed-layout struct whose last field is its own checksum.
template <class T>
uint64_t struct_checksum(const T& s) {
  return checksum(&s, sizeof(T) - sizeof(uint64_t));
}

}  // namespace frost::store
