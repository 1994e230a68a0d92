#include "dump/dirty_tracker.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/kernel_compat.h"
#include "proc/remote_syscall.h"

namespace frost::dump {

Result<std::unique_ptr<DirtyTracker>> DirtyTracker::create(pid_t pid, pid_t tid) {
  FROST_ASSIGN(proc::RemoteSyscall remote, proc::RemoteSyscall::attach(pid, tid));
  // User-mode-only: write protection needs no kernel-fault handling, and the
  // process may lack the privilege for more.
  Result<long> made = remote.call(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  if (!made.ok()) return made.error().context("creating a userfaultfd for dirty tracking");
  int remote_fd = int(*made);
  UniqueFd pidfd(int(::syscall(SYS_pidfd_open, pid, 0)));
  UniqueFd uffd(pidfd ? int(::syscall(SYS_pidfd_getfd, pidfd.get(), remote_fd, 0)) : -1);
  int err = errno;
  // The process must not keep an fd it never opened, whatever happened above.
  Result<long> closed = remote.call(SYS_close, remote_fd);
  if (!uffd) return Error::io(fmt::format("taking the userfaultfd of process {}", pid), err);
  if (!closed.ok()) return closed.error();
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0) {
    return Error(ErrorKind::kUnsupported, "userfaultfd without async write-protect (Linux 6.7)", errno);
  }
  FROST_ASSIGN(proc::Pagemap pagemap, proc::Pagemap::open(pid));
  if (!pagemap.has_scan()) return Error(ErrorKind::kUnsupported, "dirty tracking needs PAGEMAP_SCAN (Linux 6.7)");
  return std::unique_ptr<DirtyTracker>(new DirtyTracker(pid, std::move(uffd), std::move(pagemap)));
}

Result<bool> DirtyTracker::track(const proc::MemoryArea& area) {
  uffdio_register reg{};
  reg.range = {area.start, area.end - area.start};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0) {
    if (errno == EINVAL || errno == EPERM || errno == EBUSY) return false;  // a kind the kernel will not track
    return Error::io(fmt::format("registering {:#x}-{:#x} for write tracking", area.start, area.end));
  }
  // The first scan reports every page (an unprotected pte reads as written)
  // and protects them all: from here on only new writes show.
  FROST_TRY(pagemap_.written_pages(area.start, area.end));
  return true;
}

bool DirtyTracker::tracks(const proc::MemoryArea& area) const {
  return area.has_smaps && area.flags.has(proc::vmflag::kUffdWp);
}

Result<std::vector<proc::PageRange>> DirtyTracker::written(uint64_t start, uint64_t end) {
  return pagemap_.written_pages(start, end);
}

const std::vector<proc::MemoryArea>* DirtyTracker::reusable_areas() const {
  if (known_areas_.empty() || std::chrono::steady_clock::now() - flags_read_at_ > kMaxFlagAge) return nullptr;
  return &known_areas_;
}

void DirtyTracker::set_known_areas(std::vector<proc::MemoryArea> areas, bool from_smaps) {
  known_areas_ = std::move(areas);
  if (from_smaps) flags_read_at_ = std::chrono::steady_clock::now();
}

}  // namespace frost::dump
