// The process image: everything frost keeps about a frozen process except its
// page contents (those are in the store, keyed by virtual page number). Plain
// values: nothing here knows how a field is captured or restored, so the dumper,
// the restorer, `frost inspect` and the tests all share one description.
//
// Register and siginfo blobs stay opaque bytes: their layout is the kernel's
// (user_regs_struct, XSAVE, siginfo_t on x86-64) and is checked by the code that
// hands them back to the kernel, not by the image.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace frost::image {

// A reader refuses a different major version; a newer minor only adds fields,
// which an older reader skips.
inline constexpr uint16_t kFormatMajor = 1;
inline constexpr uint16_t kFormatMinor = 0;

// Recorded to restore the same identity where the invoking user may; never used
// to gain a privilege the restoring user does not have.
struct Credentials {
  std::array<uint32_t, 4> uids{};  // real, effective, saved, fs
  std::array<uint32_t, 4> gids{};  // real, effective, saved, fs
  std::vector<uint32_t> groups;    // supplementary
  uint64_t cap_inheritable = 0;
  uint64_t cap_permitted = 0;
  uint64_t cap_effective = 0;
  uint64_t cap_bounding = 0;
  uint64_t cap_ambient = 0;
  uint32_t securebits = 0;
  bool no_new_privs = false;
  bool operator==(const Credentials&) const = default;
};

struct Rlimit {
  uint32_t resource = 0;  // RLIMIT_*
  uint64_t cur = 0;       // RLIM_INFINITY is ~0
  uint64_t max = 0;
  bool operator==(const Rlimit&) const = default;
};

// The fields PR_SET_MM_MAP takes (struct prctl_mm_map), minus exe_fd.
struct MmFields {
  uint64_t start_code = 0, end_code = 0;
  uint64_t start_data = 0, end_data = 0;
  uint64_t start_brk = 0, brk = 0;
  uint64_t start_stack = 0;
  uint64_t arg_start = 0, arg_end = 0;
  uint64_t env_start = 0, env_end = 0;
  std::vector<uint64_t> auxv;  // (type, value) pairs as /proc/PID/auxv lists them
  bool operator==(const MmFields&) const = default;
};

struct RseqImage {  // PTRACE_GET_RSEQ_CONFIGURATION
  uint64_t abi_pointer = 0;
  uint32_t abi_size = 0;
  uint32_t signature = 0;
  uint32_t flags = 0;
  bool operator==(const RseqImage&) const = default;
};

struct SigaltstackImage {  // stack_t
  uint64_t sp = 0;
  uint32_t flags = 0;  // SS_DISABLE / SS_AUTODISARM
  uint64_t size = 0;
  bool operator==(const SigaltstackImage&) const = default;
};

// How a thread stopped inside a system call continues (see proc/thread_state.h).
enum class SyscallRestart : uint8_t { kNone = 0, kReexecute = 1, kRestartBlock = 2 };
inline constexpr uint64_t kSyscallRestartLast = 2;

struct ThreadImage {
  int32_t tid = 0;
  std::string name;                          // comm of the thread
  std::vector<uint8_t> regs;                 // user_regs_struct (NT_PRSTATUS)
  std::vector<uint8_t> xstate;               // XSAVE area (NT_X86_XSTATE)
  uint64_t fs_base = 0, gs_base = 0;
  uint64_t sigmask = 0;                      // blocked signals, bit (sig - 1)
  std::vector<std::vector<uint8_t>> pending; // siginfo_t of signals queued to this thread
  RseqImage rseq;
  uint64_t robust_list_head = 0, robust_list_len = 0;
  uint64_t clear_child_tid = 0;
  // Per thread in the kernel, though usually set once by the main thread.
  SigaltstackImage sigaltstack;
  SyscallRestart restart = SyscallRestart::kNone;
  bool operator==(const ThreadImage&) const = default;
};

enum class AreaKind : uint8_t {
  kAnon = 0, kFile = 1, kHeap = 2, kStack = 3, kVdso = 4,
  kVvar = 5, kVvarVclock = 6, kShmem = 7, kMemfd = 8,
};
inline constexpr uint64_t kAreaKindLast = 8;

// Bits of MemoryAreaImage::flags (not the kernel's VM_* numbering, which moves).
enum AreaFlag : uint32_t {
  kAreaPrivate = 1u << 0,
  kAreaShared = 1u << 1,
  kAreaGrowsDown = 1u << 2,
  kAreaLocked = 1u << 3,
  kAreaDontFork = 1u << 4,
  kAreaDontDump = 1u << 5,
  kAreaHugePage = 1u << 6,
  kAreaNoHugePage = 1u << 7,
};

// Where the restorer finds an area's contents.
enum class ContentSource : uint8_t {
  kNone = 0,          // nothing was ever written: map it and leave it zero
  kStorePages = 1,    // written pages are in the snapshot, by virtual page number
  kFileMapped = 2,    // the file mapping itself supplies them (clean private or shared file)
  kSharedObject = 3,  // shared anonymous memory / memfd stored once, named by shared_id
};
inline constexpr uint64_t kContentSourceLast = 3;

struct MemoryAreaImage {
  uint64_t start = 0, end = 0;   // [start, end), page aligned
  uint32_t prot = 0;             // PROT_READ | PROT_WRITE | PROT_EXEC
  uint32_t flags = 0;            // AreaFlag bits
  AreaKind kind = AreaKind::kAnon;
  std::string path;              // file mappings, memfd name
  uint64_t file_offset = 0;
  uint64_t inode = 0, dev = 0;   // to notice the file changed under a frozen process
  ContentSource source = ContentSource::kNone;
  uint64_t shared_id = 0;        // for kSharedObject
  bool operator==(const MemoryAreaImage&) const = default;
};

struct SigactionImage {  // kernel struct sigaction (rt_sigaction ABI)
  uint64_t handler = 0;  // SIG_DFL = 0, SIG_IGN = 1, else an address
  uint64_t flags = 0;    // SA_*
  uint64_t restorer = 0;
  uint64_t mask = 0;
  bool operator==(const SigactionImage&) const = default;
};
inline constexpr int kSignalCount = 64;

struct ItimerImage {  // getitimer: ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
  uint64_t interval_us = 0;
  uint64_t value_us = 0;
  bool operator==(const ItimerImage&) const = default;
};

struct PosixTimerImage {  // timer_create + timer_gettime
  int32_t id = 0;
  int32_t clock_id = 0;
  int32_t notify = 0;        // SIGEV_*
  int32_t signo = 0;
  int32_t notify_tid = 0;    // SIGEV_THREAD_ID
  uint64_t sigev_value = 0;
  uint64_t interval_ns = 0;
  uint64_t value_ns = 0;
  uint32_t overrun = 0;
  bool operator==(const PosixTimerImage&) const = default;
};

struct FdImage {
  int32_t fd = 0;
  uint32_t flags = 0;            // FD_CLOEXEC
  std::string kind;              // fd handler table key: "file", "dir", "chr", "pipe", "tty"...
  std::vector<uint8_t> payload;  // the handler's own encoding
  bool operator==(const FdImage&) const = default;
};

struct ProcessImage {
  // Set by decode() to what the blob declared; encode() always writes the current ones.
  uint16_t format_major = kFormatMajor;
  uint16_t format_minor = kFormatMinor;
  int32_t pid = 0, ppid = 0, pgid = 0, sid = 0;
  std::string comm, exe, cwd;
  uint32_t umask = 0;
  uint32_t personality = 0;
  Credentials creds;
  std::vector<Rlimit> rlimits;
  MmFields mm;
  std::vector<ThreadImage> threads;          // the first is the thread group leader
  std::vector<MemoryAreaImage> areas;        // ascending by start
  std::array<SigactionImage, kSignalCount> sigactions{};  // index = signo - 1
  std::vector<std::vector<uint8_t>> shared_pending;       // siginfo_t, process-wide queue
  std::array<ItimerImage, 3> itimers{};
  std::vector<PosixTimerImage> posix_timers;
  std::vector<FdImage> fds;
  bool operator==(const ProcessImage&) const = default;
};

}  // namespace frost::image
