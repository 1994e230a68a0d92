#include "image/image_wire.h"

#include <fmt/format.h>

namespace frost::image::wire {

void Writer::varint(uint64_t v) {
  while (v >= 0x80) {
    buf_.push_back(static_cast<uint8_t>(v) | 0x80);
    v >>= 7;
  }
  buf_.push_back(static_cast<uint8_t>(v));
}

void Writer::u64(uint32_t tag, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  for (uint64_t x = v; ; x >>= 7) {
    tmp[n++] = static_cast<uint8_t>(x) | (x >= 0x80 ? 0x80 : 0);
    if (x < 0x80) break;
  }
  varint(tag);
  varint(n);
  buf_.insert(buf_.end(), tmp, tmp + n);
}

void Writer::s64(uint32_t tag, int64_t v) {
  // Zigzag keeps small negative numbers (-1 for "none") one byte long.
  uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  u64(tag, z);
}

void Writer::bytes(uint32_t tag, std::span<const uint8_t> b) {
  varint(tag);
  varint(b.size());
  buf_.insert(buf_.end(), b.begin(), b.end());
}

void Writer::str_nz(uint32_t tag, std::string_view s) {
  if (s.empty()) return;
  bytes(tag, {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

Result<uint64_t> read_varint(std::span<const uint8_t> in, size_t* used) {
  uint64_t v = 0;
  for (size_t i = 0; i < in.size() && i < 10; i++) {
    uint8_t b = in[i];
    if (i == 9 && b > 1) return Error::corruption("image: varint overflows 64 bits");
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      *used = i + 1;
      return v;
    }
  }
  return Error::corruption("image: truncated varint");
}

Result<Field> Reader::next() {
  size_t n = 0;
  FROST_ASSIGN(uint64_t tag, read_varint(in_.subspan(pos_), &n));
  pos_ += n;
  FROST_ASSIGN(uint64_t len, read_varint(in_.subspan(pos_), &n));
  pos_ += n;
  if (tag == 0 || tag > UINT32_MAX) return Error::corruption(fmt::format("image: bad tag {}", tag));
  if (len > in_.size() - pos_) {
    return Error::corruption(fmt::format("image: field {} of {} bytes with {} left", tag, len,
                                         in_.size() - pos_));
  }
  Field f{static_cast<uint32_t>(tag), in_.subspan(pos_, len)};
  pos_ += len;
  return f;
}

Result<uint64_t> as_u64(const Field& f) {
  size_t n = 0;
  FROST_ASSIGN(uint64_t v, read_varint(f.payload, &n));
  if (n != f.payload.size()) {
    return Error::corruption(fmt::format("image: field {}: integer with trailing bytes", f.tag));
  }
  return v;
}

Result<int64_t> as_s64(const Field& f) {
  FROST_ASSIGN(uint64_t z, as_u64(f));
  return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
}

std::string as_string(const Field& f) {
  return std::string(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
}

std::vector<uint8_t> as_bytes(const Field& f) {
  return std::vector<uint8_t>(f.payload.begin(), f.payload.end());
}

}  // namespace frost::image::wire
