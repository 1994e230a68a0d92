// store_bench: the store's throughput, incremental cost, read latency and
// cleaner overhead, each as a ratio against a limit measured in the same run on
// the same file system (the project's machines are shared and noisy).
//
//   store_bench [--dir DIR] [--size-mib N] [--quick] [--reps N] [--strict] [--verbose]
//               [--cleaner-only] [--churn-pct P] [--live-pct P]
//
// Store and scratch files live in a fresh directory under DIR (default
// /var/tmp) that is removed at the end. The exit status is 0 unless the store
// fails or returns wrong data; with --strict a missed target also exits 1.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "bench_common.h"
#include "store/store.h"

namespace frost::store {
namespace {

using bench::add_row;
using bench::check;
using bench::Clock;
using bench::cpu_seconds;
using bench::fail;
using bench::kMiB;
using bench::median;
using bench::seconds_since;
using bench::spread;

// --- options ----------------------------------------------------------------

struct BenchOptions : bench::CommonOptions {
  uint64_t size_mib = 1024;
  bool cleaner_only = false;
  double churn_pct = 4;  // pages rewritten per snapshot of the cleaner run
  double live_pct = 70;  // live data as a share of the cleaner run's capacity
};

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: store_bench [--dir DIR] [--size-mib N] [--quick] [--reps N] [--strict] [--verbose]\n"
               "                   [--cleaner-only] [--churn-pct P] [--live-pct P]\n"
               "  --dir DIR      where the scratch directory goes (default /var/tmp)\n"
               "  --size-mib N   snapshot size (default 1024; 64 with --quick)\n"
               "  --quick        small sizes, a few seconds: the smoke test\n"
               "  --reps N       repetitions of the full-snapshot runs (default 5; 3 with --quick)\n"
               "  --strict       exit 1 when a target is missed\n"
               "  --verbose      the store's stats after every snapshot of the cleaner run\n"
               "  --cleaner-only only the cleaner run (its throughput limit is then not measured)\n"
               "  --churn-pct P  percent of the pages each snapshot of the cleaner run rewrites (default 4)\n"
               "  --live-pct P   live data as a percent of the cleaner run's capacity (default 70)\n");
  std::exit(code);
}

BenchOptions parse_options(int argc, char** argv) {
  BenchOptions o;
  bool size_given = false, live_given = false;
  bench::parse_common(argc, argv, o, usage, [&](const std::string& a, const auto& next) {
    if (a == "--size-mib") o.size_mib = std::stoull(next()), size_given = true;
    else if (a == "--cleaner-only") o.cleaner_only = true;
    else if (a == "--churn-pct") o.churn_pct = std::clamp(std::stod(next()), 0.01, 100.0);
    else if (a == "--live-pct") o.live_pct = std::clamp(std::stod(next()), 10.0, 95.0), live_given = true;
    else return false;
    return true;
  });
  if (o.quick && !size_given) o.size_mib = 64;
  // The smoke run's cleaner uses 1 MiB segments (92 of them at 64 MiB): at 70% live it
  // sometimes ran out of space under load (the packing of segments depends on
  // which worker finishes first). The full run keeps 70% with 4 MiB segments.
  if (o.quick && !live_given) o.live_pct = 60;
  if (o.reps == 0) o.reps = o.quick ? 3 : 5;
  if (o.size_mib < 8) o.size_mib = 8;
  return o;
}

// --- the machine ---------------------------------------------------------------

void print_machine(const BenchOptions& o, const std::string& scratch, int argc, char** argv) {
  std::string mem = bench::first_line_with("/proc/meminfo", "MemTotal:");
  bench::print_machine(argc, argv, mem.empty() ? "?" : mem.substr(9 + mem.substr(9).find_first_not_of(' ')),
                       scratch);
  fmt::print("sizes        snapshot {} MiB ({} pages), {} repetitions{}\n\n", o.size_mib,
             o.size_mib * kMiB / kPageSize, o.reps, o.quick ? ", --quick" : "");
}

// --- page contents ---------------------------------------------------------------

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void fill_random(uint8_t* p, size_t n, uint64_t seed) {
  uint64_t s = seed;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = splitmix64(s);
    std::memcpy(p + i, &v, 8);
  }
}

// Page contents as the test wants them: random, or half random and half zero
// (about 2:1 for lz4 and zstd, like a typical heap page).
void fill_pages(uint8_t* p, uint64_t pages, uint64_t seed, bool half_zero) {
  for (uint64_t i = 0; i < pages; ++i) {
    uint8_t* page = p + i * kPageSize;
    fill_random(page, half_zero ? kPageSize / 2 : kPageSize, seed * 0x100000001b3ull + i);
    if (half_zero) std::memset(page + kPageSize / 2, 0, kPageSize / 2);
  }
}

// A page-aligned buffer, touched so page faults stay out of the timings.
struct PageBuffer {
  explicit PageBuffer(uint64_t pages) : pages(pages) {
    data = static_cast<uint8_t*>(std::aligned_alloc(kPageSize, pages * kPageSize));
    if (!data) fail("out of memory for the page buffer");
  }
  ~PageBuffer() { std::free(data); }
  PageBuffer(const PageBuffer&) = delete;
  std::span<const uint8_t, kPageSize> page(uint64_t i) const {
    return std::span<const uint8_t, kPageSize>(data + i * kPageSize, kPageSize);
  }
  uint8_t* data;
  uint64_t pages;
};

// k distinct page numbers out of n, in ascending order (a dump writes in vpn order).
std::vector<uint64_t> random_pages(uint64_t n, uint64_t k, std::mt19937_64& rng) {
  std::vector<uint64_t> all(n);
  for (uint64_t i = 0; i < n; ++i) all[i] = i;
  for (uint64_t i = 0; i < k; ++i) std::swap(all[i], all[i + rng() % (n - i)]);
  all.resize(k);
  std::sort(all.begin(), all.end());
  return all;
}

// --- raw sequential write: the limit for snapshot throughput ------------------------

uint64_t allocated_bytes(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return uint64_t(st.st_blocks) * 512;
}

// How the raw baseline gets its disk space, to match how the store gets its own.
enum class Prealloc {
  kWhole,      // fallocate the whole file first, untimed (a store that reserves its capacity at create)
  kPerChunk,   // fallocate each 4 MiB chunk just before writing it, timed (a store that reserves segments as it goes)
};

const char* prealloc_name(Prealloc p) {
  return p == Prealloc::kWhole ? "whole file fallocated first" : "fallocate per 4 MiB chunk";
}

// Writes buf to a fresh file in 4 MiB pwrites and fdatasyncs it; returns the
// seconds of writes (and per-chunk fallocates) + sync.
double raw_write(const std::string& path, const PageBuffer& buf, Prealloc prealloc, bool keep = false,
                 double* cpu = nullptr) {
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail("open " + path + ": " + std::strerror(errno));
  uint64_t bytes = buf.pages * kPageSize;
  auto reserve = [&](uint64_t off, uint64_t n) {
    if (::fallocate(fd, 0, off_t(off), off_t(n)) != 0) fail("fallocate " + path + ": " + std::strerror(errno));
  };
  if (prealloc == Prealloc::kWhole) reserve(0, bytes);
  constexpr uint64_t kChunk = 4 * kMiB;
  double c0 = cpu_seconds();
  auto t0 = Clock::now();
  for (uint64_t off = 0; off < bytes; off += kChunk) {
    uint64_t n = std::min(kChunk, bytes - off);
    if (prealloc == Prealloc::kPerChunk) reserve(off, n);
    if (::pwrite(fd, buf.data + off, n, off_t(off)) != ssize_t(n)) fail("pwrite " + path + ": " + std::strerror(errno));
  }
  if (::fdatasync(fd) != 0) fail("fdatasync " + path + ": " + std::strerror(errno));
  double s = seconds_since(t0);
  if (cpu) *cpu = cpu_seconds() - c0;
  ::close(fd);
  if (!keep) ::unlink(path.c_str());
  return s;
}

// --- full snapshots ----------------------------------------------------------------

struct FullRun {
  double seconds = 0;
  double cpu = 0;
  uint64_t bytes_written = 0;
  SnapshotId id = 0;
};

StoreOptions full_options(uint64_t snapshot_bytes, Codec codec) {
  StoreOptions o;
  o.compression = codec;
  o.segment_size = 4 * kMiB;
  // Room for the snapshot, its index and the incrementals with more than
  // gc_target_free to spare, so the cleaner never runs during the timing.
  o.capacity = align_up(snapshot_bytes * 3 / 2 + 64 * kMiB, o.segment_size);
  o.default_retention = 64;
  return o;
}

FullRun write_full(Store& store, const PageBuffer& buf, const std::string& owner) {
  std::vector<uint8_t> meta(1024, 0x5a);
  FullRun run;
  double c0 = cpu_seconds();
  auto t0 = Clock::now();
  auto w = check(store.begin_snapshot(owner), "begin full snapshot");
  // The way the dumper hands pages over: runs of 1 MiB, as process_vm_readv reads them.
  constexpr uint64_t kRun = 256;
  for (uint64_t i = 0; i < buf.pages; i += kRun) {
    uint64_t n = std::min(kRun, buf.pages - i);
    check(w->put_pages(i, std::span<const uint8_t>(buf.page(i).data(), n * kPageSize)), "put_pages");
  }
  check(w->put_meta(meta), "put_meta");
  run.id = check(w->commit(), "commit full snapshot");
  run.seconds = seconds_since(t0);
  run.cpu = cpu_seconds() - c0;
  run.bytes_written = check(store.info(run.id), "info").bytes_written;
  return run;
}

// Spot-checks that a snapshot holds what was written (a fast store that loses
// pages must not pass).
void verify_sample(const Store& store, SnapshotId id, const PageBuffer& buf, uint64_t samples, uint64_t seed) {
  std::mt19937_64 rng(seed);
  alignas(64) uint8_t page[kPageSize];
  for (uint64_t i = 0; i < samples; ++i) {
    uint64_t vpn = rng() % buf.pages;
    bool present = check(store.read_page(id, vpn, std::span<uint8_t, kPageSize>(page, kPageSize)), "read_page");
    if (!present || std::memcmp(page, buf.page(vpn).data(), kPageSize) != 0)
      fail(fmt::format("snapshot {} page {} differs from what was written", id, vpn));
  }
}

struct FullResults {
  std::vector<double> raw_whole, raw_chunk, none, lz4, zstd;
  std::vector<double> lz4_bytes, zstd_bytes;  // stored / logical
  std::vector<double> cpu_raw, cpu_none, cpu_lz4, cpu_zstd;  // CPU seconds per run
  bool store_preallocates = false;
  std::unique_ptr<Store> kept;  // last kNone store, for the incremental and read tests
  FullRun kept_run;
};

std::unique_ptr<Store> create_store(const std::string& path, const StoreOptions& o) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  return check(Store::create(path, o), "create store " + path);
}

double run_store_full(const std::string& path, const PageBuffer& buf, Codec codec, FullResults& r,
                      bool keep, double* stored_ratio, std::vector<double>& cpu) {
  uint64_t bytes = buf.pages * kPageSize;
  auto store = create_store(path, full_options(bytes, codec));
  // Preallocated "the same way": if create() reserved the capacity, the raw
  // baseline fallocates too.
  if (codec == Codec::kNone) r.store_preallocates = allocated_bytes(path) >= bytes;
  FullRun run = write_full(*store, buf, "full");
  cpu.push_back(run.cpu);
  if (stored_ratio) *stored_ratio = double(run.bytes_written) / double(bytes);
  if (keep) {
    r.kept = std::move(store);
    r.kept_run = run;
  } else {
    verify_sample(*store, run.id, buf, 64, 1);
    store.reset();
    std::filesystem::remove(path);
  }
  return run.seconds;
}

void bench_full(const BenchOptions& o, const std::string& dir, const PageBuffer& random,
                const PageBuffer& half, FullResults& r) {
  fmt::print("full snapshots: {} reps of raw write (fallocate per chunk, whole file), store none / lz4 / zstd\n",
             o.reps);
  for (int rep = 0; rep < o.reps; ++rep) {
    bool last = rep + 1 == o.reps;
    double s_none = run_store_full(dir + "/full-none.store", random, Codec::kNone, r, last, nullptr, r.cpu_none);
    r.none.push_back(s_none);
    double cpu = 0;
    r.raw_chunk.push_back(raw_write(dir + "/raw.dat", random, Prealloc::kPerChunk, last, &cpu));
    r.cpu_raw.push_back(cpu);
    r.raw_whole.push_back(raw_write(dir + "/raw-whole.dat", random, Prealloc::kWhole));
    double ratio = 0;
    r.lz4.push_back(run_store_full(dir + "/full-lz4.store", half, Codec::kLz4, r, false, &ratio, r.cpu_lz4));
    r.lz4_bytes.push_back(ratio);
    r.zstd.push_back(run_store_full(dir + "/full-zstd.store", half, Codec::kZstd, r, false, &ratio, r.cpu_zstd));
    r.zstd_bytes.push_back(ratio);
    fmt::print("  rep {}: raw {:.3f} s (per chunk) / {:.3f} s (whole), store none {:.3f} s, lz4 {:.3f} s, "
               "zstd {:.3f} s\n", rep + 1, r.raw_chunk.back(), r.raw_whole.back(), s_none, r.lz4.back(), r.zstd.back());
    std::fflush(stdout);
  }
  verify_sample(*r.kept, r.kept_run.id, random, 256, 2);
}

// The raw write matching how the store got its space, and the other one.
const std::vector<double>& raw_limit(const FullResults& r) {
  return r.store_preallocates ? r.raw_whole : r.raw_chunk;
}

void report_full(const PageBuffer& buf, const FullResults& r) {
  double bytes = double(buf.pages * kPageSize);
  const auto& raw = raw_limit(r);
  const auto& other = r.store_preallocates ? r.raw_chunk : r.raw_whole;
  std::string limit = fmt::format("raw write+fdatasync {:.0f} MB/s", bytes / median(raw) / 1e6);
  fmt::print("  the store {}: the raw limit uses {}\n",
             r.store_preallocates ? "reserved its capacity at create" : "reserves space as it writes",
             prealloc_name(r.store_preallocates ? Prealloc::kWhole : Prealloc::kPerChunk));
  auto line = [&](const std::string& name, const std::vector<double>& secs, bool has_target) {
    double ratio = median(raw) / median(secs);
    add_row({name, spread(bench::mbps(bytes, secs), 1, "MB/s"), limit, ratio, has_target ? ">= 0.85" : "",
             has_target ? std::optional<bool>(ratio >= 0.85) : std::nullopt});
  };
  line("full snapshot, random pages, no codec", r.none, true);
  line("full snapshot, half-zero pages, lz4", r.lz4, true);
  line("full snapshot, half-zero pages, zstd-1", r.zstd, false);
  add_row({"  lz4 / zstd stored bytes / logical", fmt::format("{:.3f} / {:.3f}", median(r.lz4_bytes),
           median(r.zstd_bytes)), "", NAN, "", std::nullopt});
  double gib = bytes / double(1ull << 30);
  add_row({"  CPU s/GiB: store none / lz4 / zstd",
           fmt::format("{:.2f} / {:.2f} / {:.2f}", median(r.cpu_none) / gib, median(r.cpu_lz4) / gib,
                       median(r.cpu_zstd) / gib),
           fmt::format("raw write {:.2f} s/GiB", median(r.cpu_raw) / gib), median(r.cpu_none) / median(r.cpu_raw), "",
           std::nullopt});
  add_row({fmt::format("  raw, {}", prealloc_name(r.store_preallocates ? Prealloc::kPerChunk : Prealloc::kWhole)),
           spread(bench::mbps(bytes, other), 1, "MB/s"), limit, median(raw) / median(other), "", std::nullopt});
}

// --- incremental snapshots ---------------------------------------------------------------

void bench_incremental(const BenchOptions& o, FullResults& full) {
  Store& store = *full.kept;
  uint64_t pages = o.size_mib * kMiB / kPageSize;
  uint64_t changed = std::max<uint64_t>(1, pages / 100);
  int reps = std::max(5, o.reps);
  fmt::print("incremental snapshots: {} reps of {} changed pages (1%), parent = the full snapshot\n", reps, changed);
  std::mt19937_64 rng(42);
  PageBuffer fresh(changed);
  std::vector<double> secs, bytes;
  for (int rep = 0; rep < reps; ++rep) {
    auto vpns = random_pages(pages, changed, rng);
    fill_pages(fresh.data, changed, 1000 + rep, false);
    auto t0 = Clock::now();
    auto w = check(store.begin_snapshot("full", full.kept_run.id), "begin incremental snapshot");
    for (uint64_t i = 0; i < changed; ++i) check(w->put_page(vpns[i], fresh.page(i)), "put_page");
    SnapshotId id = check(w->commit(), "commit incremental snapshot");
    secs.push_back(seconds_since(t0));
    bytes.push_back(double(check(store.info(id), "info").bytes_written));
    // The changed pages are new, the others still the parent's.
    alignas(64) uint8_t page[kPageSize];
    auto out = std::span<uint8_t, kPageSize>(page, kPageSize);
    for (uint64_t i = 0; i < changed; i += std::max<uint64_t>(1, changed / 32)) {
      if (!check(store.read_page(id, vpns[i], out), "read_page") ||
          std::memcmp(page, fresh.page(i).data(), kPageSize) != 0)
        fail(fmt::format("incremental snapshot {} page {} is not the new page", id, vpns[i]));
    }
  }
  double full_s = median(full.none), full_b = double(full.kept_run.bytes_written);
  double t_ratio = median(secs) / full_s, b_ratio = median(bytes) / full_b;
  add_row({"incremental 1%: time / full", spread(secs, 1e3, "ms", 1), fmt::format("full {:.0f} ms", full_s * 1e3),
           t_ratio, "<= 0.03", t_ratio <= 0.03});
  add_row({"incremental 1%: bytes written / full", spread(bytes, 1.0 / kMiB, "MiB", 1),
           fmt::format("full {:.0f} MiB", full_b / kMiB), b_ratio, "<= 0.03", b_ratio <= 0.03});
}

// --- reads ------------------------------------------------------------------------------

// Seconds per page of n random read_page calls (per thread, threads at once).
double time_reads(const std::function<void(uint64_t vpn, uint8_t* page)>& read, uint64_t pages, uint64_t n,
                  int threads) {
  std::atomic<int> ready{0};
  std::vector<double> per(threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(7 + t);
      std::vector<uint64_t> vpns(n);
      for (auto& v : vpns) v = rng() % pages;
      alignas(64) uint8_t page[kPageSize];
      ready++;
      while (ready.load() < threads) {}
      auto t0 = Clock::now();
      uint64_t sink = 0;
      for (uint64_t v : vpns) {
        read(v, page);
        sink += page[v % kPageSize];
      }
      per[t] = seconds_since(t0) / double(n);
      if (sink == 0xdeadbeef) std::fprintf(stderr, " ");
    });
  }
  for (auto& t : ts) t.join();
  return median(per);
}

void bench_reads(const BenchOptions& o, const std::string& dir, const PageBuffer& buf, FullResults& full) {
  const Store& store = *full.kept;
  SnapshotId id = full.kept_run.id;
  uint64_t n = o.quick ? 20000 : 200000;
  fmt::print("reads: {} random read_page per thread, hot cache (after a checked warm-up pass)\n", n);
  verify_sample(store, id, buf, std::min<uint64_t>(buf.pages, n), 3);  // warms the cache, checks content

  auto store_read = [&](uint64_t vpn, uint8_t* page) {
    auto r = store.read_page(id, vpn, std::span<uint8_t, kPageSize>(page, kPageSize));
    if (!r.ok() || !*r) fail("read_page during the timed pass");
  };
  std::string raw_path = dir + "/raw.dat";
  int fd = ::open(raw_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open " + raw_path);
  auto raw_read = [&](uint64_t vpn, uint8_t* page) {
    if (::pread(fd, page, kPageSize, off_t(vpn * kPageSize)) != ssize_t(kPageSize)) fail("pread raw file");
  };
  time_reads(raw_read, buf.pages, n / 4, 1);  // warm the raw file's page cache
  for (int threads : {1, 2}) {
    std::vector<double> s, r;
    for (int rep = 0; rep < 3; ++rep) {
      s.push_back(time_reads(store_read, buf.pages, n, threads));
      r.push_back(time_reads(raw_read, buf.pages, n, threads));
    }
    add_row({fmt::format("read_page random, hot, {} thread{}", threads, threads > 1 ? "s" : ""),
             spread(s, 1e6, "us/page", 2), fmt::format("raw 4 KiB pread {:.2f} us", median(r) * 1e6),
             median(s) / median(r), "", std::nullopt});
  }
  ::close(fd);
  ::unlink(raw_path.c_str());
}

// --- the cleaner -------------------------------------------------------------------------

// Page contents are a function of (vpn, version), so the final snapshot can be
// checked page by page without keeping a copy.
void version_page(uint8_t* page, uint64_t vpn, uint32_t version) {
  fill_random(page, kPageSize, (vpn << 20) ^ version ^ 0xc1ea4e7ull);
}

// One incremental snapshot of the churning owner rewriting vpns, each page at
// its next version.
Result<SnapshotId> overwrite_snapshot(Store& store, SnapshotId parent, const std::vector<uint64_t>& vpns,
                                      const std::vector<uint32_t>& version) {
  alignas(64) uint8_t page[kPageSize];
  FROST_ASSIGN(auto w, store.begin_snapshot("churn", parent));
  for (uint64_t v : vpns) {
    version_page(page, v, version[v] + 1);
    FROST_TRY(w->put_page(v, std::span<const uint8_t, kPageSize>(page, kPageSize)));
  }
  return w->commit();
}

struct CleanerSample {
  double space_ratio;   // used segments x segment size / live bytes
  double file_ratio;    // file bytes / live bytes
};

// Returns false when the store failed under the load (the row says how).
bool bench_cleaner(const BenchOptions& o, const std::string& dir, double raw_mbps) {
  StoreOptions so;
  so.segment_size = o.quick ? 1 * kMiB : 4 * kMiB;
  so.default_retention = 1;
  uint64_t pages = o.size_mib * kMiB / kPageSize;
  // Live data (pages plus about 0.4% of index) is 70% of the capacity.
  so.capacity = align_up(uint64_t(double(pages * kPageSize) * 1.004 / (o.live_pct / 100)), so.segment_size);
  uint64_t per_snapshot = std::max<uint64_t>(1, uint64_t(double(pages) * o.churn_pct / 100));
  uint64_t overwrite_goal = 3 * so.capacity;                  // new bytes after the fill
  uint64_t steady_from = so.capacity;                         // ignore the first pass
  fmt::print("cleaner: {} MiB live in {} MiB capacity ({} MiB segments), retention 1, {} random pages ({}%) per\n"
             "  incremental snapshot, until {} MiB of new pages have been written\n",
             o.size_mib, so.capacity / kMiB, so.segment_size / kMiB, per_snapshot, o.churn_pct, overwrite_goal / kMiB);

  std::string path = dir + "/cleaner.store";
  auto store = create_store(path, so);
  std::vector<uint32_t> version(pages, 0);
  alignas(64) uint8_t page[kPageSize];
  auto span = std::span<const uint8_t, kPageSize>(page, kPageSize);

  auto w = check(store->begin_snapshot("churn"), "begin cleaner fill");
  for (uint64_t v = 0; v < pages; ++v) {
    version_page(page, v, 0);
    check(w->put_page(v, span), "put_page");
  }
  SnapshotId last = check(w->commit(), "commit cleaner fill");
  StoreStats s0 = store->stats();
  fmt::print("  after the fill: live {:.1f} MiB = {:.3f} of capacity, {} of {} segments used\n",
             s0.live_bytes / double(kMiB), double(s0.live_bytes) / double(so.capacity), s0.segments_used,
             s0.segments_total);

  std::mt19937_64 rng(99);
  std::vector<CleanerSample> samples;
  std::optional<StoreStats> steady0;
  Clock::time_point steady_t0;
  uint64_t new_bytes = 0, explicit_gcs = 0, snapshots = 0;
  double deadline = o.quick ? 10 : 900;
  auto t_start = Clock::now();
  while (new_bytes < overwrite_goal) {
    if (seconds_since(t_start) > deadline) {
      fmt::print("  stopped after {:.0f} s: the store is too slow to finish the cleaner run\n", deadline);
      break;
    }
    auto vpns = random_pages(pages, per_snapshot, rng);
    auto id = overwrite_snapshot(*store, last, vpns, version);
    if (!id.ok() && id.error().is(ErrorKind::kNoSpace)) {
      // The automatic cleaner fell behind: clean by hand and try once more.
      explicit_gcs++;
      GcReport g = check(store->gc(), "gc after running out of space");
      fmt::print("  out of space after {} MiB new: explicit gc() cleaned {}, freed {} segments, copied {:.1f} MiB, "
                 "{} free after\n", new_bytes / kMiB, g.segments_cleaned, g.segments_freed,
                 g.bytes_copied / double(kMiB), g.segments_free_after);
      id = overwrite_snapshot(*store, last, vpns, version);
    }
    if (!id.ok()) {
      StoreStats st = store->stats();
      fmt::print("  FAILED after {} snapshots ({} MiB new): {}\n  stats: {} used / {} free of {} segments, live "
                 "{:.1f} MiB = {:.3f} of capacity, utilisation {:.3f}, {} cleaner runs, {} MiB cleaned\n",
                 snapshots, new_bytes / kMiB, id.error().to_string(), st.segments_used, st.segments_free,
                 st.segments_total, st.live_bytes / double(kMiB), double(st.live_bytes) / double(so.capacity),
                 st.utilisation, st.gc_runs, st.bytes_cleaned / kMiB);
      add_row({"cleaner: sustained overwrites", "FAILED: " + id.error().to_string().substr(0, 60),
               fmt::format("after {} MiB new", new_bytes / kMiB), NAN, "no error", false});
      return false;
    }
    last = id.value();
    for (uint64_t v : vpns) version[v]++;
    new_bytes += per_snapshot * kPageSize;
    snapshots++;
    StoreStats st = store->stats();
    if (o.verbose)
      fmt::print("  snapshot {:4}: {:4} used {:4} free, live {:.3f} of capacity, utilisation {:.3f}, "
                 "{} gc runs, write cost {:.3f}\n", snapshots, st.segments_used, st.segments_free,
                 double(st.live_bytes) / double(so.capacity), st.utilisation, st.gc_runs, st.write_cost);
    if (new_bytes >= steady_from) {
      if (!steady0) steady0 = st, steady_t0 = Clock::now();
      samples.push_back({double(st.segments_used * st.segment_size) / double(st.live_bytes),
                         double(st.file_bytes) / double(st.live_bytes)});
    }
  }
  double steady_s = seconds_since(steady_t0);
  StoreStats end = store->stats();

  // Every page of the newest snapshot must be its newest version.
  uint64_t seen = 0;
  check(store->for_each_page(last, [&](uint64_t vpn, std::span<const uint8_t, kPageSize> data) -> Status {
          alignas(64) uint8_t want[kPageSize];
          if (vpn >= pages) return Error::corruption(fmt::format("unexpected page {}", vpn));
          version_page(want, vpn, version[vpn]);
          if (std::memcmp(want, data.data(), kPageSize) != 0)
            return Error::corruption(fmt::format("page {} is not version {}", vpn, version[vpn]));
          seen++;
          return Status::Ok();
        }),
        "check the cleaner's final snapshot");
  if (seen != pages) fail(fmt::format("final snapshot has {} pages, wanted {}", seen, pages));

  if (!steady0 || samples.empty()) fail("the cleaner run never reached its steady state");
  double written = double(end.bytes_written - steady0->bytes_written);
  double fresh = double(end.bytes_new - steady0->bytes_new);
  double cleaned = double(end.bytes_cleaned - steady0->bytes_cleaned);
  double wc = written / fresh;
  std::vector<double> space, file;
  for (auto& s : samples) space.push_back(s.space_ratio), file.push_back(s.file_ratio);
  double space_max = *std::max_element(space.begin(), space.end());
  fmt::print("  {} snapshots, {} cleaner runs, {} explicit gc(); whole run: write cost {:.3f}, "
             "utilisation {:.3f}\n",
             snapshots, end.gc_runs, explicit_gcs, end.write_cost, end.utilisation);

  add_row({"cleaner: used segments / live bytes", fmt::format("{:.3f} [max {:.3f}]", median(space), space_max),
           fmt::format("live = {:.2f} of capacity", double(s0.live_bytes) / double(so.capacity)), space_max,
           "<= 1.5", space_max <= 1.5});
  add_row({"cleaner: file bytes / live bytes", fmt::format("{:.3f}", median(file)), "", median(file), "",
           std::nullopt});
  add_row({"cleaner: write cost, steady state", fmt::format("{:.3f} (copies {:.3f}, other {:.3f})", wc, cleaned / fresh,
                                                                  (written - cleaned - fresh) / fresh),
           "written / new bytes", wc, "<= 2.5", wc <= 2.5});
  double mbps = fresh / steady_s / 1e6;
  if (!std::isnan(raw_mbps))
    add_row({"cleaner: new-data throughput", fmt::format("{:.0f} MB/s", mbps),
           fmt::format("raw write+fdatasync {:.0f} MB/s", raw_mbps), mbps / raw_mbps, "", std::nullopt});
  store.reset();
  std::filesystem::remove(path);
  return true;
}

// --- main -----------------------------------------------------------------------------

// Full and incremental snapshots and reads; returns the raw write limit in MB/s.
double bench_snapshots(const BenchOptions& o, const std::string& dir, uint64_t pages) {
  auto t0 = Clock::now();
  PageBuffer random(pages), half(pages);
  fill_pages(random.data, pages, 1, false);
  fill_pages(half.data, pages, 2, true);
  fmt::print("generated {} + {} MiB of pages in {:.2f} s\n", o.size_mib, o.size_mib, seconds_since(t0));

  FullResults full;
  bench_full(o, dir, random, half, full);
  report_full(random, full);
  bench_incremental(o, full);
  bench_reads(o, dir, random, full);
  full.kept.reset();
  std::error_code ec;
  std::filesystem::remove(dir + "/full-none.store", ec);
  return double(pages * kPageSize) / median(raw_limit(full)) / 1e6;
}

void check_space(const std::string& dir, uint64_t size_bytes) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return;
  uint64_t avail = uint64_t(vfs.f_bavail) * vfs.f_frsize;
  // Worst moment: the kept full store, the raw file and one more full store.
  uint64_t need = size_bytes * 5 + 512 * kMiB;
  if (avail < need)
    fail(fmt::format("{} has {} MiB free, the run needs about {} MiB (try --size-mib or --dir)", dir,
                     avail / kMiB, need / kMiB));
}

int run(int argc, char** argv) {
  bench::set_program("store_bench");
  BenchOptions o = parse_options(argc, argv);
  std::string dir = bench::make_scratch(o.dir, "frost-bench-");
  bench::clean_up_on_exit(bench::remove_scratch);
  print_machine(o, dir, argc, argv);
  uint64_t pages = o.size_mib * kMiB / kPageSize;
  check_space(dir, pages * kPageSize);

  auto t0 = Clock::now();
  double raw_mbps = NAN;
  if (!o.cleaner_only) raw_mbps = bench_snapshots(o, dir, pages);
  bool store_ok = bench_cleaner(o, dir, raw_mbps);

  bool all = bench::print_table({40, 34, 40, 141});
  fmt::print("\n{} in {:.0f} s\n", !store_ok ? "the store FAILED" : all ? "all targets met" : "some targets MISSED",
             seconds_since(t0));
  if (!store_ok) return 2;
  return !all && o.strict ? 1 : 0;
}

}  // namespace
}  // namespace frost::store

int main(int argc, char** argv) { return frost::store::run(argc, argv); }
