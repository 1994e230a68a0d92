#include "store/mem_env.h"

#include <cerrno>
#include <cstring>

namespace frost::store {
namespace {

class MemFile final : public File {
 public:
  explicit MemFile(std::shared_ptr<MemEnv::Data> d) : d_(std::move(d)) {}

  Result<size_t> read_at(uint64_t off, void* buf, size_t n) const override {
    std::lock_guard lock(d_->mu);
    if (off >= d_->bytes.size()) return size_t{0};
    size_t k = std::min<uint64_t>(n, d_->bytes.size() - off);
    if (k) std::memcpy(buf, d_->bytes.data() + off, k);
    return k;
  }
  Status write_at(uint64_t off, const void* buf, size_t n) override {
    std::lock_guard lock(d_->mu);
    if (off + n > d_->limit) return Error::io("write beyond size limit", ENOSPC);
    if (d_->bytes.size() < off + n) d_->bytes.resize(off + n);
    std::memcpy(d_->bytes.data() + off, buf, n);
    return Status::Ok();
  }
  Status sync() override { return Status::Ok(); }
  Result<uint64_t> size() const override {
    std::lock_guard lock(d_->mu);
    return uint64_t(d_->bytes.size());
  }
  Status reserve(uint64_t off, uint64_t len) override {
    std::lock_guard lock(d_->mu);
    if (off + len > d_->limit) return Error::io("reserve beyond size limit", ENOSPC);
    return Status::Ok();
  }
  Status lock_exclusive() override { return Status::Ok(); }

 private:
  std::shared_ptr<MemEnv::Data> d_;
};

}  // namespace

Result<std::unique_ptr<File>> MemEnv::open_file(const std::string& path, OpenMode mode) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (mode == OpenMode::kCreateExclusive) {
    if (it != files_.end()) return Error(ErrorKind::kExists, path + " already exists", EEXIST);
    auto d = std::make_shared<Data>();
    d->limit = limit_;
    it = files_.emplace(path, d).first;
  } else if (it == files_.end()) {
    return Error(ErrorKind::kNotFound, "no store at " + path, ENOENT);
  }
  return std::unique_ptr<File>(new MemFile(it->second));
}

bool MemEnv::exists(const std::string& path) {
  std::lock_guard lock(mu_);
  return files_.count(path) != 0;
}

std::vector<uint8_t> MemEnv::contents(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return {};
  std::lock_guard dl(it->second->mu);
  return it->second->bytes;
}

void MemEnv::set_contents(const std::string& path, std::vector<uint8_t> bytes) {
  std::lock_guard lock(mu_);
  auto& d = files_[path];
  if (!d) {
    d = std::make_shared<Data>();
    d->limit = limit_;
  }
  std::lock_guard dl(d->mu);
  d->bytes = std::move(bytes);
}

void MemEnv::remove(const std::string& path) {
  std::lock_guard lock(mu_);
  files_.erase(path);
}

void MemEnv::set_size_limit(uint64_t bytes) {
  std::lock_guard lock(mu_);
  limit_ = bytes;
  for (auto& [_, d] : files_) {
    std::lock_guard dl(d->mu);
    d->limit = bytes;
  }
}

}  // namespace frost::store
