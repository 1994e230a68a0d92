// Reading and writing another process's memory.
//
// process_vm_readv/process_vm_writev move the bytes (large batches, no
// ptrace-stop needed); the pages they cannot reach (PROT_NONE areas, or
// read-only ones when writing) go through /proc/PID/mem, whose accesses the
// kernel makes with FOLL_FORCE, the way a debugger pokes a breakpoint into
// text. Writing through the fallback into a read-only private mapping breaks
// copy-on-write: the page becomes an anonymous copy.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/result.h"
#include "common/unique_fd.h"

namespace frost::proc {

// One piece of a batch: `size` bytes at `remote` in the target, and the local
// buffer they come from or go to.
struct MemoryRange {
  uint64_t remote = 0;
  void* local = nullptr;
  size_t size = 0;
};

class ProcessMemory {
 public:
  explicit ProcessMemory(pid_t pid) : pid_(pid) {}
  ProcessMemory(ProcessMemory&&) = default;
  ProcessMemory& operator=(ProcessMemory&&) = default;

  pid_t pid() const { return pid_; }

  // Reads every byte of every range, or fails naming the first address that
  // could not be read (kNotFound if the process is gone).
  Status read(std::span<const MemoryRange> ranges);
  // Writes every byte of every range (the local buffers are only read).
  Status write(std::span<const MemoryRange> ranges);

  Status read(uint64_t remote, void* local, size_t size) {
    MemoryRange r{remote, local, size};
    return read(std::span(&r, 1));
  }
  Status write(uint64_t remote, const void* local, size_t size) {
    MemoryRange r{remote, const_cast<void*>(local), size};
    return write(std::span(&r, 1));
  }

  // Largest piece handed to process_vm_* in one iovec.
  static constexpr size_t kChunk = size_t{1} << 20;

 private:
  enum class Direction { kRead, kWrite };
  Status transfer(std::span<const MemoryRange> ranges, Direction dir);
  Result<size_t> vm_transfer(std::span<const MemoryRange> ranges, size_t index, size_t offset,
                             Direction dir);
  Result<size_t> mem_transfer(uint64_t remote, void* local, size_t size, Direction dir);
  Status open_mem();

  pid_t pid_;
  UniqueFd mem_fd_;  // /proc/PID/mem, opened on first need
  bool mem_fd_writable_ = false;
  bool vm_unusable_ = false;  // process_vm_* refused outright (e.g. ENOSYS)
};

}  // namespace frost::proc
