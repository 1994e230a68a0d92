// One userfaultfd, as the page server uses it: the handshake, registration
// of missing-page mode, the ioctls that place pages, and reading messages.
//
// The page-placing calls report the kernel's answer as an errno to decide on
// instead of an Error, because each has a meaning for the server:
//   EEXIST  the page is already there (a fault or prefetch placed it)
//   EAGAIN  the address space is changing (an event waits to be read):
//           read the events, then try again
//   ENOENT  the address is no longer registered (unmapped meanwhile)
//   ESRCH   the address space is gone (the process exited or exec'd)
// A call that placed some bytes before stopping reports them in `done`.
#pragma once

#include <linux/userfaultfd.h>

#include <cstdint>

#include "common/result.h"
#include "common/unique_fd.h"

namespace frost::lazy {

struct Placed {
  uint64_t done = 0;  // bytes placed
  int err = 0;        // 0: all of them
};

class Userfault {
 public:
  Userfault() = default;
  explicit Userfault(UniqueFd fd) : fd_(std::move(fd)) {}

  // UFFDIO_API with `features`; kUnsupported names what the kernel lacks.
  Status handshake(uint64_t features);
  // Registers [start, end) for missing-page faults.
  Status register_missing(uint64_t start, uint64_t end);

  // UFFDIO_COPY of len bytes from local src to dst in the address space;
  // wakes the threads waiting in the range unless dont_wake.
  Placed copy(uint64_t dst, const void* src, uint64_t len, bool dont_wake = false);
  // UFFDIO_ZEROPAGE.
  Placed zero(uint64_t dst, uint64_t len);
  // UFFDIO_WAKE: threads waiting on [start, start + len) retry their fault.
  void wake(uint64_t start, uint64_t len);

  // Reads one message; false when none is waiting (the fd is non-blocking).
  Result<bool> read(uffd_msg* msg);

  int fd() const { return fd_.get(); }
  explicit operator bool() const { return bool(fd_); }
  void close() { fd_.reset(); }

 private:
  UniqueFd fd_;
};

}  // namespace frost::lazy
