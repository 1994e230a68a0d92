// An Env whose files live in memory: for tests, the fuzz targets and the demo's
// simulated power cuts. Files are shared byte vectors; contents() exposes them.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/env.h"

namespace frost::store {

class MemEnv : public Env {
 public:
  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override;
  Status sync_dir(const std::string&) override { return Status::Ok(); }
  bool exists(const std::string& path) override;

  // The bytes of a file (empty if it does not exist). Tests read and damage these.
  std::vector<uint8_t> contents(const std::string& path) const;
  void set_contents(const std::string& path, std::vector<uint8_t> bytes);
  void remove(const std::string& path);
  // Makes write_at/reserve fail with ENOSPC once a file would exceed this size.
  void set_size_limit(uint64_t bytes);

  struct Data {
    mutable std::mutex mu;
    std::vector<uint8_t> bytes;
    uint64_t limit = ~0ull;
  };

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Data>> files_;
  uint64_t limit_ = ~0ull;
};

}  // namespace frost::store
