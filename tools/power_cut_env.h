// An in-memory disk that knows which writes were synced, for the demo's
// simulated power cut. Armed with a countdown, it photographs the disk at the
// n-th write or sync from then: every synced byte, and of the writes not yet
// synced each one whole, lost, or torn at a 512-byte sector boundary, as a
// real disk losing power might leave them. The store keeps running on the
// live contents; the photograph is what a reboot would find.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "store/env.h"
#include "store/mem_env.h"

namespace frost::demo {

struct PowerCutImage {
  std::map<std::string, std::vector<uint8_t>> files;
  size_t unsynced = 0;  // writes that had not been synced at the cut
  size_t kept = 0;      // of them, reached the disk whole
  size_t torn = 0;      // reached it in part
};

class PowerCutEnv : public store::Env {
 public:
  explicit PowerCutEnv(uint64_t seed) : rng_(seed) {}

  Result<std::unique_ptr<store::File>> open_file(const std::string& path,
                                                 store::OpenMode mode) override;
  Status sync_dir(const std::string&) override { return Status::Ok(); }
  bool exists(const std::string& path) override { return live_.exists(path); }

  // Takes the photograph at the ops-th write or sync from now (ops >= 1).
  void arm(int ops) {
    std::lock_guard lock(mu_);
    countdown_ = ops;
  }
  bool cut() const {
    std::lock_guard lock(mu_);
    return image_.has_value();
  }
  PowerCutImage image() const {
    std::lock_guard lock(mu_);
    return *image_;
  }

 private:
  class CutFile;
  struct Write {
    uint64_t off;
    std::vector<uint8_t> bytes;
  };
  struct Disk {
    std::vector<uint8_t> durable;
    std::vector<Write> unsynced;
  };

  // Called under mu_ at every write and sync.
  void tick();
  void photograph();
  static void apply(std::vector<uint8_t>& bytes, uint64_t off, const uint8_t* data, size_t n);

  store::MemEnv live_;  // what the store reads: every write applied
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Disk>> disks_;
  int countdown_ = 0;
  std::optional<PowerCutImage> image_;
  std::mt19937_64 rng_;
};

class PowerCutEnv::CutFile final : public store::File {
 public:
  CutFile(PowerCutEnv* env, std::unique_ptr<store::File> live, std::shared_ptr<Disk> disk)
      : env_(env), live_(std::move(live)), disk_(std::move(disk)) {}

  Result<size_t> read_at(uint64_t off, void* buf, size_t n) const override {
    return live_->read_at(off, buf, n);
  }
  Status write_at(uint64_t off, const void* buf, size_t n) override {
    std::lock_guard lock(env_->mu_);
    FROST_TRY(live_->write_at(off, buf, n));
    auto* p = static_cast<const uint8_t*>(buf);
    disk_->unsynced.push_back({off, std::vector<uint8_t>(p, p + n)});
    env_->tick();  // after: the cut can catch this write in flight
    return Status::Ok();
  }
  Status sync() override {
    std::lock_guard lock(env_->mu_);
    env_->tick();  // before: the cut can come just ahead of the sync
    for (const Write& w : disk_->unsynced) apply(disk_->durable, w.off, w.bytes.data(), w.bytes.size());
    disk_->unsynced.clear();
    return Status::Ok();
  }
  Result<uint64_t> size() const override { return live_->size(); }
  Status reserve(uint64_t off, uint64_t len) override { return live_->reserve(off, len); }
  Status lock_exclusive() override { return Status::Ok(); }

 private:
  PowerCutEnv* env_;
  std::unique_ptr<store::File> live_;
  std::shared_ptr<Disk> disk_;
};

inline Result<std::unique_ptr<store::File>> PowerCutEnv::open_file(const std::string& path,
                                                                   store::OpenMode mode) {
  FROST_ASSIGN(auto live, live_.open_file(path, mode));
  std::lock_guard lock(mu_);
  auto& disk = disks_[path];
  if (!disk) disk = std::make_shared<Disk>();
  return std::unique_ptr<store::File>(new CutFile(this, std::move(live), disk));
}

inline void PowerCutEnv::tick() {
  if (countdown_ > 0 && --countdown_ == 0) photograph();
}

inline void PowerCutEnv::photograph() {
  PowerCutImage image;
  for (const auto& [path, disk] : disks_) {
    std::vector<uint8_t> bytes = disk->durable;
    for (const Write& w : disk->unsynced) {
      if (w.bytes.empty()) continue;
      ++image.unsynced;
      switch (rng_() % 3) {
        case 0:  // lost
          break;
        case 1:
          apply(bytes, w.off, w.bytes.data(), w.bytes.size());
          ++image.kept;
          break;
        default: {
          size_t sectors = (w.bytes.size() + 511) / 512;
          size_t keep = rng_() % sectors * 512;  // a strict prefix
          apply(bytes, w.off, w.bytes.data(), keep);
          ++image.torn;
        }
      }
    }
    image.files[path] = std::move(bytes);
  }
  image_ = std::move(image);
}

inline void PowerCutEnv::apply(std::vector<uint8_t>& bytes, uint64_t off, const uint8_t* data, size_t n) {
  if (n == 0) return;
  if (bytes.size() < off + n) bytes.resize(off + n);
  std::copy(data, data + n, bytes.begin() + static_cast<ptrdiff_t>(off));
}

}  // namespace frost::demo
