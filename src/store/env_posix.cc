// Env over the real file system. Block devices work too: their size comes from
// BLKGETSIZE64 and reserve() is a no-op on them.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/env.h"
#include "common/unique_fd.h"

namespace frost::store {
namespace {

class PosixFile final : public File {
 public:
  PosixFile(UniqueFd fd, std::string path, bool is_block)
      : fd_(std::move(fd)), path_(std::move(path)), is_block_(is_block) {}

  Result<size_t> read_at(uint64_t off, void* buf, size_t n) const override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_.get(), static_cast<char*>(buf) + done, n - done, off + done);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Error::io("read " + path_);
      if (r == 0) break;
      done += r;
    }
    return done;
  }

  Status write_at(uint64_t off, const void* buf, size_t n) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pwrite(fd_.get(), static_cast<const char*>(buf) + done, n - done, off + done);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Error::io("write " + path_);
      done += r;
    }
    return Status::Ok();
  }

  Status sync() override {
    if (::fdatasync(fd_.get()) != 0) return Error::io("fdatasync " + path_);
    return Status::Ok();
  }

  Result<uint64_t> size() const override {
    if (is_block_) {
      uint64_t bytes = 0;
      if (::ioctl(fd_.get(), BLKGETSIZE64, &bytes) != 0) return Error::io("BLKGETSIZE64 " + path_);
      return bytes;
    }
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return Error::io("stat " + path_);
    return static_cast<uint64_t>(st.st_size);
  }

  Status reserve(uint64_t off, uint64_t len) override {
    if (is_block_) return Status::Ok();
    int r = ::fallocate(fd_.get(), 0, static_cast<off_t>(off), static_cast<off_t>(len));
    if (r == 0) return Status::Ok();
    // File systems without fallocate still work; the first write allocates.
    if (errno == EOPNOTSUPP || errno == ENOSYS) return Status::Ok();
    return Error::io("reserve space in " + path_);
  }

  void start_writeback(uint64_t off, uint64_t len) override {
    ::sync_file_range(fd_.get(), static_cast<off_t>(off), static_cast<off_t>(len), SYNC_FILE_RANGE_WRITE);
  }

  Status lock_exclusive() override {
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) == 0) return Status::Ok();
    if (errno == EWOULDBLOCK) return Error(ErrorKind::kBusy, path_ + " is in use by another frost process");
    return Error::io("lock " + path_);
  }

 private:
  UniqueFd fd_;
  std::string path_;
  bool is_block_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kReadOnly: flags |= O_RDONLY; break;
      case OpenMode::kReadWrite: flags |= O_RDWR; break;
      case OpenMode::kCreateExclusive: flags |= O_RDWR | O_CREAT | O_EXCL; break;
    }
    UniqueFd fd(::open(path.c_str(), flags, 0600));
    if (!fd) {
      if (errno == ENOENT) return Error(ErrorKind::kNotFound, "no store at " + path, ENOENT);
      if (errno == EEXIST) return Error(ErrorKind::kExists, path + " already exists", EEXIST);
      return Error::io("open " + path);
    }
    // open(2) applies the umask; a store must be exactly owner-only, no more and no less.
    if (mode == OpenMode::kCreateExclusive && ::fchmod(fd.get(), 0600) != 0) return Error::io("chmod " + path);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return Error::io("stat " + path);
    bool is_block = S_ISBLK(st.st_mode);
    if (!is_block && !S_ISREG(st.st_mode)) return Error::invalid(path + " is neither a file nor a block device");
    return std::unique_ptr<File>(new PosixFile(std::move(fd), path, is_block));
  }

  Status sync_dir(const std::string& dir) override {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return Error::io("open directory " + dir);
    if (::fsync(fd.get()) != 0) return Error::io("fsync directory " + dir);
    return Status::Ok();
  }

  bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
};

}  // namespace

Env* Env::posix() {
  static PosixEnv env;
  return &env;
}

}  // namespace frost::store
