// A process's memory areas as /proc/PID/maps and /proc/PID/smaps list them.
//
// maps gives the layout; smaps adds each area's VmFlags (the kernel's view of
// madvise/mlock/userfaultfd state, which maps does not show) and its resident,
// anonymous and swapped sizes. The parsers accept any text without crashing
// and return kInvalidArgument naming the first line they cannot read.
#pragma once

#include <sys/types.h>

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace frost::proc {

// The two-letter mnemonics of smaps' "VmFlags:" line (show_smap_vma_flags in
// fs/proc/task_mmu.c). Kept as a set so flags added by later kernels survive.
class VmFlags {
 public:
  // Adds one mnemonic; false (and nothing added) unless it is two of [a-z0-9].
  bool add(std::string_view mnemonic);
  bool has(std::string_view mnemonic) const;
  bool empty() const { return bits_.none(); }
  size_t count() const { return bits_.count(); }
  // Space-separated, in a fixed (alphabetical) order.
  std::string to_string() const;
  bool operator==(const VmFlags&) const = default;

 private:
  static constexpr int kSymbols = 36;  // a-z, 0-9
  std::bitset<kSymbols * kSymbols> bits_;
};

// Mnemonics frost acts on. The full list is in proc(5).
namespace vmflag {
inline constexpr std::string_view kRead = "rd";
inline constexpr std::string_view kWrite = "wr";
inline constexpr std::string_view kExec = "ex";
inline constexpr std::string_view kShared = "sh";
inline constexpr std::string_view kGrowsDown = "gd";
inline constexpr std::string_view kPfnMap = "pf";      // raw device memory: cannot be copied
inline constexpr std::string_view kIo = "io";          // device I/O area: cannot be copied
inline constexpr std::string_view kLocked = "lo";      // mlock
inline constexpr std::string_view kLockOnFault = "lf"; // mlock2(MLOCK_ONFAULT)
inline constexpr std::string_view kSeqRead = "sr";     // MADV_SEQUENTIAL
inline constexpr std::string_view kRandRead = "rr";    // MADV_RANDOM
inline constexpr std::string_view kDontCopy = "dc";    // MADV_DONTFORK
inline constexpr std::string_view kDontExpand = "de";
inline constexpr std::string_view kAccount = "ac";
inline constexpr std::string_view kNoReserve = "nr";   // MAP_NORESERVE
inline constexpr std::string_view kHugetlb = "ht";
inline constexpr std::string_view kWipeOnFork = "wf";  // MADV_WIPEONFORK
inline constexpr std::string_view kDontDump = "dd";    // MADV_DONTDUMP
inline constexpr std::string_view kSoftDirty = "sd";
inline constexpr std::string_view kMixedMap = "mm";
inline constexpr std::string_view kHugePage = "hg";    // MADV_HUGEPAGE
inline constexpr std::string_view kNoHugePage = "nh";  // MADV_NOHUGEPAGE
inline constexpr std::string_view kMergeable = "mg";   // MADV_MERGEABLE (KSM)
inline constexpr std::string_view kUffdMissing = "um";
inline constexpr std::string_view kUffdWp = "uw";
inline constexpr std::string_view kUffdMinor = "ui";
inline constexpr std::string_view kShadowStack = "ss";
inline constexpr std::string_view kSealed = "sl";      // mseal (Linux 6.10)
inline constexpr std::string_view kDroppable = "dp";   // MAP_DROPPABLE (Linux 6.11)
}  // namespace vmflag

enum class AreaKind {
  kAnon,        // private anonymous memory, named or not ("[anon:name]")
  kFile,        // a mapped file
  kHeap,        // [heap]
  kStack,       // [stack] (the main thread's)
  kVdso,        // [vdso]
  kVvar,        // [vvar]
  kVvarVclock,  // [vvar_vclock] (newer kernels split the clock pages out of [vvar])
  kVsyscall,    // [vsyscall]
  kShmem,       // shared anonymous, memfd, SysV shm: one object, stored once
  kOther,       // anything else the kernel names ("[uprobes]", "anon_inode:...")
};

const char* area_kind_name(AreaKind kind);

struct MemoryArea {
  uint64_t start = 0, end = 0;  // [start, end)
  int prot = 0;                 // PROT_READ | PROT_WRITE | PROT_EXEC
  bool shared = false;          // 's' rather than 'p'
  uint64_t offset = 0;          // into the file, in bytes
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  // As the kernel printed it, without a " (deleted)" suffix and with "\012"
  // turned back into '\n'. A file really named "x (deleted)" is ambiguous
  // here; /proc/PID/map_files is the way to the file itself.
  std::string path;
  bool deleted = false;  // the mapped file was unlinked (always so for memfd and /dev/zero)
  AreaKind kind = AreaKind::kAnon;

  // From smaps only (has_smaps); sizes in bytes.
  bool has_smaps = false;
  VmFlags flags;
  uint64_t rss = 0, anonymous = 0, swap = 0, private_dirty = 0;

  uint64_t size() const { return end - start; }
  // "rw-p" as in maps.
  std::string perms() const;
};

// One line of /proc/PID/maps (also the header line of each smaps entry).
Result<MemoryArea> parse_maps_line(std::string_view line);
Result<std::vector<MemoryArea>> parse_maps(std::string_view text);
Result<std::vector<MemoryArea>> parse_smaps(std::string_view text);

// The areas of a live process, in address order.
Result<std::vector<MemoryArea>> read_maps(pid_t pid);
Result<std::vector<MemoryArea>> read_smaps(pid_t pid);

}  // namespace frost::proc
