// persist_bench: what it costs to keep a process persistent (issue 4). A
// process of S bytes (tests/programs/rewriter.c) rewrites a fraction of its
// pages every second, paced evenly, and counts CPU work units in between; it
// is snapshotted every second with a dirty tracker kept across captures, then
// frozen and melted. Each figure is a ratio against a limit or a target, from
// the same run on the same machine (the project's machines are shared and noisy).
//
//   persist_bench [--dir DIR] [--size 4G] [--fraction 0.01] [--phase S] [--rounds N]
//                 [--reps N] [--quick] [--strict] [--rewriter PATH] [--verbose]
//
// The S-byte process, one run:
//   U0  unobserved, before frost ever touched it (info)
//   a full snapshot, which arms the tracker (precopy)
//   rounds x { U: unobserved for --phase s;  O: a lead-in snapshot, then one
//              every second for --phase s }   -- every window samples the
//              process's counters (SIGUSR2) once a second, so U and O differ
//              only by the snapshots
//   right after the last snapshot: freeze with the tracker (incremental),
//   melt, check (SIGUSR1 -> PASS), freeze it again without a tracker (full),
//   melt, check, kill.
// A small process (64 MiB; 16 MiB with --quick) gets --reps runs of: full
// snapshot, incremental snapshot, then the same freeze/melt/check sequence.
//
// Figures: incremental snapshot bytes / bytes of pages the process wrote in
// its interval, its rewrites and the generation-array pages they touched
// (the rewriter counts both; <= 1.2); median pause of a force snapshot (<= 5 ms); work
// rate while snapshotted vs unobserved (slowdown <= 3%); melt until the
// process runs, small and S (<= 20 ms each, S / small <= 1.5); incremental
// vs full freeze of S (<= 0.1).
//
// Snapshots use CaptureOptions::precopy, and the periodic ones
// CaptureOptions::background as frostd's timer does. Melts are lazy (MeltOptions::lazy);
// the page server runs after the time is taken, while the process checks
// every page (so the check also reads pages that arrive on a fault).
//
// Files go to a new directory under DIR (default /var/tmp), removed at the
// end, also on SIGINT and SIGTERM; every process is killed and reaped by its
// PID. The bench is a child subreaper. Exit status: 0, 2 on any failure
// (a FAIL from a check included), 1 with --strict when a target is missed,
// 77 (skipped) without the privileges a melt needs.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "bench_common.h"
#include "common/unique_fd.h"
#include "dump/capture.h"
#include "dump/dirty_tracker.h"
#include "restore/melt.h"
#include "store/store.h"
#include "lazy/page_server.h"

#ifndef FROST_ST_REWRITER_PATH
#define FROST_ST_REWRITER_PATH "st_rewriter"
#endif

namespace frost::bench {
namespace {

constexpr uint64_t kPage = 4096;
constexpr int kSkipped = 77;  // ctest SKIP_RETURN_CODE
constexpr double kPauseTargetMs = 5;
constexpr double kMeltTargetMs = 20;

// --- options ---------------------------------------------------------------------------

struct Options : CommonOptions {
  uint64_t size = 4 * kGiB;
  uint64_t small = 64 * kMiB;
  double fraction = 0.01;
  int phase_s = 10;
  int rounds = 2;
  std::string rewriter = FROST_ST_REWRITER_PATH;
};

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: persist_bench [--dir DIR] [--size SIZE] [--fraction F] [--phase S] [--rounds N] [--reps N]\n"
               "                     [--quick] [--strict] [--rewriter PATH] [--verbose]\n"
               "  --dir DIR       where the scratch directory (stores, output) goes (default /var/tmp)\n"
               "  --size SIZE     the persistent process's memory, M or G suffix (default 4G)\n"
               "  --fraction F    pages it rewrites per second (default 0.01)\n"
               "  --phase S       seconds of each unobserved and observed window (default 10)\n"
               "  --rounds N      unobserved/observed pairs (default 2)\n"
               "  --reps N        runs of the small (64 MiB) freeze/melt sequence (default 3)\n"
               "  --quick         64 MiB (small: 16 MiB), 2 s windows, 2 reps: the smoke test\n"
               "  --strict        exit 1 when a target is missed\n"
               "  --rewriter P    the st_rewriter binary (default: the one built with the bench)\n"
               "  --verbose       print every snapshot\n");
  std::exit(code);
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool size_given = false;
  try {
    parse_common(argc, argv, o, usage, [&](const std::string& a, const auto& next) {
      if (a == "--size") {
        auto v = parse_bytes(next());
        if (!v || *v < kMiB) usage(2);
        o.size = *v / kPage * kPage;
        size_given = true;
      } else if (a == "--fraction") {
        o.fraction = std::stod(next());
      } else if (a == "--phase") {
        o.phase_s = std::max(1, std::stoi(next()));
      } else if (a == "--rounds") {
        o.rounds = std::max(1, std::stoi(next()));
      } else if (a == "--rewriter") {
        o.rewriter = next();
      } else {
        return false;
      }
      return true;
    });
  } catch (const std::exception&) {  // a number that is not one
    usage(2);
  }
  if (!(o.fraction > 0 && o.fraction <= 1)) usage(2);
  if (o.quick) {
    if (!size_given) o.size = 64 * kMiB;
    o.phase_s = std::min(o.phase_s, 2);
    if (o.reps == 0) o.reps = 2;
  }
  if (o.reps == 0) o.reps = 3;
  o.small = o.size > 64 * kMiB ? 64 * kMiB : std::max<uint64_t>(kMiB, o.size / 4);
  return o;
}

void cleanup() {
  kill_tracked();
  remove_scratch();
}

// Runs the page server of a lazy melt until every page is in, on this (the
// melting) thread; false when nothing was left to page in.
bool serve_pages(restore::MeltResult& r, uint64_t* faulted) {
  if (r.pager == nullptr) return false;
  check(r.pager->run(), "serving the melted process's pages");
  *faulted = r.pager->pages_faulted();
  return true;
}

// --- the rewriter process ------------------------------------------------------------------

std::string g_rewriter_exe;  // the copy in the scratch directory

// Between fork and exec: async-signal-safe calls only (the store's worker
// threads may hold locks). 0 is /dev/null, 1 and 2 the output file (frost
// restores both), nothing else stays open.
[[noreturn]] void exec_rewriter(int null_fd, int out_fd, pid_t parent, char* const argv[]) {
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  if (::dup2(null_fd, 0) != 0 || ::dup2(out_fd, 1) != 1 || ::dup2(out_fd, 2) != 2) ::_exit(1);
  ::syscall(SYS_close_range, 3u, ~0u, 0u);
  ::execv(argv[0], argv);
  ::_exit(127);
}

struct Counters {  // one STATS line
  uint64_t work = 0, rewrites = 0;
  double t = 0;
  uint64_t gen_pages = 0;  // generation-array pages written since the STATS line before
};

class Rewriter {
 public:
  Rewriter(const std::string& dir, const std::string& tag, uint64_t bytes, double fraction)
      : bytes_(bytes), out_path_(dir + "/" + tag + ".out") {
    UniqueFd out(::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
    UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!out || !null_fd) fail("opening " + out_path_ + " or /dev/null: " + std::strerror(errno));
    std::string a_exe = g_rewriter_exe, a_size = fmt::format("{}K", bytes / 1024), a_frac = fmt::format("{}", fraction);
    char* argv[] = {a_exe.data(), a_size.data(), a_frac.data(), nullptr};
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) fail(fmt::format("fork: {}", std::strerror(errno)));
    if (pid_ == 0) exec_rewriter(null_fd.get(), out.get(), parent, argv);
    track(pid_);
    in_ = UniqueFd(::open(out_path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in_) fail("opening " + out_path_ + ": " + std::strerror(errno));
    std::string ready = wait_line({"READY "}, 600, "READY");
    if (ready != fmt::format("READY {}", pid_)) fail(fmt::format("rewriter {} said '{}'", pid_, ready));
  }

  pid_t pid() const { return pid_; }
  uint64_t pages() const { return bytes_ / kPage; }

  // Its counters now (SIGUSR2 -> STATS line).
  Counters stats() {
    signal(SIGUSR2);
    std::string line = wait_line({"STATS "}, 30, "STATS");
    Counters c;
    unsigned long long w = 0, r = 0;
    if (std::sscanf(line.c_str(), "STATS work=%llu rewrites=%llu t=%lf", &w, &r, &c.t) != 3)
      fail(fmt::format("rewriter {}: unexpected '{}'", pid_, line));
    c.work = w;
    c.rewrites = r;
    unsigned long long g = 0;
    if (const char* at = std::strstr(line.c_str(), " genpages="); at && std::sscanf(at, " genpages=%llu", &g) == 1)
      c.gen_pages = g;
    return c;
  }

  // Starts the full check of its memory (SIGUSR1).
  void ask_check() { signal(SIGUSR1); }

  // The check's answer: every page, at a generation of at least min_gen (the
  // rewrites it had made before the image was taken); returns the generation.
  uint64_t check_passed(uint64_t min_gen, const std::string& when) {
    std::string line = wait_line({"PASS ", "FAIL"}, 900, "PASS/FAIL");
    unsigned long long pages = 0, gen = 0;
    if (std::sscanf(line.c_str(), "PASS verified %llu pages gen %llu", &pages, &gen) != 2)
      fail(fmt::format("{}: the process {} says: {}", when, pid_, line));
    if (pages != this->pages() || gen < min_gen)
      fail(fmt::format("{}: the process {} checked {} pages at generation {}, expected {} at {} or more", when, pid_,
                       pages, gen, this->pages(), min_gen));
    return gen;
  }

  // Kills and reaps it; it must still be running.
  void end() {
    if (pid_ > 0) kill_and_reap(pid_, "the rewriter");
    pid_ = 0;
  }
  // After a freeze: capture() reaped it; anything but our SIGKILL is a failure.
  void frozen() {
    if (auto st = reap(pid_); st && !(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL))
      fail(fmt::format("frozen process {} ended with status {:#x}, not SIGKILL", pid_, *st));
  }
  void melted(pid_t pid) {
    if (pid != pid_) fail(fmt::format("melted as pid {}, frozen as {}", pid, pid_));
    track(pid);
  }

 private:
  void signal(int sig) {
    if (::kill(pid_, sig) != 0) fail(fmt::format("kill({}, {}): {}", pid_, sig, std::strerror(errno)));
  }

  // The next whole line of its output that starts with one of prefixes;
  // fails when it ends or is silent for timeout_s.
  std::string wait_line(std::initializer_list<const char*> prefixes, double timeout_s, const char* what) {
    auto t0 = Clock::now();
    for (;;) {
      char buf[4096];
      ssize_t n;
      while ((n = ::pread(in_.get(), buf, sizeof buf, off_t(read_at_))) > 0) {
        pending_.append(buf, size_t(n));
        read_at_ += uint64_t(n);
      }
      for (size_t nl; (nl = pending_.find('\n')) != std::string::npos;) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        for (const char* p : prefixes)
          if (line.rfind(p, 0) == 0) return line;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG | __WALL) == pid_) {
        untrack(pid_);
        fail(fmt::format("the rewriter {} ended (status {:#x}) while we waited for {}; its output: {}", pid_, status,
                         what, out_path_));
      }
      if (seconds_since(t0) > timeout_s)
        fail(fmt::format("the rewriter {} gave no {} in {:.0f} s; its output: {}", pid_, what, timeout_s, out_path_));
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  }

  pid_t pid_ = 0;
  uint64_t bytes_;
  std::string out_path_;
  UniqueFd in_;
  uint64_t read_at_ = 0;
  std::string pending_;
};

void install_rewriter(const std::string& from, const std::string& dir) {
  g_rewriter_exe = dir + "/st_rewriter";
  std::error_code ec;
  std::filesystem::copy_file(from, g_rewriter_exe, ec);
  if (ec) fail("copying the rewriter " + from + " to " + g_rewriter_exe + ": " + ec.message() + " (see --rewriter)");
  ::chmod(g_rewriter_exe.c_str(), 0700);
}

// --- stores and captures -----------------------------------------------------------------

store::StoreOptions store_options(uint64_t capacity) {
  store::StoreOptions so;
  so.segment_size = 4 * kMiB;
  so.capacity = (capacity + so.segment_size - 1) / so.segment_size * so.segment_size;
  so.default_retention = 4;
  return so;
}

// Room for two full images, the snapshots in between and the cleaner's free target.
uint64_t store_capacity(uint64_t bytes) { return bytes * 3 + 512 * kMiB; }

std::unique_ptr<store::Store> new_store(const std::string& path, uint64_t bytes) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  return check(store::Store::create(path, store_options(store_capacity(bytes))), "create store " + path);
}

// Seconds for the store alone to commit a snapshot of one page and 4 KiB of
// metadata (its fdatasync included): the part of a pause no copy can shrink
// while the process is held until the commit. Median of 7, on a new store.
double time_tiny_commit(const std::string& path) {
  auto store = new_store(path, 64 * kMiB);
  std::vector<uint8_t> page(kPage, 0x5a), meta(kPage, 0xa5);
  std::vector<double> t;
  for (int i = 0; i < 7; ++i) {
    page[0] = uint8_t(i);
    auto t0 = Clock::now();
    auto w = check(store->begin_snapshot("probe"), "begin_snapshot");
    check(w->put_pages(uint64_t(i), std::span<const uint8_t>(page)), "put_pages");
    check(w->put_meta(meta), "put_meta");
    check(w->commit(), "commit");
    t.push_back(seconds_since(t0));
  }
  store.reset();
  std::error_code ec;
  std::filesystem::remove(path, ec);
  return median(t);
}

struct Timed {
  dump::CaptureResult r;
  double wall_s = 0;
};

// periodic: a snapshot of the 1 s cycle, made in the background as frostd's timer makes it.
Timed capture(pid_t pid, store::Store& store, const std::string& name, dump::CaptureMode mode,
              std::unique_ptr<dump::DirtyTracker>* tracker, bool periodic = false) {
  dump::CaptureOptions co;
  co.name = name;
  co.mode = mode;
  co.tracker = tracker;
  co.precopy = tracker != nullptr && mode == dump::CaptureMode::kSnapshot;
  co.background = periodic;
  auto t0 = Clock::now();
  Timed t{check(dump::capture(pid, store, co),
                fmt::format("{} of process {}", mode == dump::CaptureMode::kFreeze ? "freeze" : "snapshot", pid)),
          0};
  t.wall_s = seconds_since(t0);
  if (!t.r.full_copy_reason.empty()) fail("the snapshots cannot be incremental here: " + t.r.full_copy_reason);
  return t;
}

// --- observing the big process ------------------------------------------------------------

struct Window {  // counters at both ends
  Counters a, b;
  double work_rate() const { return double(b.work - a.work) / (b.t - a.t); }
  double rewrite_rate() const { return double(b.rewrites - a.rewrites) / (b.t - a.t); }
};

struct Snap {
  Timed c;
  uint64_t rewritten = 0;  // pages the process rewrote since the snapshot before
  double interval_s = 0;   // since the snapshot before (the process's clock)
  uint64_t gen_pages = 0;  // pages of its generation array it wrote meanwhile
  // Every page the process wrote in the interval (its stack and globals aside).
  uint64_t written() const { return rewritten + gen_pages; }
};

void sleep_until(Clock::time_point t) { std::this_thread::sleep_until(t); }

// The process alone, its counters sampled once a second.
Window unobserved(Rewriter& rw, int seconds) {
  Window w;
  w.a = rw.stats();
  auto t0 = Clock::now();
  for (int k = 1; k <= seconds; ++k) {
    sleep_until(t0 + std::chrono::seconds(k));
    w.b = rw.stats();
  }
  return w;
}

// A lead-in snapshot (it takes what the unobserved window wrote), then one a
// second, the counters sampled after each. *last: the counters right after
// the snapshot before, updated.
Window observed(Rewriter& rw, store::Store& store, std::unique_ptr<dump::DirtyTracker>& tracker, int seconds,
                Counters* last_snapshot, std::vector<Snap>* snaps, std::vector<Snap>* lead_ins, bool verbose) {
  Timed lead = capture(rw.pid(), store, "rw", dump::CaptureMode::kSnapshot, &tracker, true);
  Window w;
  w.a = rw.stats();
  lead_ins->push_back({lead, w.a.rewrites - last_snapshot->rewrites, w.a.t - last_snapshot->t, w.a.gen_pages});
  Counters& last = *last_snapshot;
  last = w.a;
  auto t0 = Clock::now();
  for (int k = 1; k <= seconds; ++k) {
    sleep_until(t0 + std::chrono::seconds(k));
    Timed c = capture(rw.pid(), store, "rw", dump::CaptureMode::kSnapshot, &tracker, true);
    w.b = rw.stats();
    if (c.r.parent == 0) fail("a snapshot with the tracker was not incremental");
    snaps->push_back({c, w.b.rewrites - last.rewrites, w.b.t - last.t, w.b.gen_pages});
    if (verbose)
      fmt::print("    snapshot {}: {} pages ({} in {} precopy rounds), {:.2f} MiB stored, stopped {:.1f} ms, "
                 "{:.0f} ms in all; the process wrote {} pages\n",
                 c.r.snapshot, c.r.pages, c.r.precopy_pages, c.r.precopy_rounds, double(c.r.bytes_stored) / kMiB,
                 c.r.stopped_ms, c.wall_s * 1e3, snaps->back().written());
    last = w.b;
  }
  return w;
}

// --- freeze, melt, check ---------------------------------------------------------------------

struct FreezeMelt {
  Timed inc, full;                  // freeze right after a snapshot, with the tracker; full freeze
  std::vector<double> melt_s;       // melt() call until the process runs
  std::vector<double> serve_s;      // the page server's run, lazy only
  std::vector<double> check_s;      // SIGUSR1 until PASS
  std::vector<double> faulted;      // pages served on a fault, lazy only
};

// Melts the newest image of name, times it, then (pages served, if lazy) checks it.
uint64_t melt_and_check(Rewriter& rw, store::Store& store, const std::string& name, uint64_t min_gen,
                        FreezeMelt* fm, const std::string& when) {
  restore::MeltOptions mo;
  mo.lazy = true;
  auto t0 = Clock::now();
  restore::MeltResult mr = check(restore::melt(store, name, mo), "melting " + name);
  fm->melt_s.push_back(seconds_since(t0));
  rw.melted(mr.pid);
  auto t1 = Clock::now();
  rw.ask_check();
  uint64_t faulted = 0;
  if (serve_pages(mr, &faulted)) {
    fm->serve_s.push_back(seconds_since(t1));
    fm->faulted.push_back(double(faulted));
  }
  uint64_t gen = rw.check_passed(min_gen, when);
  fm->check_s.push_back(seconds_since(t1));
  return gen;
}

// Right after a snapshot: the incremental freeze, melt, check; then a full
// freeze of the same process, melt, check; it is killed at the end.
FreezeMelt freeze_and_melt(Rewriter& rw, store::Store& store, const std::string& name,
                           std::unique_ptr<dump::DirtyTracker>& tracker, uint64_t rewrites_before) {
  FreezeMelt fm;
  fm.inc = capture(rw.pid(), store, name, dump::CaptureMode::kFreeze, &tracker);
  if (fm.inc.r.parent == 0) fail("the freeze with the tracker was not incremental");
  rw.frozen();
  tracker.reset();
  uint64_t gen = melt_and_check(rw, store, name, rewrites_before, &fm, "after the incremental freeze and melt");
  fm.full = capture(rw.pid(), store, name, dump::CaptureMode::kFreeze, nullptr);
  rw.frozen();
  melt_and_check(rw, store, name, gen, &fm, "after the full freeze and melt");
  rw.end();
  return fm;
}

// --- the runs --------------------------------------------------------------------------------

struct BigRun {
  double commit_s = 0;  // time_tiny_commit
  Window u0;
  std::vector<Window> u, o;
  Timed first;  // the full snapshot that armed the tracker
  std::vector<Snap> snaps, lead_ins;
  FreezeMelt fm;
};

BigRun run_big(const Options& o, const std::string& dir) {
  BigRun r;
  fmt::print("{}: starting the process ({} rewritten per second)...\n", size_name(o.size), o.fraction);
  std::fflush(stdout);
  auto t_ready = Clock::now();
  Rewriter rw(dir, "big", o.size, o.fraction);
  fmt::print("  ready in {:.1f} s; U0 (unobserved, no tracker yet) {} s\n", seconds_since(t_ready), o.phase_s);
  std::fflush(stdout);
  r.u0 = unobserved(rw, o.phase_s);
  r.commit_s = time_tiny_commit(dir + "/tiny.store");
  auto store = new_store(dir + "/big.store", o.size);
  std::unique_ptr<dump::DirtyTracker> tracker;
  r.first = capture(rw.pid(), *store, "rw", dump::CaptureMode::kSnapshot, &tracker);
  Counters last_snapshot = rw.stats();
  fmt::print("  full snapshot: {:.2f} s, {} pages ({} in {} precopy rounds), stopped {:.1f} ms\n", r.first.wall_s,
             r.first.r.pages, r.first.r.precopy_pages, r.first.r.precopy_rounds, r.first.r.stopped_ms);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (int round = 0; round < o.rounds; ++round) {
    r.u.push_back(unobserved(rw, o.phase_s));
    size_t first = r.snaps.size();
    r.o.push_back(observed(rw, *store, tracker, o.phase_s, &last_snapshot, &r.snaps, &r.lead_ins, o.verbose));
    std::vector<double> stopped;
    for (size_t i = first; i < r.snaps.size(); ++i) stopped.push_back(r.snaps[i].c.r.stopped_ms);
    fmt::print("  round {}: unobserved {:.3f} M units/s, snapshotted {:.3f} M units/s ({:+.1f}%); "
               "{} snapshots, stopped {}\n",
               round + 1, r.u.back().work_rate() / 1e6, r.o.back().work_rate() / 1e6,
               (r.o.back().work_rate() / r.u.back().work_rate() - 1) * 100, stopped.size(),
               spread(stopped, 1, "ms", 1));
    std::fflush(stdout);
  }
  r.fm = freeze_and_melt(rw, *store, "rw", tracker, r.o.back().b.rewrites);
  fmt::print("  freeze right after a snapshot {:.0f} ms, full freeze {:.0f} ms; lazy melt {:.1f} / {:.1f} ms; "
             "both checks PASS\n",
             r.fm.inc.wall_s * 1e3, r.fm.full.wall_s * 1e3, r.fm.melt_s[0] * 1e3, r.fm.melt_s[1] * 1e3);
  std::fflush(stdout);
  store.reset();
  std::error_code ec;
  std::filesystem::remove(dir + "/big.store", ec);
  return r;
}

// The small image: full snapshot, incremental snapshot, then the freeze/melt sequence.
std::vector<FreezeMelt> run_small(const Options& o, const std::string& dir) {
  std::vector<FreezeMelt> runs;
  for (int rep = 0; rep < o.reps; ++rep) {
    Rewriter rw(dir, fmt::format("small{}", rep), o.small, o.fraction);
    std::string path = dir + "/small.store";
    auto store = new_store(path, o.small);
    std::unique_ptr<dump::DirtyTracker> tracker;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    capture(rw.pid(), *store, "small", dump::CaptureMode::kSnapshot, &tracker);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    capture(rw.pid(), *store, "small", dump::CaptureMode::kSnapshot, &tracker);
    uint64_t before = rw.stats().rewrites;
    runs.push_back(freeze_and_melt(rw, *store, "small", tracker, before));
    const FreezeMelt& fm = runs.back();
    fmt::print("  {} rep {}: freeze right after a snapshot {:.0f} ms, full {:.0f} ms; lazy melt {:.1f} / {:.1f} ms\n",
               size_name(o.small), rep + 1, fm.inc.wall_s * 1e3, fm.full.wall_s * 1e3, fm.melt_s[0] * 1e3,
               fm.melt_s[1] * 1e3);
    std::fflush(stdout);
    store.reset();
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  return runs;
}

// --- the table --------------------------------------------------------------------------------

template <class T, class F>
std::vector<double> field(const std::vector<T>& v, F f) {
  std::vector<double> out;
  for (const T& x : v) out.push_back(double(f(x)));
  return out;
}

void report_snapshots(const Options& o, const BigRun& r) {
  const std::string sz = size_name(o.size);
  std::vector<Snap> s;
  for (const Snap& x : r.snaps)
    if (x.rewritten > 0) s.push_back(x);
  if (s.empty()) fail("no snapshot saw a rewritten page");
  double stored = 0, written = 0;
  for (const Snap& x : s) stored += double(x.c.r.bytes_stored), written += double(x.written() * kPage);
  // The process writes its generation array besides the rewritten pages:
  // those pages are as much its writes, and a snapshot must store them.
  auto ratio = field(s, [](const Snap& x) { return double(x.c.r.bytes_stored) / double(x.written() * kPage); });
  double med = median(ratio);
  add_row({"snapshot every 1 s: stored / written, " + sz,
           fmt::format("{} ({} snapshots)", spread(ratio, 1, "", 3), s.size()),
           fmt::format("written {:.2f} MiB/interval (median; rewrites + generation array)",
                       median(field(s, [](const Snap& x) { return x.written() * kPage; })) / kMiB),
           med, "<= 1.2", med <= 1.2});
  add_row({"  interval between snapshots", spread(field(s, [](const Snap& x) { return x.interval_s; }), 1e3, "ms"),
           "asked: 1000 ms (longer when a snapshot takes longer)", NAN, "", std::nullopt});
  add_row({"  stored bytes, all these snapshots", fmt::format("{:.1f} MiB", stored / kMiB),
           fmt::format("written {:.1f} MiB", written / kMiB), stored / written, "", std::nullopt});
  add_row({"  stored / rewritten pages alone",
           spread(field(s, [](const Snap& x) { return double(x.c.r.bytes_stored) / double(x.rewritten * kPage); }), 1,
                  "", 3),
           fmt::format("generation-array pages per interval: {:.0f} (median)",
                       median(field(s, [](const Snap& x) { return x.gen_pages; }))),
           NAN, "", std::nullopt});
  add_row({"  pages copied / pages written",
           spread(field(s, [](const Snap& x) { return double(x.c.r.pages) / double(x.written()); }), 1, "", 3),
           "the rest: stack, globals, pages copied in two rounds", NAN, "", std::nullopt});
  add_row({"  stored / (pages copied x 4 KiB)",
           spread(field(s, [](const Snap& x) { return double(x.c.r.bytes_stored) / double(x.c.r.pages * kPage); }), 1,
                  "", 3),
           "the rest: index nodes, the image's metadata", NAN, "", std::nullopt});

  auto stopped = field(r.snaps, [](const Snap& x) { return x.c.r.stopped_ms; });
  double pause = median(stopped);
  add_row({fmt::format("pause per snapshot (precopy), {}", sz), spread(stopped, 1, "ms", 1),
           fmt::format("target {:.0f} ms", kPauseTargetMs), pause / kPauseTargetMs, "<= 1.0",
           pause <= kPauseTargetMs});
  add_row({"  the store alone: commit of 1 page", fmt::format("{:.1f} ms", r.commit_s * 1e3),
           "begin, put 1 page + 4 KiB meta, commit (fdatasync)", r.commit_s * 1e3 / pause, "", std::nullopt});
  add_row({"  snapshot wall time / precopy rounds",
           fmt::format("{} / {:.1f}", spread(field(r.snaps, [](const Snap& x) { return x.c.wall_s; }), 1e3, "ms"),
                       median(field(r.snaps, [](const Snap& x) { return x.c.r.precopy_rounds; }))),
           fmt::format("precopy pages {:.0f} of {:.0f} copied (median)",
                       median(field(r.snaps, [](const Snap& x) { return x.c.r.precopy_pages; })),
                       median(field(r.snaps, [](const Snap& x) { return x.c.r.pages; }))),
           NAN, "", std::nullopt});
  add_row({"  lead-in snapshots (after a window)",
           fmt::format("stopped {}", spread(field(r.lead_ins, [](const Snap& x) { return x.c.r.stopped_ms; }), 1,
                                             "ms", 1)),
           fmt::format("{:.0f} pages rewritten since the snapshot before (median)",
                       median(field(r.lead_ins, [](const Snap& x) { return x.rewritten; }))),
           NAN, "", std::nullopt});
  add_row({"  first (full) snapshot", fmt::format("stopped {:.1f} ms, {:.2f} s in all", r.first.r.stopped_ms,
                                                  r.first.wall_s),
           fmt::format("{} precopy rounds, {:.0f} MiB stored", r.first.r.precopy_rounds,
                       double(r.first.r.bytes_stored) / kMiB),
           NAN, "", std::nullopt});
}

void report_slowdown(const Options& o, const BigRun& r) {
  auto total = [](const std::vector<Window>& ws) {
    double work = 0, t = 0;
    for (const Window& w : ws) work += double(w.b.work - w.a.work), t += w.b.t - w.a.t;
    return work / t;
  };
  double u = total(r.u), ob = total(r.o);
  double slowdown = 1 - ob / u;
  add_row({fmt::format("slowdown, snapshot every 1 s, {}", size_name(o.size)),
           fmt::format("{:.3f} M units/s snapshotted", ob / 1e6),
           fmt::format("unobserved {:.3f} M units/s", u / 1e6), slowdown, "<= 0.03", slowdown <= 0.03});
  std::string per;
  for (size_t i = 0; i < r.u.size(); ++i)
    per += fmt::format("{}{:+.1f}%", i ? ", " : "", (r.o[i].work_rate() / r.u[i].work_rate() - 1) * 100);
  add_row({"  per round (snapshotted / unobserved)", per,
           fmt::format("{} rounds of {} s + {} s", o.rounds, o.phase_s, o.phase_s), NAN, "", std::nullopt});
  add_row({"  before any tracker (U0)", fmt::format("{:.3f} M units/s", r.u0.work_rate() / 1e6),
           "unobserved windows with the tracker armed", r.u0.work_rate() / u, "", std::nullopt});
  double asked = o.fraction * double(o.size / kPage);
  double rewrites = 0, t = 0;
  for (const auto* ws : {&r.u, &r.o})
    for (const Window& w : *ws) rewrites += double(w.b.rewrites - w.a.rewrites), t += w.b.t - w.a.t;
  add_row({"  rewrites done / asked", fmt::format("{:.0f} / {:.0f} pages/s", rewrites / t, asked),
           "paced by the process itself", rewrites / t / asked, "", std::nullopt});
}

void report_melts(const Options& o, const BigRun& big, const std::vector<FreezeMelt>& small) {
  std::vector<double> ms;
  for (const FreezeMelt& fm : small) ms.insert(ms.end(), fm.melt_s.begin(), fm.melt_s.end());
  const std::vector<double>& mb = big.fm.melt_s;
  double s = median(ms), b = median(mb);
  std::string kind = "lazy melt, until it runs";
  add_row({fmt::format("{}, {}", kind, size_name(o.small)), spread(ms, 1e3, "ms", 1),
           fmt::format("target {:.0f} ms", kMeltTargetMs), s * 1e3 / kMeltTargetMs, "<= 1.0",
           s * 1e3 <= kMeltTargetMs});
  add_row({fmt::format("{}, {}", kind, size_name(o.size)), spread(mb, 1e3, "ms", 1),
           fmt::format("target {:.0f} ms", kMeltTargetMs), b * 1e3 / kMeltTargetMs, "<= 1.0",
           b * 1e3 <= kMeltTargetMs});
  add_row({fmt::format("melt {} / melt {}", short_name(o.size), short_name(o.small)),
           fmt::format("{:.1f} / {:.1f} ms", b * 1e3, s * 1e3), fmt::format("size x{:.0f}", double(o.size) / double(o.small)),
           b / s, "<= 1.5", b / s <= 1.5});
  std::vector<double> serve = big.fm.serve_s, check_big = big.fm.check_s, check_small;
  for (const FreezeMelt& fm : small) check_small.insert(check_small.end(), fm.check_s.begin(), fm.check_s.end());
  add_row({"  melt to PASS (check of every page)",
           fmt::format("{} {} / {} {}", short_name(o.small), spread(check_small, 1e3, "ms"), short_name(o.size),
                       spread(check_big, 1e3, "ms")),
           serve.empty() ? "no page server (eager)"
                         : fmt::format("{} pager run {}, {:.0f} pages on a fault", short_name(o.size),
                                       spread(serve, 1e3, "ms"), median(big.fm.faulted)),
           NAN, "", std::nullopt});
}

void report_freezes(const Options& o, const BigRun& big, const std::vector<FreezeMelt>& small) {
  const Timed &inc = big.fm.inc, &full = big.fm.full;
  double ratio = inc.wall_s / full.wall_s;
  add_row({fmt::format("freeze after a snapshot / full, {}", size_name(o.size)),
           fmt::format("{:.0f} ms, stopped {:.0f} ms, {} pages", inc.wall_s * 1e3, inc.r.stopped_ms, inc.r.pages),
           fmt::format("full {:.0f} ms, {} pages", full.wall_s * 1e3, full.r.pages), ratio, "<= 0.1", ratio <= 0.1});
  auto inc_s = field(small, [](const FreezeMelt& f) { return f.inc.wall_s; });
  auto full_s = field(small, [](const FreezeMelt& f) { return f.full.wall_s; });
  add_row({fmt::format("  the same, {}", size_name(o.small)), spread(inc_s, 1e3, "ms"),
           "full " + spread(full_s, 1e3, "ms"), median(inc_s) / median(full_s), "", std::nullopt});
}

// --- main ------------------------------------------------------------------------------------

void check_room(const Options& o, const std::string& dir) {
  uint64_t disk_need = store_capacity(o.size) + store_capacity(o.small) + kGiB;
  uint64_t disk = free_bytes(dir);
  if (disk < disk_need)
    fail(fmt::format("{} has {:.1f} GiB free; a {} run needs about {:.1f} GiB for its stores (--dir elsewhere, or "
                     "--size smaller)",
                     dir, double(disk) / kGiB, size_name(o.size), double(disk_need) / kGiB));
  uint64_t mem_need = o.size + o.size / 4 + kGiB;
  uint64_t mem = meminfo_bytes("MemAvailable");
  if (mem != 0 && mem < mem_need)
    fail(fmt::format("{:.1f} GiB of memory available; a {} run needs about {:.1f} GiB", double(mem) / kGiB,
                     size_name(o.size), double(mem_need) / kGiB));
}

int run(int argc, char** argv) {
  set_program("persist_bench");
  Options o = parse_options(argc, argv);
  if (!may_melt()) {
    std::printf("persist_bench: skipped: melting needs root or CAP_CHECKPOINT_RESTORE and CAP_SYS_PTRACE\n");
    return kSkipped;
  }
  // Frozen processes are ours to reap; so is anything orphaned below us.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::string dir = make_scratch(o.dir, "persist-bench-");
  clean_up_on_exit(cleanup);
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  print_machine(argc, argv,
                fmt::format("{:.1f} GiB, {:.1f} GiB available", double(meminfo_bytes("MemTotal")) / kGiB,
                            double(meminfo_bytes("MemAvailable")) / kGiB),
                dir);
  fmt::print("load         {:.2f} {:.2f} {:.2f}\n", load[0], load[1], load[2]);
  fmt::print("process      {} rewriting {} of its pages per second; {} rounds of {} s unobserved + {} s "
             "snapshotted every second; small image {}, {} reps\n",
             size_name(o.size), o.fraction, o.rounds, o.phase_s, o.phase_s, size_name(o.small), o.reps);
  fmt::print("frost        snapshots with CaptureOptions::precopy (periodic ones ::background); lazy melts (MeltOptions::lazy, then "
             "MeltResult::pager->run())\n\n");
  check_room(o, dir);
  install_rewriter(o.rewriter, dir);

  auto t_start = Clock::now();
  BigRun big = run_big(o, dir);
  fmt::print("{}: {} runs of full snapshot, snapshot, freeze, melt, check, full freeze, melt, check\n",
             size_name(o.small), o.reps);
  std::vector<FreezeMelt> small = run_small(o, dir);
  fmt::print("\n");

  report_snapshots(o, big);
  report_slowdown(o, big);
  report_melts(o, big, small);
  report_freezes(o, big, small);

  bool all = print_table({44, 46, 52, 170});
  fmt::print("\n{} in {:.0f} s\n", all ? "all targets met" : "some targets MISSED", seconds_since(t_start));
  return !all && o.strict ? 1 : 0;
}

}  // namespace
}  // namespace frost::bench

int main(int argc, char** argv) { return frost::bench::run(argc, argv); }
