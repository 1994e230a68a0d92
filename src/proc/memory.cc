#include "proc/memory.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/uio.h>

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace frost::proc {
namespace {

constexpr size_t kMaxIov = IOV_MAX;

const char* verb(bool reading) { return reading ? "reading" : "writing"; }

}  // namespace

Status ProcessMemory::read(std::span<const MemoryRange> ranges) {
  return transfer(ranges, Direction::kRead);
}

Status ProcessMemory::write(std::span<const MemoryRange> ranges) {
  return transfer(ranges, Direction::kWrite);
}

// Walks a cursor (range index, offset in it) over the batch: process_vm_*
// moves as much as it can from the cursor; where it stops, the page it
// stumbled on goes through /proc/PID/mem, then the fast path resumes.
Status ProcessMemory::transfer(std::span<const MemoryRange> ranges, Direction dir) {
  size_t index = 0;
  size_t offset = 0;
  auto skip_finished = [&] {
    while (index < ranges.size() && offset == ranges[index].size) {
      ++index;
      offset = 0;
    }
  };
  skip_finished();
  while (index < ranges.size()) {
    size_t done = 0;
    if (!vm_unusable_) {
      FROST_ASSIGN(done, vm_transfer(ranges, index, offset, dir));
    }
    if (done == 0) {
      const MemoryRange& r = ranges[index];
      size_t len = std::min(r.size - offset, kChunk);
      FROST_ASSIGN(done, mem_transfer(r.remote + offset, static_cast<char*>(r.local) + offset,
                                      len, dir));
    }
    while (done > 0) {
      size_t step = std::min(done, ranges[index].size - offset);
      offset += step;
      done -= step;
      skip_finished();
    }
  }
  return Status::Ok();
}

// One process_vm_readv/writev call over as many pieces as fit from the
// cursor. Returns the bytes moved; 0 means the first byte was unreachable.
Result<size_t> ProcessMemory::vm_transfer(std::span<const MemoryRange> ranges, size_t index,
                                          size_t offset, Direction dir) {
  std::vector<iovec> local;
  std::vector<iovec> remote;
  for (; index < ranges.size() && local.size() < kMaxIov; ++index, offset = 0) {
    const MemoryRange& r = ranges[index];
    for (size_t off = offset; off < r.size && local.size() < kMaxIov; off += kChunk) {
      size_t len = std::min(r.size - off, kChunk);
      local.push_back({static_cast<char*>(r.local) + off, len});
      remote.push_back({reinterpret_cast<void*>(r.remote + off), len});
    }
  }
  ssize_t n = dir == Direction::kRead
                  ? process_vm_readv(pid_, local.data(), local.size(), remote.data(), remote.size(),
                                     0)
                  : process_vm_writev(pid_, local.data(), local.size(), remote.data(),
                                      remote.size(), 0);
  if (n >= 0) return static_cast<size_t>(n);
  switch (errno) {
    case ESRCH:
      return Error::not_found(fmt::format("process {} is gone", pid_));
    case EFAULT:
    case ENOMEM:
      return size_t{0};  // the page at the cursor is for the fallback
    case ENOSYS:
    case EPERM:
      vm_unusable_ = true;
      return size_t{0};
    default:
      return Error::io(fmt::format("process_vm_{}v on process {}",
                                   dir == Direction::kRead ? "read" : "write", pid_));
  }
}

// Read-write when allowed, so one fd serves both directions; read-only is
// enough for a reader.
Status ProcessMemory::open_mem() {
  std::string path = fmt::format("/proc/{}/mem", pid_);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  mem_fd_writable_ = fd >= 0;
  if (fd < 0 && errno == EACCES) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Error::not_found(fmt::format("process {} is gone", pid_));
    return Error::io(fmt::format("opening {}", path));
  }
  mem_fd_.reset(fd);
  return Status::Ok();
}

Result<size_t> ProcessMemory::mem_transfer(uint64_t remote, void* local, size_t size,
                                           Direction dir) {
  bool reading = dir == Direction::kRead;
  if (!mem_fd_) FROST_TRY(open_mem());
  if (!reading && !mem_fd_writable_) {
    return Error::io(fmt::format("/proc/{}/mem is not writable", pid_), EACCES);
  }
  // /proc/PID/mem takes the address as an unsigned offset (FMODE_UNSIGNED_OFFSET).
  off_t off = static_cast<off_t>(remote);
  ssize_t n = reading ? ::pread(mem_fd_.get(), local, size, off)
                      : ::pwrite(mem_fd_.get(), local, size, off);
  if (n > 0) return static_cast<size_t>(n);
  int err = n == 0 ? EIO : errno;
  return Error::io(fmt::format("{} {} bytes at {:#x} in process {}", verb(reading), size, remote,
                               pid_),
                   err);
}

}  // namespace frost::proc
