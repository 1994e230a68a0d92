// Errors as values. Every fallible call in frost returns a Status or a
// Result<T>; the CLI turns an Error into one line and a non-zero exit.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace frost {

enum class ErrorKind {
  kIo,               // a system call failed; errno says why
  kCorruption,       // bytes on disk are not what frost wrote
  kNotFound,         // a name, snapshot or file that does not exist
  kInvalidArgument,  // the caller asked for something malformed
  kNoSpace,          // the disk or the configured capacity is full
  kBusy,             // someone else holds it (a lock, a held snapshot)
  kExists,           // it is already there
  kFailed,           // the store saw a failed sync and refuses to go on
  kUnsupported,      // a format version or feature frost does not know
};

class Error {
 public:
  Error(ErrorKind kind, std::string message, int err = 0)
      : kind_(kind), message_(std::move(message)), errno_(err) {}

  static Error io(const std::string& what, int err = errno) {
    return Error(err == ENOSPC || err == EDQUOT ? ErrorKind::kNoSpace : ErrorKind::kIo, what, err);
  }
  static Error corruption(const std::string& what) { return Error(ErrorKind::kCorruption, what); }
  static Error not_found(const std::string& what) { return Error(ErrorKind::kNotFound, what); }
  static Error invalid(const std::string& what) { return Error(ErrorKind::kInvalidArgument, what); }
  static Error no_space(const std::string& what) { return Error(ErrorKind::kNoSpace, what); }

  ErrorKind kind() const { return kind_; }
  int err() const { return errno_; }
  const std::string& message() const { return message_; }
  bool is(ErrorKind k) const { return kind_ == k; }

  // One line: "<message>: <strerror>" when an errno is attached.
  std::string to_string() const {
    if (errno_ == 0) return message_;
    return message_ + ": " + std::strerror(errno_);
  }

  // Prefixes the message with where the error was seen, keeping kind and errno.
  Error context(const std::string& where) const {
    return Error(kind_, where + ": " + message_, errno_);
  }

 private:
  ErrorKind kind_;
  std::string message_;
  int errno_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : e_(std::move(error)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }

 private:
  std::optional<Error> e_;
};

}  // namespace frost

#define FROST_CONCAT_INNER(a, b) a##b
#define FROST_CONCAT(a, b) FROST_CONCAT_INNER(a, b)

// Returns the error of a Status or Result expression from the enclosing function.
#define FROST_TRY(expr)                                   \
  do {                                                    \
    auto&& frost_try_r = (expr);                          \
    if (!frost_try_r.ok()) return frost_try_r.error();    \
  } while (0)

// `FROST_ASSIGN(auto x, f())` declares x from a Result or returns its error.
#define FROST_ASSIGN(decl, expr) FROST_ASSIGN_IMPL(FROST_CONCAT(frost_r_, __LINE__), decl, expr)
#define FROST_ASSIGN_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                       \
  if (!tmp.ok()) return tmp.error();       \
  decl = std::move(tmp).value()
