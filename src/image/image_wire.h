// The field encoding every image message uses: a sequence of
//   varint tag, varint length, `length` bytes of payload
// where an integer payload is one varint (zigzag for signed values), a string
// or byte payload is the bytes themselves, and a nested message is its own
// field sequence. The length in front of every field is what lets a reader
// skip a field it does not know.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace frost::image::wire {

// Appends fields to a growing buffer. Writing never fails.
class Writer {
 public:
  // Integer fields; the *_nz forms omit a zero value (the reader's default).
  void u64(uint32_t tag, uint64_t v);
  void s64(uint32_t tag, int64_t v);
  void u64_nz(uint32_t tag, uint64_t v) { if (v != 0) u64(tag, v); }
  void s64_nz(uint32_t tag, int64_t v) { if (v != 0) s64(tag, v); }
  void bytes(uint32_t tag, std::span<const uint8_t> b);
  void bytes_nz(uint32_t tag, std::span<const uint8_t> b) { if (!b.empty()) bytes(tag, b); }
  void str_nz(uint32_t tag, std::string_view s);
  void message(uint32_t tag, const Writer& nested) { bytes(tag, nested.data()); }
  // For a singular message: empty means every field is default, as absent does.
  void message_nz(uint32_t tag, const Writer& nested) { bytes_nz(tag, nested.data()); }

  const std::vector<uint8_t>& data() const { return buf_; }
  std::vector<uint8_t> take() { return std::move(buf_); }

 private:
  void varint(uint64_t v);
  std::vector<uint8_t> buf_;
};

struct Field {
  uint32_t tag = 0;
  std::span<const uint8_t> payload;
};

// Walks the fields of one message. Every length is checked against what is
// left before it is used, so a hostile message cannot make it read past its end.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}

  bool done() const { return pos_ == in_.size(); }
  // The next field; a truncated header or a length past the end is corruption.
  Result<Field> next();

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

// Payload decoders: the varint must fill the payload exactly.
Result<uint64_t> as_u64(const Field& f);
Result<int64_t> as_s64(const Field& f);
std::string as_string(const Field& f);
std::vector<uint8_t> as_bytes(const Field& f);

// A varint read from the front of `in`; `used` gets its size. At most 10
// bytes, and the tenth may only carry the top bit of a 64-bit value.
Result<uint64_t> read_varint(std::span<const uint8_t> in, size_t* used);

}  // namespace frost::image::wire
