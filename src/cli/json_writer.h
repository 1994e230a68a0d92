// A small streaming JSON writer for the CLI's --json output: objects, arrays,
// strings, integers, doubles, booleans and null. Commas are placed for the
// caller; strings are escaped and invalid UTF-8 is replaced by U+FFFD, so the
// result is always valid JSON as long as begin/end calls are balanced.
//
//   JsonWriter j;
//   j.begin_object().field("clean", true).key("damage").begin_array().end_array().end_object();
//   std::string text = j.str();
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace frost::cli {

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  // Names the next value; only inside an object.
  JsonWriter& key(std::string_view name);

  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(uint64_t n);
  JsonWriter& value(int64_t n);
  JsonWriter& value(int n) { return value(static_cast<int64_t>(n)); }
  JsonWriter& value(uint32_t n) { return value(static_cast<uint64_t>(n)); }
  // NaN and infinities have no JSON form: they are written as null.
  JsonWriter& value(double d);
  JsonWriter& value(bool b);
  JsonWriter& null();

  // key(name).value(v) in one call.
  template <class T>
  JsonWriter& field(std::string_view name, const T& v) {
    return key(name).value(v);
  }

  // The text written so far.
  const std::string& str() const { return out_; }

 private:
  void before_value();
  void raw(std::string_view s) { out_.append(s); }
  void quoted(std::string_view s);

  std::string out_;
  // One entry per open object or array: whether it has a member yet.
  std::vector<bool> has_member_;
  bool after_key_ = false;
};

}  // namespace frost::cli
