#include "restore/address_space.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "common/kernel_compat.h"
#include "proc/proc_maps.h"
#include "proc/thread_state.h"

namespace frost::restore {
namespace {

// The window's code page:
//   0: syscall            every remote call
//   2: mov eax, 34        new threads land here after clone3: pause() forever
//   7: syscall
//   9: jmp 2
constexpr uint8_t kWindowCode[] = {0x0f, 0x05, 0xb8, 34, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7};

constexpr uint64_t kMinAddress = 1ull << 16;         // vm.mmap_min_addr
constexpr uint64_t kMaxAddress = (1ull << 47) - (1ull << 12);

bool special(const image::MemoryAreaImage& a) {
  return a.kind == image::AreaKind::kVdso || a.kind == image::AreaKind::kVvar ||
         a.kind == image::AreaKind::kVvarVclock;
}

image::AreaKind special_kind(proc::AreaKind k) {
  switch (k) {
    case proc::AreaKind::kVdso: return image::AreaKind::kVdso;
    case proc::AreaKind::kVvar: return image::AreaKind::kVvar;
    default: return image::AreaKind::kVvarVclock;
  }
}

bool is_special(proc::AreaKind k) {
  return k == proc::AreaKind::kVdso || k == proc::AreaKind::kVvar || k == proc::AreaKind::kVvarVclock;
}

const char* special_name(image::AreaKind k) {
  return k == image::AreaKind::kVdso ? "[vdso]" : k == image::AreaKind::kVvar ? "[vvar]" : "[vvar_vclock]";
}

}  // namespace

// A free range of `size` bytes in both the image's layout and the stub's
// current one, so nothing mapped later lands on it.
Result<uint64_t> AddressSpace::find_window(uint64_t size) const {
  FROST_ASSIGN(std::vector<proc::MemoryArea> now, proc::read_maps(leader_.pid()));
  std::vector<std::pair<uint64_t, uint64_t>> busy;
  for (const auto& a : image_.areas) busy.emplace_back(a.start, a.end);
  for (const auto& a : now) busy.emplace_back(a.start, a.end);
  std::sort(busy.begin(), busy.end());
  // Guard pages on both sides keep the window from merging with a neighbour.
  uint64_t candidate = kMinAddress + kPage;
  for (const auto& [s, e] : busy) {
    if (candidate + size + kPage <= s) return candidate;
    candidate = std::max(candidate, e + kPage);
  }
  if (candidate + size + kPage <= kMaxAddress) return candidate;
  return Error(ErrorKind::kNoSpace, "no free address range for the restorer");
}

Status AddressSpace::prepare() {
  // Room for the code page, the scratch page, and every special area while it moves.
  FROST_ASSIGN(std::vector<proc::MemoryArea> now, proc::read_maps(leader_.pid()));
  uint64_t specials = 0;
  for (const auto& a : now) {
    if (is_special(a.kind)) specials += a.size();
  }
  window_size_ = 2 * kPage + specials + 4 * kPage;
  FROST_ASSIGN(window_, find_window(window_size_));
  FROST_ASSIGN(uint64_t got, leader_.mmap(window_, window_size_, PROT_READ | PROT_WRITE,
                                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE));
  if (got != window_) return Error::io("mapping the restorer window at the chosen address", EEXIST);
  FROST_TRY(leader_.write(window_, kWindowCode));
  FROST_TRY(leader_.call(SYS_mprotect, long(window_), long(kPage), PROT_READ | PROT_EXEC));
  // Releases the gadget found in the stub's vdso, which moves next. (The
  // stub's program registers no rseq area, so none can vanish under it.)
  leader_.use_gadget(window_);
  FROST_TRY(unmap_stub_areas());
  return move_special_areas();
}

// The stub's program, its stack, anything else exec gave it: the gaps
// between what stays are unmapped a range at a time (munmap skips holes).
Status AddressSpace::unmap_stub_areas() {
  FROST_ASSIGN(std::vector<proc::MemoryArea> now, proc::read_maps(leader_.pid()));
  std::vector<std::pair<uint64_t, uint64_t>> keep = {{window_, window_ + window_size_}};
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const proc::MemoryArea& a : now) {
    if (a.kind == proc::AreaKind::kVsyscall) continue;
    if (is_special(a.kind)) keep.emplace_back(a.start, a.end);
    lo = std::min(lo, a.start);
    hi = std::max(hi, a.end);
  }
  std::sort(keep.begin(), keep.end());
  uint64_t at = lo;
  for (auto [start, end] : keep) {
    if (start > at && at < hi) FROST_TRY(leader_.munmap(at, std::min(start, hi) - at));
    at = std::max(at, end);
  }
  if (at < hi) FROST_TRY(leader_.munmap(at, hi - at));
  return Status::Ok();
}

// Via the window first: a final address may be where another special sits now.
Status AddressSpace::move_special_areas() {
  FROST_ASSIGN(std::vector<proc::MemoryArea> now, proc::read_maps(leader_.pid()));
  struct Move { uint64_t from, temp, to, size; };
  std::vector<Move> moves;
  uint64_t temp = window_ + 2 * kPage;
  for (const proc::MemoryArea& a : now) {
    if (!is_special(a.kind)) continue;
    image::AreaKind kind = special_kind(a.kind);
    auto saved = std::find_if(image_.areas.begin(), image_.areas.end(),
                              [&](const image::MemoryAreaImage& m) { return m.kind == kind; });
    if (saved == image_.areas.end()) {
      FROST_TRY(leader_.munmap(a.start, a.size()));  // the image had none (an older kernel)
      continue;
    }
    if (saved->end - saved->start != a.size()) {
      return Error(ErrorKind::kUnsupported,
                   fmt::format("{} is {} bytes on this kernel and {} in the image: melt on the kernel it was frozen on",
                               special_name(kind), a.size(), saved->end - saved->start));
    }
    moves.push_back({a.start, temp, saved->start, a.size()});
    temp += a.size();
  }
  for (const image::MemoryAreaImage& m : image_.areas) {
    if (!special(m)) continue;
    bool found = std::any_of(now.begin(), now.end(), [&](const proc::MemoryArea& a) {
      return is_special(a.kind) && special_kind(a.kind) == m.kind;
    });
    if (!found) {
      return Error(ErrorKind::kUnsupported, fmt::format("this kernel has no {}, which the image uses", special_name(m.kind)));
    }
  }
  for (const Move& m : moves) {
    FROST_TRY(leader_.call(SYS_mremap, long(m.from), long(m.size), long(m.size), MREMAP_MAYMOVE | MREMAP_FIXED, long(m.temp)));
  }
  for (const Move& m : moves) {
    FROST_TRY(leader_.call(SYS_mremap, long(m.temp), long(m.size), long(m.size), MREMAP_MAYMOVE | MREMAP_FIXED, long(m.to)));
  }
  return Status::Ok();
}

Status AddressSpace::map_areas(const std::vector<bool>& filled) {
  for (size_t i = 0; i < image_.areas.size(); ++i) {
    const image::MemoryAreaImage& a = image_.areas[i];
    if (special(a)) continue;
    int prot = int(a.prot);
    if (filled[i]) prot |= PROT_READ | PROT_WRITE;
    int helper = files_.area_helper(i);
    int flags = MAP_FIXED;
    int fd = -1;
    uint64_t offset = 0;
    if (helper >= 0) {
      flags |= (a.flags & image::kAreaShared) ? MAP_SHARED : MAP_PRIVATE;
      fd = helper_base_ + helper;
      offset = a.file_offset;
    } else {
      flags |= MAP_PRIVATE | MAP_ANONYMOUS;
      if (a.flags & image::kAreaGrowsDown) flags |= MAP_GROWSDOWN;
    }
    Result<uint64_t> got = leader_.mmap(a.start, a.end - a.start, prot, flags, fd, off_t(offset));
    if (!got.ok()) {
      return got.error().context(fmt::format("mapping {:#x}-{:#x} {}", a.start, a.end, a.path));
    }
    auto advise = [&](uint32_t bit, int advice) -> Status {
      if (!(a.flags & bit)) return Status::Ok();
      Result<long> r = leader_.call(SYS_madvise, long(a.start), long(a.end - a.start), advice);
      if (!r.ok()) return r.error();
      return Status::Ok();
    };
    FROST_TRY(advise(image::kAreaDontFork, MADV_DONTFORK));
    FROST_TRY(advise(image::kAreaDontDump, MADV_DONTDUMP));
    FROST_TRY(advise(image::kAreaHugePage, MADV_HUGEPAGE));
    FROST_TRY(advise(image::kAreaNoHugePage, MADV_NOHUGEPAGE));
  }
  return Status::Ok();
}

Status AddressSpace::finish_areas(const std::vector<bool>& filled) {
  for (size_t i = 0; i < image_.areas.size(); ++i) {
    const image::MemoryAreaImage& a = image_.areas[i];
    if (special(a) || !filled[i] || (a.prot | PROT_READ | PROT_WRITE) == a.prot) continue;
    FROST_TRY(leader_.call(SYS_mprotect, long(a.start), long(a.end - a.start), long(a.prot)));
  }
  return Status::Ok();
}

Status AddressSpace::set_mm_fields() {
  const image::MmFields& mm = image_.mm;
  prctl_mm_map map{};
  map.start_code = mm.start_code;
  map.end_code = mm.end_code;
  map.start_data = mm.start_data;
  map.end_data = mm.end_data;
  map.start_brk = mm.start_brk;
  map.brk = mm.brk;
  map.start_stack = mm.start_stack;
  map.arg_start = mm.arg_start;
  map.arg_end = mm.arg_end;
  map.env_start = mm.env_start;
  map.env_end = mm.env_end;
  std::vector<uint64_t> auxv = mm.auxv;
  auxv.push_back(0);  // AT_NULL
  auxv.push_back(0);
  uint64_t auxv_at = scratch() + sizeof map;
  if (sizeof map + auxv.size() * 8 > kScratchSize) return Error::invalid("the image's auxv is too long");
  map.auxv = reinterpret_cast<__u64*>(auxv_at);
  map.auxv_size = uint32_t(auxv.size() * 8);
  // The stub's exe is its program's memfd, unmapped by now (the kernel
  // refuses a new exe while the old one is mapped).
  map.exe_fd = files_.exe_helper() >= 0 ? uint32_t(helper_base_ + files_.exe_helper()) : uint32_t(-1);
  FROST_TRY(leader_.memory().write(scratch(), &map, sizeof map));
  FROST_TRY(leader_.memory().write(auxv_at, auxv.data(), auxv.size() * 8));
  Result<long> r = leader_.call(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, long(scratch()), sizeof map);
  if (!r.ok()) return r.error().context("restoring the mm fields (brk, args, env, auxv, exe)");
  return Status::Ok();
}

Status AddressSpace::drop_window() {
  // The munmap runs from the window itself: it returns to the syscall-exit
  // stop, where frost puts the registers back, never to the unmapped page.
  return leader_.munmap(window_, window_size_);
}

}  // namespace frost::restore
