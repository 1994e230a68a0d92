#include "fault_env.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace frost::store::testing {

struct FaultEnv::FileData {
  uint32_t index;  // into paths_
  std::mutex mu;
  std::vector<uint8_t> bytes;  // every write applied: what reads see
};

namespace {

// "" and "." are the same directory; a trailing slash does not matter.
std::string normal_dir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir.empty() ? "." : dir;
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return normal_dir(path.substr(0, slash));
}

}  // namespace

void apply_write(std::vector<uint8_t>& bytes, uint64_t offset, const uint8_t* data, size_t n) {
  if (n == 0) return;
  if (bytes.size() < offset + n) bytes.resize(offset + n);
  std::memcpy(bytes.data() + offset, data, n);
}

class FaultFile final : public File {
 public:
  FaultFile(FaultEnv* env, std::shared_ptr<FaultEnv::FileData> d) : env_(env), d_(std::move(d)) {}

  Result<size_t> read_at(uint64_t off, void* buf, size_t n) const override {
    std::lock_guard lock(d_->mu);
    if (off >= d_->bytes.size()) return size_t{0};
    size_t k = std::min<uint64_t>(n, d_->bytes.size() - off);
    std::memcpy(buf, d_->bytes.data() + off, k);
    return k;
  }

  Status write_at(uint64_t off, const void* buf, size_t n) override {
    auto* p = static_cast<const uint8_t*>(buf);
    // Recorded under the file's lock so the log order is the order reads see.
    std::lock_guard lock(d_->mu);
    apply_write(d_->bytes, off, p, n);
    env_->record({FaultOp::Kind::kWrite, d_->index, off, std::vector<uint8_t>(p, p + n), {}});
    return Status::Ok();
  }

  Status sync() override {
    std::lock_guard lock(d_->mu);
    env_->record({FaultOp::Kind::kSync, d_->index, 0, {}, {}});
    return Status::Ok();
  }

  Result<uint64_t> size() const override {
    std::lock_guard lock(d_->mu);
    return uint64_t(d_->bytes.size());
  }

  // Like MemEnv: reserving changes neither contents nor size.
  Status reserve(uint64_t, uint64_t) override { return Status::Ok(); }
  Status lock_exclusive() override { return Status::Ok(); }

 private:
  FaultEnv* env_;
  std::shared_ptr<FaultEnv::FileData> d_;
};

FaultEnv::FaultEnv(std::map<std::string, std::vector<uint8_t>> base) : base_(std::move(base)) {
  for (const auto& [path, bytes] : base_) {
    auto d = std::make_shared<FileData>();
    d->index = static_cast<uint32_t>(paths_.size());
    d->bytes = bytes;
    paths_.push_back(path);
    files_.emplace(path, std::move(d));
  }
}

FaultEnv::~FaultEnv() = default;

Result<std::unique_ptr<File>> FaultEnv::open_file(const std::string& path, OpenMode mode) {
  std::unique_lock lock(mu_);
  auto it = files_.find(path);
  if (mode == OpenMode::kCreateExclusive) {
    if (it != files_.end()) return Error(ErrorKind::kExists, path + " already exists", EEXIST);
    auto d = std::make_shared<FileData>();
    d->index = static_cast<uint32_t>(paths_.size());
    paths_.push_back(path);
    it = files_.emplace(path, d).first;
    ops_.push_back({FaultOp::Kind::kCreate, d->index, 0, {}, {}});
  } else if (it == files_.end()) {
    return Error(ErrorKind::kNotFound, "no store at " + path, ENOENT);
  }
  return std::unique_ptr<File>(new FaultFile(this, it->second));
}

Status FaultEnv::sync_dir(const std::string& dir) {
  record({FaultOp::Kind::kSyncDir, 0, 0, {}, normal_dir(dir)});
  return Status::Ok();
}

bool FaultEnv::exists(const std::string& path) {
  std::lock_guard lock(mu_);
  return files_.count(path) != 0;
}

uint32_t FaultEnv::record(FaultOp op) {
  std::lock_guard lock(mu_);
  if (op.kind == FaultOp::Kind::kSync && sync_lies_) return uint32_t(ops_.size());
  ops_.push_back(std::move(op));
  return uint32_t(ops_.size() - 1);
}

size_t FaultEnv::op_count() const {
  std::lock_guard lock(mu_);
  return ops_.size();
}

std::vector<FaultOp> FaultEnv::ops() const {
  std::lock_guard lock(mu_);
  return ops_;
}

std::vector<std::string> FaultEnv::paths() const {
  std::lock_guard lock(mu_);
  return paths_;
}

std::vector<uint8_t> FaultEnv::contents(const std::string& path) const {
  std::shared_ptr<FileData> d;
  {
    std::lock_guard lock(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) return {};
    d = it->second;
  }
  std::lock_guard lock(d->mu);
  return d->bytes;
}

void FaultEnv::set_sync_lies(bool on) {
  std::lock_guard lock(mu_);
  sync_lies_ = on;
}

const char* to_string(CrashMode mode) {
  switch (mode) {
    case CrashMode::kAllApplied: return "all-applied";
    case CrashMode::kAllDropped: return "all-dropped";
    case CrashMode::kRandomDropped: return "random-dropped";
    case CrashMode::kLastTorn: return "last-torn";
    case CrashMode::kRandom: return "random";
  }
  return "?";
}

void CrashImage::install(MemEnv& env) && {
  for (auto& [path, bytes] : files) env.set_contents(path, std::move(bytes));
  files.clear();
}

CrashImager::CrashImager(const FaultEnv& env) : ops_(env.ops()), paths_(env.paths()) {
  files_.resize(paths_.size());
  for (size_t f = 0; f < paths_.size(); ++f) {
    auto it = env.base().find(paths_[f]);
    if (it == env.base().end()) continue;
    files_[f].exists_durably = true;
    files_[f].durable = it->second;
  }
}

void CrashImager::advance(size_t i) {
  if (i < scanned_) std::abort();  // callers walk forward; see the header
  i = std::min(i, ops_.size());
  for (; scanned_ < i; ++scanned_) {
    const FaultOp& op = ops_[scanned_];
    switch (op.kind) {
      case FaultOp::Kind::kCreate:
        files_[op.file].created = true;
        break;
      case FaultOp::Kind::kWrite:
        files_[op.file].pending.push_back(scanned_);
        break;
      case FaultOp::Kind::kSync: {
        FileState& f = files_[op.file];
        for (size_t w : f.pending) apply_write(f.durable, ops_[w].offset, ops_[w].bytes.data(), ops_[w].bytes.size());
        f.pending.clear();
        break;
      }
      case FaultOp::Kind::kSyncDir:
        for (size_t f = 0; f < files_.size(); ++f)
          if (files_[f].created && parent_dir(paths_[f]) == op.dir) files_[f].exists_durably = true;
        break;
    }
  }
}

size_t CrashImager::unsynced_at(size_t i) {
  advance(i);
  size_t n = 0;
  for (const FileState& f : files_) n += f.pending.size();
  return n;
}

namespace {

// A torn write keeps a prefix: sometimes whole 512-byte sectors, sometimes any
// byte count, never all of it.
size_t torn_length(size_t n, std::mt19937_64& rng) {
  if (n <= 1) return 0;
  if (n > 512 && rng() % 2 == 0) return 512 * std::uniform_int_distribution<size_t>(1, (n - 1) / 512)(rng);
  return std::uniform_int_distribution<size_t>(1, n - 1)(rng);
}

}  // namespace

void CrashImager::apply_window(const FileState& f, CrashMode mode, std::mt19937_64& rng,
                               CrashImage& image, std::vector<uint8_t>& bytes) const {
  for (size_t k = 0; k < f.pending.size(); ++k) {
    const FaultOp& op = ops_[f.pending[k]];
    size_t n = op.bytes.size();
    size_t keep = n;
    switch (mode) {
      case CrashMode::kAllApplied: break;
      case CrashMode::kAllDropped: keep = 0; break;
      case CrashMode::kRandomDropped: keep = rng() % 2 ? n : 0; break;
      case CrashMode::kLastTorn: keep = k + 1 == f.pending.size() ? torn_length(n, rng) : n; break;
      case CrashMode::kRandom: {
        uint64_t r = rng() % 3;
        keep = r == 0 ? n : r == 1 ? 0 : torn_length(n, rng);
        break;
      }
    }
    ++image.unsynced_writes;
    if (keep == 0) ++image.dropped;
    else if (keep < n) ++image.torn;
    apply_write(bytes, op.offset, op.bytes.data(), keep);
  }
}

CrashImage CrashImager::image_at(size_t i, CrashMode mode, std::mt19937_64& rng) {
  advance(i);
  CrashImage image;
  for (size_t fi = 0; fi < files_.size(); ++fi) {
    const FileState& f = files_[fi];
    if (!f.exists_durably && !f.created) continue;  // created after the crash
    if (!f.exists_durably) {
      image.undecided_files = true;
      bool keep = mode == CrashMode::kAllApplied || mode == CrashMode::kLastTorn ||
                  (mode != CrashMode::kAllDropped && rng() % 4 != 0);
      if (!keep) continue;
    }
    std::vector<uint8_t> bytes = f.durable;
    apply_window(f, mode, rng, image, bytes);
    image.files.emplace(paths_[fi], std::move(bytes));
  }
  return image;
}

std::vector<CrashPoint> plan_crash_points(const FaultEnv& env, size_t random, std::mt19937_64& rng) {
  std::vector<FaultOp> ops = env.ops();
  CrashImager counter(env);
  std::vector<size_t> unsynced(ops.size() + 1);
  for (size_t i = 0; i <= ops.size(); ++i) unsynced[i] = counter.unsynced_at(i);
  std::vector<CrashPoint> plan;
  std::vector<size_t> losable;
  for (size_t i = 0; i <= ops.size(); ++i) {
    plan.push_back({i, CrashMode::kAllApplied});
    if (unsynced[i] == 0) continue;
    losable.push_back(i);
    plan.push_back({i, CrashMode::kLastTorn});
    plan.push_back({i, CrashMode::kRandomDropped});
    // The all-dropped image is the same across a sync window: check its ends.
    bool window_start = unsynced[i - 1] == 0 || unsynced[i - 1] > unsynced[i];
    bool window_end = i == ops.size() || ops[i].kind == FaultOp::Kind::kSync;
    if (window_start || window_end) plan.push_back({i, CrashMode::kAllDropped});
  }
  for (size_t k = 0; k < random && !losable.empty(); ++k)
    plan.push_back({losable[rng() % losable.size()], CrashMode::kRandom});
  std::stable_sort(plan.begin(), plan.end(), [](const CrashPoint& a, const CrashPoint& b) { return a.index < b.index; });
  return plan;
}

}  // namespace frost::store::testing
