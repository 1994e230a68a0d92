// The store's only door to the outside world. Every byte the store reads or
// writes and every sync passes through File, so a test can record, drop or
// tear writes and replay a crash (as LevelDB's fault_injection_test does).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"

namespace frost::store {

class File {
 public:
  virtual ~File() = default;

  // Reads up to n bytes at off. Returns fewer only at end of file.
  virtual Result<size_t> read_at(uint64_t off, void* buf, size_t n) const = 0;
  // Writes all n bytes at off, growing the file when needed. Not durable until sync().
  virtual Status write_at(uint64_t off, const void* buf, size_t n) = 0;
  // Makes every completed write durable (fdatasync). After a failure the
  // caller must assume any unsynced write may be lost (see PostgreSQL's fsyncgate).
  virtual Status sync() = 0;
  virtual Result<uint64_t> size() const = 0;
  // Reserves space for [off, off+len) so later writes cannot fail for lack of
  // space and overwrite in place (fallocate). May be a no-op.
  virtual Status reserve(uint64_t off, uint64_t len) = 0;
  // Takes an exclusive advisory lock held until the File is destroyed;
  // kBusy when another writer holds it.
  virtual Status lock_exclusive() = 0;
  // Hints that [off, off+len) is complete and may go to disk now, so a later
  // sync() has less to wait for. Optional.
  virtual void start_writeback(uint64_t /*off*/, uint64_t /*len*/) {}
};

enum class OpenMode { kReadOnly, kReadWrite, kCreateExclusive };

class Env {
 public:
  virtual ~Env() = default;
  // Opens path. kCreateExclusive creates it with mode 0600 and fails if it exists.
  virtual Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) = 0;
  // Makes a directory entry created in dir durable (fsync of the directory).
  virtual Status sync_dir(const std::string& dir) = 0;
  virtual bool exists(const std::string& path) = 0;

  // The real file system (and block devices).
  static Env* posix();
};

}  // namespace frost::store
