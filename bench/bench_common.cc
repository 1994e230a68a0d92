#include "bench_common.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <fmt/core.h>

namespace frost::bench {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double cpu_seconds() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string size_name(uint64_t b) {
  if (b >= kGiB && b % kGiB == 0) return fmt::format("{} GiB", b / kGiB);
  return fmt::format("{} MiB", b / kMiB);
}

std::string short_name(uint64_t b) {
  if (b >= kGiB && b % kGiB == 0) return fmt::format("{}G", b / kGiB);
  return fmt::format("{}M", b / kMiB);
}

std::optional<uint64_t> parse_bytes(const std::string& s) {
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return std::nullopt;
  size_t pos = 0;
  uint64_t v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit = s.substr(pos);
  for (char& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (unit == "K" || unit == "KIB") return v << 10;
  if (unit.empty() || unit == "M" || unit == "MIB") return v * kMiB;
  if (unit == "G" || unit == "GIB") return v * kGiB;
  return std::nullopt;
}

// --- failing ------------------------------------------------------------------------

namespace {
const char* g_program = "bench";
}  // namespace

void set_program(const char* name) { g_program = name; }
const char* program() { return g_program; }

void fail(const std::string& what) {
  std::fprintf(stderr, "%s: FAILED: %s\n", g_program, what.c_str());
  std::exit(2);  // atexit runs the cleanup
}

// --- options ------------------------------------------------------------------------

void parse_common(int argc, char** argv, CommonOptions& o, void (*usage)(int), const OwnFlag& own) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::function<std::string()> next = [&]() -> std::string {
      if (i + 1 >= argc) usage(2);
      return argv[++i];
    };
    if (a == "--dir") o.dir = next();
    else if (a == "--reps") o.reps = std::max(1, std::stoi(next()));
    else if (a == "--quick") o.quick = true;
    else if (a == "--strict") o.strict = true;
    else if (a == "--verbose") o.verbose = true;
    else if (a == "--help" || a == "-h") usage(0);
    else if (!own(a, next)) usage(2);
  }
}

// --- scratch directory and cleanup ----------------------------------------------------

namespace {
char g_scratch_path[4096];
void (*g_cleanup)() = nullptr;

void on_signal(int sig) {
  // Not async-signal-safe in theory (remove_all); good enough for a benchmark
  // interrupted by hand.
  if (g_cleanup) g_cleanup();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}
}  // namespace

std::string make_scratch(const std::string& parent, const std::string& prefix) {
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  std::string templ = parent + "/" + prefix + "XXXXXX";
  if (templ.size() >= sizeof g_scratch_path || ::mkdtemp(templ.data()) == nullptr) {
    std::fprintf(stderr, "%s: cannot create a directory under %s: %s\n", g_program, parent.c_str(),
                 std::strerror(errno));
    std::exit(2);
  }
  std::strcpy(g_scratch_path, templ.c_str());
  return templ;
}

void remove_scratch() {
  if (g_scratch_path[0] == 0) return;
  std::error_code ec;
  std::filesystem::remove_all(g_scratch_path, ec);
  g_scratch_path[0] = 0;
}

void clean_up_on_exit(void (*cleanup)()) {
  g_cleanup = cleanup;
  std::atexit(cleanup);
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
}

// --- the machine ----------------------------------------------------------------------

std::string first_line_with(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return line;
  return "";
}

uint64_t free_bytes(const std::string& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return 0;
  return uint64_t(vfs.f_bavail) * vfs.f_frsize;
}

std::string filesystem_of(const std::string& path) {
  std::error_code ec;
  std::string real = std::filesystem::canonical(path, ec).string();
  std::ifstream in("/proc/self/mountinfo");
  std::string line, best_point, best;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    for (size_t p = 0; p < line.size();) {
      size_t q = line.find(' ', p);
      if (q == std::string::npos) q = line.size();
      f.push_back(line.substr(p, q - p));
      p = q + 1;
    }
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 6 || dash == f.end() || dash + 2 >= f.end()) continue;
    const std::string& point = f[4];
    bool under = real == point || point == "/" ||
                 (real.rfind(point, 0) == 0 && real.size() > point.size() && real[point.size()] == '/');
    if (under && point.size() >= best_point.size()) {
      best_point = point;
      best = *(dash + 1) + " on " + *(dash + 2) + " (" + f[5] + ") at " + point;
    }
  }
  return best.empty() ? "unknown" : best;
}

void print_machine(int argc, char** argv, const std::string& memory, const std::string& scratch) {
  struct utsname u {};
  ::uname(&u);
  std::string cpu = first_line_with("/proc/cpuinfo", "model name");
  if (auto c = cpu.find(':'); c != std::string::npos) cpu = cpu.substr(c + 2);
  char date[64];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);

  fmt::print("{:<12} {}\n", g_program, date);
  fmt::print("command      {}\n", cmd);
  fmt::print("machine      nproc {}, {} {} {}, {}\n", ::sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release,
             u.machine, cpu);
  fmt::print("memory       {}\n", memory);
  fmt::print("directory    {} : {}, {:.1f} GiB free\n", scratch, filesystem_of(scratch),
             double(free_bytes(scratch)) / kGiB);
}

uint64_t meminfo_bytes(const std::string& key) {
  std::string line = first_line_with("/proc/meminfo", key + ":");
  if (line.empty()) return 0;
  return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10) * 1024;
}

bool may_melt() {
  if (::geteuid() == 0) return true;
  std::string line = first_line_with("/proc/self/status", "CapEff:");
  if (line.empty()) return false;
  uint64_t caps = std::strtoull(line.c_str() + 7, nullptr, 16);
  bool restore = caps & ((1ull << 40) | (1ull << 21));  // CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN
  bool ptrace = caps & (1ull << 19);                    // CAP_SYS_PTRACE
  return restore && ptrace;
}

// --- child processes, by PID -------------------------------------------------------------

namespace {
constexpr int kMaxTracked = 8;
std::atomic<pid_t> g_tracked[kMaxTracked];
}  // namespace

void track(pid_t pid) {
  for (auto& slot : g_tracked) {
    pid_t none = 0;
    if (slot.compare_exchange_strong(none, pid)) return;
  }
  fail(fmt::format("more than {} children to track (pid {})", kMaxTracked, pid));
}

void untrack(pid_t pid) {
  for (auto& slot : g_tracked) {
    pid_t p = pid;
    slot.compare_exchange_strong(p, 0);
  }
}

void kill_tracked() {
  for (auto& slot : g_tracked) {
    pid_t p = slot.exchange(0);
    if (p <= 0) continue;
    ::kill(p, SIGKILL);
    while (::waitpid(p, nullptr, __WALL) < 0 && errno == EINTR) {
    }
  }
}

std::optional<int> reap(pid_t pid) {
  int status = 0;
  pid_t r;
  while ((r = ::waitpid(pid, &status, __WALL)) < 0 && errno == EINTR) {
  }
  untrack(pid);
  if (r < 0) {
    if (errno == ECHILD) return std::nullopt;
    fail(fmt::format("waitpid {}: {}", pid, std::strerror(errno)));
  }
  return status;
}

double kill_and_reap(pid_t pid, const std::string& what) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, __WALL | WNOHANG);
  if (r == pid) {
    untrack(pid);
    fail(fmt::format("{} (pid {}) died by itself: {}", what, pid,
                     WIFSIGNALED(status) ? fmt::format("signal {}", WTERMSIG(status))
                                         : fmt::format("exit {}", WEXITSTATUS(status))));
  }
  auto t0 = Clock::now();
  ::kill(pid, SIGKILL);
  auto st = reap(pid);
  double s = seconds_since(t0);
  if (st && !(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL))
    fail(fmt::format("{} (pid {}) ended other than by our SIGKILL (status {:#x})", what, pid, *st));
  return s;
}

// --- the table ------------------------------------------------------------------------

namespace {
std::vector<Row> g_rows;
}  // namespace

void add_row(Row r) {
  fmt::print("  -> {}: {}{}\n", r.figure, r.measured,
             std::isnan(r.ratio) ? "" : fmt::format(", ratio {:.3f}", r.ratio));
  std::fflush(stdout);
  g_rows.push_back(std::move(r));
}

bool print_table(const TableWidths& w) {
  fmt::print("\n{:<{}} {:<{}} {:<{}} {:>7} {:>8}  {}\n", "figure", w.figure, "measured (median [min-max])",
             w.measured, "limit (same run)", w.limit, "ratio", "target", "result");
  fmt::print("{}\n", std::string(size_t(w.rule), '-'));
  bool all = true;
  for (const Row& r : g_rows) {
    std::string ratio = std::isnan(r.ratio) ? "" : fmt::format("{:.3f}", r.ratio);
    std::string verdict = !r.pass ? "info" : *r.pass ? "PASS" : "MISS";
    if (r.pass && !*r.pass) all = false;
    fmt::print("{:<{}} {:<{}} {:<{}} {:>7} {:>8}  {}\n", r.figure, w.figure, r.measured, w.measured, r.limit,
               w.limit, ratio, r.target, verdict);
  }
  return all;
}

std::string spread(const std::vector<double>& v, double scale, const char* unit, int digits) {
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return fmt::format("{:.{}f} {} [{:.{}f}-{:.{}f}]", median(v) * scale, digits, unit, *lo * scale, digits,
                     *hi * scale, digits);
}

std::vector<double> mbps(double bytes, const std::vector<double>& secs) {
  std::vector<double> v;
  for (double s : secs) v.push_back(bytes / s / 1e6);
  return v;
}

}  // namespace frost::bench
