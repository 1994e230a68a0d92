#include "proc/pagemap.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "common/kernel_compat.h"
#include "proc/proc_status.h"

namespace frost::proc {
namespace {

static_assert(page_is::kWritten == PAGE_IS_WRITTEN && page_is::kFile == PAGE_IS_FILE &&
              page_is::kPresent == PAGE_IS_PRESENT && page_is::kSwapped == PAGE_IS_SWAPPED &&
              page_is::kPfnZero == PAGE_IS_PFNZERO);

// Regions per PAGEMAP_SCAN call, and entries per pagemap read (4 MiB of
// address space per 8 KiB read).
constexpr size_t kRegionBatch = 512;
constexpr size_t kEntryBatch = 1024;

uint64_t page_size() {
  static const uint64_t size = uint64_t(::sysconf(_SC_PAGESIZE));
  return size;
}

// Appends r to out, merging it into the last range when they touch and agree.
void append(std::vector<PageRange>* out, const PageRange& r) {
  if (!out->empty() && out->back().end == r.start && out->back().categories == r.categories) {
    out->back().end = r.end;
    return;
  }
  out->push_back(r);
}

}  // namespace

uint64_t PageRange::pages() const { return (end - start) / page_size(); }

uint64_t entry_categories(uint64_t e) {
  uint64_t c = 0;
  if (e & pagemap_entry::kPresent) c |= page_is::kPresent;
  if (e & pagemap_entry::kSwapped) c |= page_is::kSwapped;
  if (c != 0 && (e & pagemap_entry::kFileOrShared)) c |= page_is::kFile;
  return c;
}

Result<Pagemap> Pagemap::open(pid_t pid) {
  FROST_ASSIGN(UniqueFd fd, open_proc_file(pid, "pagemap"));
  return Pagemap(std::move(fd), pid);
}

Pagemap Pagemap::adopt(UniqueFd fd, pid_t pid) { return Pagemap(std::move(fd), pid); }

Status Pagemap::check_range(uint64_t start, uint64_t end) const {
  if (start > end || start % page_size() != 0 || end % page_size() != 0)
    return Error::invalid(
        fmt::format("pagemap of process {}: range {:#x}-{:#x} is not page aligned", pid_, start, end));
  return Status::Ok();
}

Result<std::vector<PageRange>> Pagemap::scan(uint64_t start, uint64_t end, uint64_t flags,
                                             uint64_t category_mask, uint64_t anyof_mask,
                                             uint64_t return_mask) {
  std::vector<page_region> vec(kRegionBatch);
  pm_scan_arg arg{};
  arg.size = sizeof arg;
  arg.flags = flags;
  arg.vec = reinterpret_cast<uintptr_t>(vec.data());
  arg.vec_len = vec.size();
  arg.category_mask = category_mask;
  arg.category_anyof_mask = anyof_mask;
  arg.return_mask = return_mask;
  std::vector<PageRange> out;
  // The kernel stops when vec is full and says where in walk_end.
  for (uint64_t at = start; at < end;) {
    arg.start = at;
    arg.end = end;
    long n = ::ioctl(fd_.get(), PAGEMAP_SCAN, &arg);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ESRCH) return proc_error(pid_, "pagemap", errno);
    if (n < 0) return Error::io(fmt::format("PAGEMAP_SCAN of process {} at {:#x}", pid_, at), errno);
    for (long i = 0; i < n; i++) append(&out, {vec[i].start, vec[i].end, vec[i].categories});
    if (arg.walk_end <= at)  // no progress: never loop forever on a kernel surprise
      return Error::io(fmt::format("PAGEMAP_SCAN of process {} stuck at {:#x}", pid_, at), EIO);
    at = arg.walk_end;
  }
  return out;
}

Result<std::vector<PageRange>> Pagemap::read_entries(uint64_t start, uint64_t end) {
  const uint64_t ps = page_size();
  std::vector<uint64_t> buf(kEntryBatch);
  std::vector<PageRange> out;
  for (uint64_t va = start; va < end;) {
    size_t want = size_t(std::min<uint64_t>(kEntryBatch, (end - va) / ps));
    ssize_t got = ::pread(fd_.get(), buf.data(), want * 8, off_t(va / ps * 8));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return proc_error(pid_, "pagemap", errno);
    size_t entries = size_t(got) / 8;
    if (entries == 0) break;  // past the end of the address space: nothing more
    for (size_t i = 0; i < entries; i++) {
      uint64_t c = entry_categories(buf[i]);
      if (c != 0) append(&out, {va + i * ps, va + (i + 1) * ps, c});
    }
    va += entries * ps;
  }
  return out;
}

Result<std::vector<PageRange>> Pagemap::present_pages(uint64_t start, uint64_t end) {
  FROST_TRY(check_range(start, end));
  if (has_scan_) {
    constexpr uint64_t kAny = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
    auto r = scan(start, end, 0, 0, kAny, kAny | PAGE_IS_FILE | PAGE_IS_PFNZERO);
    if (r.ok() || r.error().err() != ENOTTY) return r;
    has_scan_ = false;  // kernel older than 6.7: pagemap has no ioctl
  }
  return read_entries(start, end);
}

Result<std::vector<PageRange>> Pagemap::written_pages(uint64_t start, uint64_t end) {
  FROST_TRY(check_range(start, end));
  if (!has_scan_) return Error(ErrorKind::kUnsupported, "written pages need PAGEMAP_SCAN (Linux 6.7)");
  auto r = scan(start, end, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN, 0,
                PAGE_IS_WRITTEN);
  if (r.ok()) return r;
  if (r.error().err() == ENOTTY) {
    has_scan_ = false;
    return Error(ErrorKind::kUnsupported, "written pages need PAGEMAP_SCAN (Linux 6.7)");
  }
  if (r.error().err() == EPERM)
    return Error(ErrorKind::kInvalidArgument,
                 fmt::format("process {}: {:#x}-{:#x} is not registered for async write-protect",
                             pid_, start, end),
                 EPERM);
  return r;
}

Result<std::vector<PageRange>> present_pages(pid_t pid, uint64_t start, uint64_t end) {
  FROST_ASSIGN(Pagemap pm, Pagemap::open(pid));
  return pm.present_pages(start, end);
}

}  // namespace frost::proc
