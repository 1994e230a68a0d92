#include "cli/json_writer.h"

#include <fmt/format.h>

#include <cmath>

namespace frost::cli {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid
// (overlong forms, surrogates and code points past U+10FFFF included).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t b = byte(i);
  size_t n = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  uint8_t b1 = byte(i + 1);
  if (b == 0xe0 && b1 < 0xa0) return 0;   // overlong
  if (b == 0xed && b1 >= 0xa0) return 0;  // UTF-16 surrogate
  if (b == 0xf0 && b1 < 0x90) return 0;   // overlong
  if (b == 0xf4 && b1 >= 0x90) return 0;  // past U+10FFFF
  return n;
}

}  // namespace

JsonWriter& JsonWriter::begin_object() {
  before_value();
  raw("{");
  has_member_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  has_member_.pop_back();
  raw("}");
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  before_value();
  raw("[");
  has_member_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  has_member_.pop_back();
  raw("]");
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  if (has_member_.back()) raw(",");
  has_member_.back() = true;
  quoted(name);
  raw(":");
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  before_value();
  quoted(s);
  return *this;
}

JsonWriter& JsonWriter::value(uint64_t n) {
  before_value();
  raw(fmt::format("{}", n));
  return *this;
}

JsonWriter& JsonWriter::value(int64_t n) {
  before_value();
  raw(fmt::format("{}", n));
  return *this;
}

JsonWriter& JsonWriter::value(double d) {
  before_value();
  raw(std::isfinite(d) ? fmt::format("{}", d) : "null");
  return *this;
}

JsonWriter& JsonWriter::value(bool b) {
  before_value();
  raw(b ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  raw("null");
  return *this;
}

// A value inside an array needs a comma after its predecessor; one inside an
// object already got it from key().
void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_member_.empty()) {
    if (has_member_.back()) raw(",");
    has_member_.back() = true;
  }
}

void JsonWriter::quoted(std::string_view s) {
  raw("\"");
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out_ += '\\';
      out_ += static_cast<char>(c);
    } else if (c == '\n') {
      raw("\\n");
    } else if (c == '\t') {
      raw("\\t");
    } else if (c < 0x20 || c == 0x7f) {
      raw(fmt::format("\\u{:04x}", c));
    } else if (c >= 0x80) {
      size_t n = utf8_sequence_length(s, i);
      if (n == 0) {
        raw("\\ufffd");
        ++i;
      } else {
        out_.append(s.substr(i, n));
        i += n;
      }
      continue;
    } else {
      out_ += static_cast<char>(c);
    }
    ++i;
  }
  raw("\"");
}

}  // namespace frost::cli
