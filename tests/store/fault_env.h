// An Env that records every write and sync the store makes, so a test can
// rebuild the files as a power cut at any moment would have left them (as
// LevelDB's fault_injection_test does, but replayable at every write boundary).
//
//   FaultEnv env;                         // files start from env's base images
//   ... run the store on &env ...
//   CrashImager imager(env);
//   for (size_t i = 0; i <= env.op_count(); ++i)
//     auto image = imager.image_at(i, CrashMode::kRandom, rng);
//
// A crash "at i" means the first i operations of the log happened. What a
// crash keeps: every write followed, before i, by a sync of its file; of the
// writes after that sync, each may have reached the disk whole, not at all,
// or only in part (a prefix: a torn write). A file created but whose directory
// was never synced (sync_dir) before i may be missing altogether.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "store/env.h"
#include "store/mem_env.h"

namespace frost::store::testing {

struct FaultOp {
  enum class Kind : uint8_t { kCreate, kWrite, kSync, kSyncDir };
  Kind kind;
  uint32_t file = 0;           // index into FaultEnv::paths(); not for kSyncDir
  uint64_t offset = 0;         // kWrite
  std::vector<uint8_t> bytes;  // kWrite
  std::string dir;             // kSyncDir
};

class FaultEnv : public Env {
 public:
  // base: files that exist, durably, before the first operation.
  explicit FaultEnv(std::map<std::string, std::vector<uint8_t>> base = {});
  ~FaultEnv() override;

  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override;
  Status sync_dir(const std::string& dir) override;
  bool exists(const std::string& path) override;

  // Operations recorded so far; a crash point is a number in [0, op_count()].
  size_t op_count() const;
  std::vector<FaultOp> ops() const;
  std::vector<std::string> paths() const;
  const std::map<std::string, std::vector<uint8_t>>& base() const { return base_; }
  // Current contents as the store sees them (every write applied).
  std::vector<uint8_t> contents(const std::string& path) const;

  // A lying disk, for testing the harness itself: while on, File::sync()
  // returns OK but is not recorded, so its writes stay losable.
  void set_sync_lies(bool on);

  struct FileData;  // shared by every File open on one path

 private:
  friend class FaultFile;
  uint32_t record(FaultOp op);  // returns the op's index

  std::map<std::string, std::vector<uint8_t>> base_;
  mutable std::mutex mu_;
  std::vector<FaultOp> ops_;
  std::vector<std::string> paths_;
  std::map<std::string, std::shared_ptr<FileData>> files_;
  bool sync_lies_ = false;
};

// What a crash does to the writes that were not yet synced.
enum class CrashMode {
  kAllApplied,     // the disk happened to write everything (the plain prefix)
  kAllDropped,     // only synced writes survive; unsynced created files vanish
  kRandomDropped,  // each unsynced write kept or lost by a coin
  kLastTorn,       // all kept, but the last unsynced write of each file torn
  kRandom,         // each unsynced write kept, lost or torn
};

const char* to_string(CrashMode mode);

struct CrashImage {
  std::map<std::string, std::vector<uint8_t>> files;  // absent: lost with its directory entry
  size_t unsynced_writes = 0;   // writes whose fate was chosen
  size_t dropped = 0;
  size_t torn = 0;
  bool undecided_files = false;  // some file's existence was up to the crash

  // Moves every file into env, as a machine rebooted after the crash would find them.
  void install(MemEnv& env) &&;
};

// Rebuilds crash images from a FaultEnv's log. It keeps the durable state as
// it goes, so calls must come with non-decreasing i; each costs one copy of the
// files plus the unsynced writes.
class CrashImager {
 public:
  explicit CrashImager(const FaultEnv& env);

  CrashImage image_at(size_t i, CrashMode mode, std::mt19937_64& rng);
  // Unsynced writes (all files) as of a crash at i; i non-decreasing as above.
  size_t unsynced_at(size_t i);

 private:
  struct FileState {
    bool exists_durably = false;   // in the base, or created and its directory synced
    bool created = false;          // a kCreate happened before i
    std::vector<uint8_t> durable;  // contents as of the file's last sync
    std::vector<size_t> pending;   // op indexes of writes since that sync
  };
  void advance(size_t i);
  void apply_window(const FileState& f, CrashMode mode, std::mt19937_64& rng,
                    CrashImage& image, std::vector<uint8_t>& bytes) const;

  std::vector<FaultOp> ops_;
  std::vector<std::string> paths_;
  std::vector<FileState> files_;
  size_t scanned_ = 0;
};

struct CrashPoint {
  size_t index;
  CrashMode mode;
};

// Every write boundary, in each mode that can differ from the plain prefix
// there, plus `random` points where unsynced writes get random fates; ordered
// for CrashImager.
std::vector<CrashPoint> plan_crash_points(const FaultEnv& env, size_t random, std::mt19937_64& rng);

// Applies a write to bytes, growing them as a file grows.
void apply_write(std::vector<uint8_t>& bytes, uint64_t offset, const uint8_t* data, size_t n);

}  // namespace frost::store::testing
