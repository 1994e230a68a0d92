// freeze_bench: how fast frost freezes a process into the store and melts it
// back (eager), each figure as a ratio against a limit measured in the same run
// on the same machine and file system (the project's machines are shared and
// noisy).
//
//   freeze_bench [--dir DIR] [--sizes 64M,1G,4G] [--quick] [--reps N] [--strict] [--cold]
//
// For each size N a child process holds N bytes of random (incompressible)
// data in one private anonymous mapping. The child is this program run from a
// copy of its binary with --child (see install_child_exe). One repetition:
//   1. fork+exec the child, which fills its memory and says it is ready
//   2. limit: process_vm_readv of the child's N bytes, 1 MiB per call
//   3. limit: N bytes written to a new file next to the store, then fdatasync
//      (and, for the analysis only, the store alone taking N bytes of pages)
//   4. frost::dump::capture(kFreeze) into a new store; the child is reaped
//   5. limit: Store::for_each_page over the snapshot
//   6. frost::restore::melt; the melted process's memory is checked word by
//      word against the pattern, then it is killed and reaped
//   7. limit: process_vm_writev of N bytes into a fresh, untouched mapping of
//      another child, 1 MiB per call
// Freeze throughput counts every page the freeze stored (the data and the
// child's few other pages); melt throughput counts N. Both are timed around
// the whole capture() / melt() call, seize to kill and image to detach.
// Each size gets new store files; the page cache is left alone (both the melt
// and its store read limit find the just-written store file cached) unless
// --cold, which evicts that one file before each read.
// Store and scratch files live in a new directory under DIR (default /var/tmp)
// that is removed at the end, also on SIGINT and SIGTERM; every child is
// killed and reaped by its PID. The exit status is 0 unless something failed
// (2) or, with --strict, a target was missed (1). Without the privileges a
// melt needs (root or CAP_CHECKPOINT_RESTORE and ptrace), it exits 77: skipped.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "bench_common.h"
#include "dump/capture.h"
#include "restore/melt.h"
#include "store/store.h"

namespace frost::bench {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kChunk = 1 * kMiB;       // one process_vm_* call of the limits
constexpr uint64_t kBufferBytes = 8 * kMiB;  // as the dumper's and the melt's batch buffers
constexpr int kSkipped = 77;                 // ctest SKIP_RETURN_CODE

// --- options -------------------------------------------------------------------------

// reps 0 (not given): 5 for sizes under 1 GiB, else 3.
struct Options : CommonOptions {
  std::vector<uint64_t> sizes{64 * kMiB, 1 * kGiB, 4 * kGiB};
  bool cold = false;
};

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: freeze_bench [--dir DIR] [--sizes LIST] [--quick] [--reps N] [--strict] [--cold] [--verbose]\n"
               "  --dir DIR     where the scratch directory (store, raw file) goes (default /var/tmp)\n"
               "  --sizes LIST  process sizes, comma-separated, M or G suffix (default 64M,1G,4G)\n"
               "  --quick       64 MiB only: the smoke test, well under 30 s\n"
               "  --reps N      repetitions per size (default 5 under 1 GiB, else 3; 3 with --quick)\n"
               "  --strict      exit 1 when a target is missed\n"
               "  --cold        evict the store file from the page cache (its own pages only,\n"
               "                posix_fadvise) before the store read limit and before each melt\n"
               "  --verbose     print when each freeze and melt ran (CLOCK_MONOTONIC seconds, the clock of\n"
               "                perf record -k CLOCK_MONOTONIC; for perf report --time)\n");
  std::exit(code);
}

uint64_t parse_size(const std::string& s) {
  if (auto v = parse_bytes(s)) return *v;
  usage(2);
}

Options parse_options_or_throw(int argc, char** argv) {
  Options o;
  bool sizes_given = false;
  parse_common(argc, argv, o, usage, [&](const std::string& a, const auto& next) {
    if (a == "--sizes") {
      o.sizes.clear();
      std::string list = next();
      for (size_t p = 0; p <= list.size();) {
        size_t q = list.find(',', p);
        if (q == std::string::npos) q = list.size();
        if (q > p) o.sizes.push_back(std::max<uint64_t>(kMiB, parse_size(list.substr(p, q - p)) / kMiB * kMiB));
        p = q + 1;
      }
      if (o.sizes.empty()) usage(2);
      sizes_given = true;
    } else if (a == "--cold") o.cold = true;
    else return false;
    return true;
  });
  if (o.quick && !sizes_given) o.sizes = {64 * kMiB};
  if (o.quick && o.reps == 0) o.reps = 3;
  return o;
}

Options parse_options(int argc, char** argv) {
  try {
    return parse_options_or_throw(argc, argv);
  } catch (const std::exception&) {  // a number that is not one
    usage(2);
  }
}

// --- cleanup: the scratch directory and every child, by PID ---------------------------

void cleanup() {
  kill_tracked();
  remove_scratch();
}

// --- the machine -----------------------------------------------------------------------

void print_machine(const Options& o, const std::string& scratch, int argc, char** argv) {
  std::string thp;
  std::ifstream thp_file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::getline(thp_file, thp);
  std::string sizes;
  for (uint64_t s : o.sizes) sizes += (sizes.empty() ? "" : ", ") + size_name(s);
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);

  bench::print_machine(argc, argv,
                       fmt::format("{:.1f} GiB, {:.1f} GiB available; transparent hugepages: {}",
                                   double(meminfo_bytes("MemTotal")) / kGiB,
                                   double(meminfo_bytes("MemAvailable")) / kGiB, thp.empty() ? "?" : thp),
                       scratch);
  fmt::print("load         {:.2f} {:.2f} {:.2f}\n", load[0], load[1], load[2]);
  fmt::print("sizes        {}; {} repetitions{}{}\n\n", sizes,
             o.reps ? std::to_string(o.reps) : "5 (under 1 GiB) or 3", o.quick ? ", --quick" : "",
             o.cold ? ", --cold (store file evicted before reads)" : "");
}

// --- buffers and the pattern ------------------------------------------------------------

// A page-aligned, pre-faulted buffer.
struct Buffer {
  explicit Buffer(uint64_t bytes) : size(bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail("mmap of a buffer");
    data = static_cast<uint8_t*>(p);
    std::memset(data, 0, bytes);
  }
  ~Buffer() { ::munmap(data, size); }
  Buffer(const Buffer&) = delete;
  uint8_t* data;
  uint64_t size;
};

// Word i of the child's data: splitmix64 of a counter, so any part can be
// regenerated to check it, and nothing compresses.
inline uint64_t pattern_word(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void fill_pattern(uint64_t* words, uint64_t count, uint64_t seed, uint64_t first) {
  for (uint64_t i = 0; i < count; ++i) words[i] = pattern_word(seed, first + i);
}

// --- children ------------------------------------------------------------------------------

struct Child {
  pid_t pid = 0;
  uint64_t addr = 0;    // the start of its data mapping
  double ready_s = 0;   // fork to ready: mmap, page faults and filling
};

// What a child sends when it is ready: its mapping, or an errno.
struct Ready {
  uint64_t addr;
  int32_t err;
};

// The child program is a copy of this binary under another path, run with
// --child. A fork of the bench itself cannot be melted by the bench: the stub
// a melt starts is a clone of the melting program, and the kernel refuses to
// change a process's exe (PR_SET_MM_MAP's exe_fd: EBUSY) while any mapping of
// the old exe file is left, which the image's own mappings of the same file
// are. A copy is another file. It also gives the child a fresh address space.
std::string g_child_exe;

void install_child_exe(const std::string& dir) {
  g_child_exe = dir + "/fb-child";
  std::error_code ec;
  std::filesystem::copy_file("/proc/self/exe", g_child_exe, ec);
  if (ec) fail("copying /proc/self/exe to " + g_child_exe + ": " + ec.message());
  ::chmod(g_child_exe.c_str(), 0700);
}

// `freeze_bench --child BYTES SEED FILL`, with the ready pipe at fd 3.
[[noreturn]] void child_main(uint64_t bytes, uint64_t seed, bool fill) {
  Ready r{0, 0};
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    r.err = errno;
  } else {
    r.addr = reinterpret_cast<uint64_t>(p);
    if (fill) fill_pattern(static_cast<uint64_t*>(p), bytes / 8, seed, 0);
  }
  (void)!::write(3, &r, sizeof r);
  ::close(3);
  if (r.err != 0) ::_exit(1);
  for (;;) ::pause();
}

// Between fork and exec: only async-signal-safe calls, since the parent may
// have threads (the store's worker pool) holding locks. The ready pipe goes to
// fd 3, every other fd is closed, 0-2 go to /dev/null: frost freezes only fds
// it can restore.
[[noreturn]] void exec_child(int ready_fd, pid_t parent, char* const argv[]) {
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  if (ready_fd != 3) {
    if (::dup2(ready_fd, 3) != 3) ::_exit(1);
  } else {
    ::fcntl(3, F_SETFD, 0);
  }
  ::syscall(SYS_close_range, 4u, ~0u, 0u);
  int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd < 0) ::_exit(1);
  for (int fd = 0; fd <= 2; ++fd) ::dup2(null_fd, fd);
  if (null_fd > 2) ::close(null_fd);
  ::execv(argv[0], argv);
  Ready r{0, errno};
  (void)!::write(3, &r, sizeof r);
  ::_exit(127);
}

// Starts a child holding `bytes` in one mapping: filled with the pattern, or
// mapped and never touched (the target of the process_vm_writev limit).
Child spawn_child(uint64_t bytes, uint64_t seed, bool fill) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe2");
  std::string a_bytes = std::to_string(bytes), a_seed = std::to_string(seed), a_fill = fill ? "1" : "0";
  std::string a_exe = g_child_exe, a_flag = "--child";
  char* argv[] = {a_exe.data(), a_flag.data(), a_bytes.data(), a_seed.data(), a_fill.data(), nullptr};
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t parent = ::getpid();
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) fail(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ::close(fds[0]);
    exec_child(fds[1], parent, argv);
  }
  track(pid);
  ::close(fds[1]);
  Ready r{0, -1};
  ssize_t n;
  do {
    n = ::read(fds[0], &r, sizeof r);
  } while (n < 0 && errno == EINTR);
  ::close(fds[0]);
  if (n != ssize_t(sizeof r) || r.err != 0)
    fail(fmt::format("child {} did not get ready: {}", pid, r.err > 0 ? std::strerror(r.err) : "it died"));
  return Child{pid, r.addr, seconds_since(t0)};
}

// --- limits -----------------------------------------------------------------------------------

// Seconds to read `bytes` of pid's memory at addr, 1 MiB per process_vm_readv,
// into an 8 MiB buffer used round-robin (as the dumper's batch buffer).
double time_readv(pid_t pid, uint64_t addr, uint64_t bytes, Buffer& buf) {
  auto t0 = Clock::now();
  for (uint64_t off = 0; off < bytes; off += kChunk) {
    uint64_t n = std::min(kChunk, bytes - off);
    iovec local{buf.data + off % buf.size, n};
    iovec remote{reinterpret_cast<void*>(addr + off), n};
    if (::process_vm_readv(pid, &local, 1, &remote, 1, 0) != ssize_t(n))
      fail(fmt::format("process_vm_readv of child {}: {}", pid, std::strerror(errno)));
  }
  return seconds_since(t0);
}

// Seconds to write `bytes` from an 8 MiB buffer into pid's memory at addr, 1
// MiB per process_vm_writev (the pages are faulted in as they are written, as
// in a melt's freshly mapped areas).
double time_writev(pid_t pid, uint64_t addr, uint64_t bytes, Buffer& buf) {
  auto t0 = Clock::now();
  for (uint64_t off = 0; off < bytes; off += kChunk) {
    uint64_t n = std::min(kChunk, bytes - off);
    iovec local{buf.data + off % buf.size, n};
    iovec remote{reinterpret_cast<void*>(addr + off), n};
    if (::process_vm_writev(pid, &local, 1, &remote, 1, 0) != ssize_t(n))
      fail(fmt::format("process_vm_writev into child {}: {}", pid, std::strerror(errno)));
  }
  return seconds_since(t0);
}

// Seconds to write `bytes` to a new file in 4 MiB pwrites and fdatasync it.
// Each 4 MiB is fallocated just before it is written, timed: the store
// reserves its 4 MiB segments as it goes.
double time_raw_write(const std::string& path, uint64_t bytes, const Buffer& buf) {
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail("open " + path + ": " + std::strerror(errno));
  constexpr uint64_t kWrite = 4 * kMiB;
  auto t0 = Clock::now();
  for (uint64_t off = 0; off < bytes; off += kWrite) {
    uint64_t n = std::min(kWrite, bytes - off);
    if (::fallocate(fd, 0, off_t(off), off_t(n)) != 0) fail("fallocate " + path + ": " + std::strerror(errno));
    if (::pwrite(fd, buf.data + off % buf.size, n, off_t(off)) != ssize_t(n))
      fail("pwrite " + path + ": " + std::strerror(errno));
  }
  if (::fdatasync(fd) != 0) fail("fdatasync " + path + ": " + std::strerror(errno));
  double s = seconds_since(t0);
  ::close(fd);
  ::unlink(path.c_str());
  return s;
}

// Seconds for the store alone to take `bytes` of pages the way the dumper
// hands them over (put_pages of 8 MiB runs), then put_meta and commit, on a
// new store: not a limit, the other half of the freeze's serial copy loop.
double time_store_write(const std::string& path, uint64_t bytes, const Buffer& buf, const store::StoreOptions& so) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  auto store = check(store::Store::create(path, so), "create store " + path);
  std::vector<uint8_t> meta(4096, 0x5a);
  auto t0 = Clock::now();
  auto w = check(store->begin_snapshot("write"), "begin_snapshot");
  for (uint64_t off = 0; off < bytes; off += buf.size) {
    uint64_t n = std::min(buf.size, bytes - off);
    check(w->put_pages(off / kPage, std::span<const uint8_t>(buf.data, n)), "put_pages");
  }
  check(w->put_meta(meta), "put_meta");
  check(w->commit(), "commit");
  double s = seconds_since(t0);
  store.reset();
  std::filesystem::remove(path, ec);
  return s;
}

// Seconds for Store::for_each_page over the snapshot (what a melt reads); the
// callback only touches one word per page.
double time_store_read(const store::Store& store, store::SnapshotId id, uint64_t* pages) {
  uint64_t n = 0, sink = 0;
  auto t0 = Clock::now();
  check(store.for_each_page(id,
                            [&](uint64_t vpn, std::span<const uint8_t, store::kPageSize> page) -> Status {
                              uint64_t w;
                              std::memcpy(&w, page.data() + (vpn % 512) * 8, 8);
                              sink += w;
                              n++;
                              return Status::Ok();
                            }),
        "for_each_page over the snapshot");
  double s = seconds_since(t0);
  if (sink == 0x5eed) std::fprintf(stderr, " ");
  *pages = n;
  return s;
}

// Drops the store file's own pages from the page cache (--cold).
void evict_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open " + path);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// Every word of the melted process's data must be the pattern's.
void verify_memory(pid_t pid, uint64_t addr, uint64_t bytes, uint64_t seed, Buffer& buf) {
  std::vector<uint64_t> want(kChunk / 8);
  for (uint64_t off = 0; off < bytes; off += kChunk) {
    uint64_t n = std::min(kChunk, bytes - off);
    iovec local{buf.data, n};
    iovec remote{reinterpret_cast<void*>(addr + off), n};
    if (::process_vm_readv(pid, &local, 1, &remote, 1, 0) != ssize_t(n))
      fail(fmt::format("reading the melted process {} at {:#x}: {}", pid, addr + off, std::strerror(errno)));
    fill_pattern(want.data(), n / 8, seed, off / 8);
    if (std::memcmp(buf.data, want.data(), n) != 0)
      fail(fmt::format("the melted process {} holds wrong data in {:#x}-{:#x}", pid, addr + off, addr + off + n));
  }
}

// --- one repetition ----------------------------------------------------------------------------

// Times of the progress callbacks: the first and last batch.
struct Progress {
  Clock::time_point first, last;
  uint64_t first_done = 0, last_done = 0;
  int calls = 0;
  ProgressFn fn() {
    return [this](uint64_t done, uint64_t) {
      auto now = Clock::now();
      if (calls++ == 0) first = now, first_done = done;
      last = now;
      last_done = done;
    };
  }
};

struct Rep {
  double ready = 0;                  // child fork..ready
  double readv = 0, raw_write = 0;   // freeze limits
  double freeze = 0, freeze_cpu = 0;
  uint64_t freeze_bytes = 0;         // pages handed to the store x 4 KiB
  uint64_t stored_bytes = 0;         // bytes the snapshot added to the log
  double freeze_stopped_ms = 0;
  // Phases from the progress callback (NAN when the copy is too short to tell):
  // seconds to the first batch, MB/s of the loop, seconds from the last batch.
  double freeze_pre = NAN, freeze_copy_mbps = NAN, freeze_post = NAN;
  double store_write = 0;            // put_pages+commit alone (info)
  double exit_s = 0;                 // SIGKILL..reaped of the melted process (info)
  double store_read = 0, writev = 0;  // melt limits
  uint64_t store_bytes = 0;          // pages for_each_page visited x 4 KiB
  double melt = 0, melt_cpu = 0;
  uint64_t melt_bytes = 0;
  double melt_pre = NAN, melt_fill_mbps = NAN, melt_post = NAN;
};

store::StoreOptions store_options(uint64_t bytes) {
  store::StoreOptions so;
  so.segment_size = 4 * kMiB;
  // Room for the snapshot with the cleaner's free target to spare: it never runs.
  so.capacity = (bytes * 3 / 2 + 256 * kMiB) / so.segment_size * so.segment_size;
  so.default_retention = 4;
  return so;
}

double mono(Clock::time_point t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

Rep run_rep(const std::string& dir, uint64_t bytes, int rep, bool cold, bool verbose, Buffer& buf) {
  Rep r;
  uint64_t seed = 0xf4ee2e0000ull + bytes / kMiB * 131 + uint64_t(rep);
  std::string store_path = dir + "/freeze.store";
  std::string name = fmt::format("bench-{}m-{}", bytes / kMiB, rep);

  // 1. The process.
  Child child = spawn_child(bytes, seed, true);
  r.ready = child.ready_s;

  // 2-3. Freeze limits: reading the process, writing the disk.
  r.readv = time_readv(child.pid, child.addr, bytes, buf);
  r.raw_write = time_raw_write(dir + "/raw.dat", bytes, buf);
  r.store_write = time_store_write(dir + "/write.store", bytes, buf, store_options(bytes));

  // 4. Freeze into a new store.
  std::error_code ec;
  std::filesystem::remove(store_path, ec);
  auto store = check(store::Store::create(store_path, store_options(bytes)), "create store " + store_path);
  Progress fp;
  dump::CaptureOptions co;
  co.name = name;
  co.mode = dump::CaptureMode::kFreeze;
  co.progress = fp.fn();
  double c0 = cpu_seconds();
  auto t0 = Clock::now();
  dump::CaptureResult cr = check(dump::capture(child.pid, *store, co), fmt::format("freezing child {}", child.pid));
  auto t1 = Clock::now();
  r.freeze = std::chrono::duration<double>(t1 - t0).count();
  r.freeze_cpu = cpu_seconds() - c0;
  r.freeze_bytes = cr.pages * kPage;
  r.stored_bytes = cr.bytes_stored;
  r.freeze_stopped_ms = cr.stopped_ms;
  if (fp.calls >= 2 && fp.last_done - fp.first_done >= 16 * kMiB) {
    r.freeze_pre = std::chrono::duration<double>(fp.first - t0).count();
    r.freeze_copy_mbps = double(fp.last_done - fp.first_done) /
                         std::chrono::duration<double>(fp.last - fp.first).count() / 1e6;
    r.freeze_post = std::chrono::duration<double>(t1 - fp.last).count();
  }
  if (verbose) fmt::print("  freeze {:.6f},{:.6f}\n", mono(t0), mono(t1));
  if (auto st = reap(child.pid); st && !(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL))
    fail(fmt::format("frozen child {} ended with status {:#x}, not SIGKILL", child.pid, *st));
  if (cr.pages * kPage < bytes) fail(fmt::format("the snapshot holds {} pages, fewer than the data", cr.pages));

  // 5. Melt limit: reading the snapshot back.
  if (cold) evict_file(store_path);
  uint64_t pages = 0;
  r.store_read = time_store_read(*store, cr.snapshot, &pages);
  r.store_bytes = pages * kPage;
  if (pages != cr.pages) fail(fmt::format("for_each_page visited {} pages, the freeze stored {}", pages, cr.pages));

  // 6. Melt (eager), check, end.
  if (cold) evict_file(store_path);
  Progress mp;
  restore::MeltOptions mo;
  mo.progress = mp.fn();
  c0 = cpu_seconds();
  t0 = Clock::now();
  restore::MeltResult mr = check(restore::melt(*store, name, mo), "melting " + name);
  t1 = Clock::now();
  track(mr.pid);
  if (verbose) fmt::print("  melt {:.6f},{:.6f}\n", mono(t0), mono(t1));
  r.melt = std::chrono::duration<double>(t1 - t0).count();
  r.melt_cpu = cpu_seconds() - c0;
  r.melt_bytes = mr.pages * kPage;
  if (mp.calls >= 2 && mp.last_done - mp.first_done >= 16 * kMiB) {
    r.melt_pre = std::chrono::duration<double>(mp.first - t0).count();
    r.melt_fill_mbps = double(mp.last_done - mp.first_done) /
                       std::chrono::duration<double>(mp.last - mp.first).count() / 1e6;
    r.melt_post = std::chrono::duration<double>(t1 - mp.last).count();
  }
  if (mr.pid != child.pid) fail(fmt::format("melted as pid {}, frozen as {}", mr.pid, child.pid));
  verify_memory(mr.pid, child.addr, bytes, seed, buf);
  r.exit_s = kill_and_reap(mr.pid, "the melted process");

  store.reset();
  std::filesystem::remove(store_path, ec);

  // 7. Melt limit: writing into a process's fresh mapping.
  Child target = spawn_child(bytes, 0, false);
  r.writev = time_writev(target.pid, target.addr, bytes, buf);
  kill_and_reap(target.pid, "the process_vm_writev target");
  return r;
}

// --- the table -----------------------------------------------------------------------------

std::string mbps_spread(uint64_t bytes, const std::vector<double>& secs) {
  return spread(mbps(double(bytes), secs), 1, "MB/s");
}

template <class F>
std::vector<double> field(const std::vector<Rep>& reps, F f) {
  std::vector<double> v;
  for (const Rep& r : reps) v.push_back(double(f(r)));
  return v;
}

struct SizeResult {
  uint64_t bytes = 0;
  double freeze_s = 0, melt_s = 0;  // medians
};

SizeResult report_size(uint64_t bytes, const std::vector<Rep>& reps) {
  std::string sz = size_name(bytes);
  double gib = double(bytes) / kGiB;
  auto med = [&](auto f) { return median(field(reps, f)); };

  // Freeze: bytes of the process (every page it handed to the store) / time.
  double fbytes = med([](const Rep& r) { return r.freeze_bytes; });
  double freeze_s = med([](const Rep& r) { return r.freeze; });
  double readv_bw = double(bytes) / med([](const Rep& r) { return r.readv; }) / 1e6;
  double write_bw = double(bytes) / med([](const Rep& r) { return r.raw_write; }) / 1e6;
  double freeze_bw = fbytes / freeze_s / 1e6;
  double freeze_limit = std::min(readv_bw, write_bw);
  add_row({"freeze, " + sz, mbps_spread(uint64_t(fbytes), field(reps, [](const Rep& r) { return r.freeze; })),
           fmt::format("min(readv {:.0f}, write+sync {:.0f}) MB/s", readv_bw, write_bw), freeze_bw / freeze_limit,
           ">= 0.8", freeze_bw / freeze_limit >= 0.8});
  add_row({"  freeze phases", fmt::format("{:.0f} ms | {:.0f} MB/s | {:.0f} ms",
                                          med([](const Rep& r) { return r.freeze_pre; }) * 1e3,
                                          med([](const Rep& r) { return r.freeze_copy_mbps; }),
                                          med([](const Rep& r) { return r.freeze_post; }) * 1e3),
           "to 1st batch | copy loop | last batch..end", NAN, "", std::nullopt});
  add_row({"  freeze: process / stored", fmt::format("{:.1f} / {:.1f} MiB, stopped {:.0f} ms", fbytes / kMiB,
                                                    med([](const Rep& r) { return r.stored_bytes; }) / kMiB,
                                                    med([](const Rep& r) { return r.freeze_stopped_ms; })),
           fmt::format("data {} MiB; exit after SIGKILL {:.0f} ms", bytes / kMiB,
                       med([](const Rep& r) { return r.exit_s; }) * 1e3),
           NAN, "", std::nullopt});
  double swrite_bw = double(bytes) / med([](const Rep& r) { return r.store_write; }) / 1e6;
  double fserial = 1 / (1 / readv_bw + 1 / swrite_bw);
  add_row({"  freeze vs serial read+store", fmt::format("{:.0f} MB/s", freeze_bw),
           fmt::format("1/(1/readv + 1/store write {:.0f}) = {:.0f} MB/s", swrite_bw, fserial), freeze_bw / fserial, "",
           std::nullopt});

  // Melt: N / time.
  double melt_s = med([](const Rep& r) { return r.melt; });
  double sread_bw = med([](const Rep& r) { return r.store_bytes; }) / med([](const Rep& r) { return r.store_read; }) / 1e6;
  double writev_bw = double(bytes) / med([](const Rep& r) { return r.writev; }) / 1e6;
  double melt_bw = double(bytes) / melt_s / 1e6;
  double melt_limit = std::min(sread_bw, writev_bw);
  add_row({"melt (eager), " + sz, mbps_spread(bytes, field(reps, [](const Rep& r) { return r.melt; })),
           fmt::format("min(for_each_page {:.0f}, writev {:.0f}) MB/s", sread_bw, writev_bw), melt_bw / melt_limit,
           ">= 0.8", melt_bw / melt_limit >= 0.8});
  add_row({"  melt phases", fmt::format("{:.0f} ms | {:.0f} MB/s | {:.0f} ms",
                                        med([](const Rep& r) { return r.melt_pre; }) * 1e3,
                                        med([](const Rep& r) { return r.melt_fill_mbps; }),
                                        med([](const Rep& r) { return r.melt_post; }) * 1e3),
           "to 16 MiB filled | fill loop | last..end", NAN, "", std::nullopt});
  double serial = 1 / (1 / sread_bw + 1 / writev_bw);
  add_row({"  melt vs serial read+write", fmt::format("{:.0f} MB/s", melt_bw),
           fmt::format("1/(1/for_each_page + 1/writev) = {:.0f} MB/s", serial), melt_bw / serial, "", std::nullopt});
  add_row({"  CPU s/GiB freeze / melt", fmt::format("{:.2f} / {:.2f}", med([](const Rep& r) { return r.freeze_cpu; }) / gib,
                                                    med([](const Rep& r) { return r.melt_cpu; }) / gib),
           fmt::format("wall {:.2f} / {:.2f} s/GiB", freeze_s / gib, melt_s / gib), NAN, "", std::nullopt});
  return SizeResult{bytes, freeze_s, melt_s};
}

void report_scaling(const std::vector<SizeResult>& done) {
  if (done.size() < 2) return;
  std::vector<SizeResult> s = done;
  std::sort(s.begin(), s.end(), [](auto& a, auto& b) { return a.bytes < b.bytes; });
  const SizeResult &small = s.front(), &large = s.back();
  double k = double(large.bytes) / double(small.bytes);
  auto row = [&](const char* what, double SizeResult::*t) {
    std::string per, names;
    for (const SizeResult& x : s) {
      per += fmt::format("{}{:.2f}", per.empty() ? "" : " / ", x.*t / (double(x.bytes) / kGiB));
      names += (names.empty() ? "" : "/") + short_name(x.bytes);
    }
    double scaling = large.*t / small.*t / k;
    // Without the fixed cost (seize, /proc, stub...) that weighs on the smallest size.
    std::string next;
    if (s.size() >= 3) {
      const SizeResult& mid = s[s.size() - 2];
      double k2 = double(large.bytes) / double(mid.bytes);
      next = fmt::format("; t{}/t{}/{:.0f} = {:.2f}", short_name(large.bytes), short_name(mid.bytes), k2,
                         large.*t / mid.*t / k2);
    }
    add_row({fmt::format("{} s/GiB", what), per + " (" + names + ")",
             fmt::format("t{}/t{}/{:.0f} (ideal 1.0){}", short_name(large.bytes), short_name(small.bytes), k, next),
             scaling, "", std::nullopt});
  };
  row("freeze", &SizeResult::freeze_s);
  row("melt", &SizeResult::melt_s);
}

// --- main -------------------------------------------------------------------------------------

int run(int argc, char** argv) {
  set_program("freeze_bench");
  Options o = parse_options(argc, argv);
  if (!may_melt()) {
    std::printf("freeze_bench: skipped: melting needs root or CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE\n");
    return kSkipped;
  }
  // Frozen children are ours to reap; so is anything orphaned below us.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::string dir = make_scratch(o.dir, "freeze-bench-");
  clean_up_on_exit(cleanup);
  print_machine(o, dir, argc, argv);
  install_child_exe(dir);

  Buffer buf(kBufferBytes);
  fill_pattern(reinterpret_cast<uint64_t*>(buf.data), buf.size / 8, 0xb0ffe7, 0);

  auto t_start = Clock::now();
  std::vector<SizeResult> done;
  for (uint64_t bytes : o.sizes) {
    uint64_t disk = free_bytes(dir);
    uint64_t mem = meminfo_bytes("MemAvailable");
    if (bytes >= 4 * kGiB && disk < 20 * kGiB) {
      fmt::print("{}: skipped: {} has {:.1f} GiB free, under the 20 GiB this size asks for\n\n", size_name(bytes),
                 dir, double(disk) / kGiB);
      continue;
    }
    if (disk < 2 * bytes + kGiB) {
      fmt::print("{}: skipped: {} has {:.1f} GiB free, the run needs about {:.1f}\n\n", size_name(bytes), dir,
                 double(disk) / kGiB, double(2 * bytes + kGiB) / kGiB);
      continue;
    }
    if (mem < 2 * bytes + kGiB) {
      fmt::print("{}: skipped: {:.1f} GiB of memory available, the run needs about {:.1f}\n\n", size_name(bytes),
                 double(mem) / kGiB, double(2 * bytes + kGiB) / kGiB);
      continue;
    }
    int nreps = o.reps ? o.reps : bytes < kGiB ? 5 : 3;
    fmt::print("{}: {} repetitions of fill, readv, raw write, store write, freeze, store read, melt, check, writev\n",
               size_name(bytes), nreps);
    std::vector<Rep> reps;
    for (int rep = 0; rep < nreps; ++rep) {
      Rep r = run_rep(dir, bytes, rep, o.cold, o.verbose, buf);
      double mb = double(bytes) / 1e6;
      fmt::print("  rep {}: ready {:.2f} s | readv {:.0f} MB/s, write {:.0f} MB/s, store write {:.0f} MB/s, freeze "
                 "{:.3f} s ({:.0f} MB/s) | for_each_page {:.0f} MB/s, writev {:.0f} MB/s, melt {:.3f} s ({:.0f} MB/s)\n",
                 rep + 1, r.ready, mb / r.readv, mb / r.raw_write, mb / r.store_write, r.freeze,
                 double(r.freeze_bytes) / r.freeze / 1e6,
                 double(r.store_bytes) / r.store_read / 1e6, mb / r.writev, r.melt, mb / r.melt);
      std::fflush(stdout);
      reps.push_back(r);
    }
    done.push_back(report_size(bytes, reps));
    fmt::print("\n");
  }
  report_scaling(done);

  bool all = print_table({30, 38, 48, 145});
  fmt::print("\n{} in {:.0f} s\n", done.empty() ? "nothing measured" : all ? "all targets met" : "some targets MISSED",
             seconds_since(t_start));
  return !all && o.strict ? 1 : 0;
}

}  // namespace
}  // namespace frost::bench

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--child") == 0)
    frost::bench::child_main(std::strtoull(argv[2], nullptr, 10), std::strtoull(argv[3], nullptr, 10),
                             argv[4][0] == '1');
  return frost::bench::run(argc, argv);
}
