// A minimal JSON reader for the CLI tests: strict enough to prove that the
// --json output is valid JSON (one value, no trailing bytes, no duplicate
// keys, escaped control characters), and enough of a tree to check values.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace frost::testing {

struct Json {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject } type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;  // the string, or the number as written
  std::vector<Json> items;
  std::map<std::string, Json> members;

  bool has(const std::string& key) const { return members.count(key) != 0; }
  const Json& operator[](const std::string& key) const {
    static const Json missing;
    auto it = members.find(key);
    EXPECT_NE(it, members.end()) << "no key " << key;
    return it == members.end() ? missing : it->second;
  }
  uint64_t u64() const {
    EXPECT_EQ(type, Type::kNumber);
    return std::stoull(text.empty() ? "0" : text);
  }
  bool is_null() const { return type == Type::kNull; }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  // The single value that makes up the whole input (trailing whitespace allowed).
  std::optional<Json> parse_document() {
    auto v = value();
    skip_space();
    if (!v || pos_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  void skip_space() {
    while (pos_ < s_.size() && std::strchr(" \t\r\n", s_[pos_]) != nullptr) ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) return ++pos_, true;
    return false;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  std::optional<Json> value() {
    skip_space();
    if (pos_ >= s_.size()) return std::nullopt;
    Json j;
    char c = s_[pos_];
    if (c == '{') return object();
    if (c == '[') return array();
    if (c == '"') {
      auto str = string();
      if (!str) return std::nullopt;
      j.type = Json::Type::kString;
      j.text = *str;
      return j;
    }
    if (literal("null")) return j;
    if (literal("true") || literal("false")) {
      j.type = Json::Type::kBool;
      j.boolean = s_[pos_ - 1] == 'e' && s_[pos_ - 2] == 'u';
      return j;
    }
    return number();
  }

  std::optional<Json> number() {
    size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    size_t digits = pos_;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ == digits || (s_[digits] == '0' && pos_ - digits > 1)) return std::nullopt;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      size_t frac = ++pos_;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      if (pos_ == frac) return std::nullopt;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      size_t exp = pos_;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      if (pos_ == exp) return std::nullopt;
    }
    Json j;
    j.type = Json::Type::kNumber;
    j.text = std::string(s_.substr(start, pos_ - start));
    j.number = std::stod(j.text);
    return j;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  std::optional<std::string> string() {
    if (!eat('"')) return std::nullopt;
    std::string out;
    while (pos_ < s_.size()) {
      auto c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') return out;
      if (c < 0x20) return std::nullopt;  // control characters must be escaped
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (pos_ >= s_.size()) return std::nullopt;
      char e = s_[pos_++];
      static const std::map<char, char> kSimple{{'"', '"'}, {'\\', '\\'}, {'/', '/'}, {'b', '\b'},
                                                {'f', '\f'}, {'n', '\n'}, {'r', '\r'}, {'t', '\t'}};
      if (auto it = kSimple.find(e); it != kSimple.end()) {
        out += it->second;
      } else if (e == 'u' && pos_ + 4 <= s_.size()) {
        append_utf8(out, static_cast<uint32_t>(std::stoul(std::string(s_.substr(pos_, 4)), nullptr, 16)));
        pos_ += 4;
      } else {
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  std::optional<Json> array() {
    eat('[');
    Json j;
    j.type = Json::Type::kArray;
    if (eat(']')) return j;
    do {
      auto v = value();
      if (!v) return std::nullopt;
      j.items.push_back(std::move(*v));
    } while (eat(','));
    if (!eat(']')) return std::nullopt;
    return j;
  }

  std::optional<Json> object() {
    eat('{');
    Json j;
    j.type = Json::Type::kObject;
    if (eat('}')) return j;
    do {
      skip_space();
      auto key = string();
      if (!key || !eat(':')) return std::nullopt;
      auto v = value();
      if (!v || j.members.count(*key) != 0) return std::nullopt;
      j.members.emplace(std::move(*key), std::move(*v));
    } while (eat(','));
    if (!eat('}')) return std::nullopt;
    return j;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace frost::testing
