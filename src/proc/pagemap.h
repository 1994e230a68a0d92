// Which pages of a process exist, and which were written since last asked.
//
// The dumper copies only pages that are present (in RAM or swap); a page that
// was never touched reads as zero and needs no block. The kernel answers with
// ranges through ioctl(PAGEMAP_SCAN) on /proc/PID/pagemap (Linux 6.7); older
// kernels fall back to reading one 64-bit pagemap entry per page.
//
// Shared memory (shmem, memfd) shows only the pages this process has mapped
// in its page tables; pages of the object it never touched are not listed,
// so such objects are better read through the object itself.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace frost::proc {

// Categories of a range (the kernel's PAGE_IS_* bits, see kernel_compat.h).
namespace page_is {
inline constexpr uint64_t kWritten = 1 << 1;
inline constexpr uint64_t kFile = 1 << 2;     // not an anonymous page: file or shmem page cache
inline constexpr uint64_t kPresent = 1 << 3;  // in RAM
inline constexpr uint64_t kSwapped = 1 << 4;
inline constexpr uint64_t kPfnZero = 1 << 5;  // the shared zero page: reads as zeros
}  // namespace page_is

struct PageRange {
  uint64_t start = 0, end = 0;  // [start, end), page aligned
  uint64_t categories = 0;      // page_is::* bits shared by every page of the range
  uint64_t pages() const;
  bool operator==(const PageRange&) const = default;
};

// /proc/PID/pagemap, opened once and scanned many times.
class Pagemap {
 public:
  // Opens /proc/PID/pagemap (the caller must be allowed to ptrace PID).
  static Result<Pagemap> open(pid_t pid);
  // Adopts an already open pagemap fd; pid only names the process in errors.
  static Pagemap adopt(UniqueFd fd, pid_t pid);

  // Present pages (in RAM or swapped) of [start, end), as maximal ranges of
  // equal categories (kPresent/kSwapped/kFile/kPfnZero). Page-aligned bounds.
  // The fallback reports no kPfnZero. [vsyscall] lies above the user address
  // space: PAGEMAP_SCAN fails there with EFAULT (the fallback finds nothing);
  // callers skip it, it holds nothing to save.
  Result<std::vector<PageRange>> present_pages(uint64_t start, uint64_t end);

  // Pages of [start, end) written since the previous call, write-protecting
  // them again in the same step (PM_SCAN_WP_MATCHING), so each write is
  // reported once. The range must be registered with a userfaultfd in async
  // write-protect mode (UFFD_FEATURE_WP_ASYNC) in the target; otherwise the
  // call fails (kInvalidArgument, EPERM from PM_SCAN_CHECK_WPASYNC) before
  // changing anything. The first call after registering reports every page
  // not yet protected, never-touched ones included (the kernel reads an empty
  // pte as written), and arms them all. kUnsupported without PAGEMAP_SCAN.
  Result<std::vector<PageRange>> written_pages(uint64_t start, uint64_t end);

  // False once PAGEMAP_SCAN was found missing (or disabled for a test).
  bool has_scan() const { return has_scan_; }
  // Forces the per-page fallback, for tests.
  void disable_scan() { has_scan_ = false; }

 private:
  Pagemap(UniqueFd fd, pid_t pid) : fd_(std::move(fd)), pid_(pid) {}
  // One PAGEMAP_SCAN walk over [start, end), resumed until the range is done.
  Result<std::vector<PageRange>> scan(uint64_t start, uint64_t end, uint64_t flags,
                                      uint64_t category_mask, uint64_t anyof_mask,
                                      uint64_t return_mask);
  Result<std::vector<PageRange>> read_entries(uint64_t start, uint64_t end);
  Status check_range(uint64_t start, uint64_t end) const;

  UniqueFd fd_;
  pid_t pid_;
  bool has_scan_ = true;
};

// Convenience: opens /proc/PID/pagemap for one question.
Result<std::vector<PageRange>> present_pages(pid_t pid, uint64_t start, uint64_t end);

// Bits of a /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
namespace pagemap_entry {
inline constexpr uint64_t kPresent = 1ull << 63;
inline constexpr uint64_t kSwapped = 1ull << 62;
inline constexpr uint64_t kFileOrShared = 1ull << 61;
inline constexpr uint64_t kUffdWp = 1ull << 57;
inline constexpr uint64_t kExclusive = 1ull << 56;
inline constexpr uint64_t kSoftDirty = 1ull << 55;
}  // namespace pagemap_entry

// Categories of one pagemap entry, in page_is::* terms (0 when absent).
uint64_t entry_categories(uint64_t entry);

}  // namespace frost::proc
