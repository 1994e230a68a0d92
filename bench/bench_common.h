// What the benchmarks (store_bench, freeze_bench, persist_bench) share: timing,
// the scratch directory and cleanup on exit, failing with the program's name,
// the command line's common flags, the machine description at the head of a
// report, child processes tracked by PID, and the results table with its
// ratio rows.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace frost::bench {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

double seconds_since(Clock::time_point t0);

// User + system CPU seconds of the whole process so far.
double cpu_seconds();

double median(std::vector<double> v);

// "64 MiB", "4 GiB".
std::string size_name(uint64_t bytes);
// "64M", "4G".
std::string short_name(uint64_t bytes);
// "64", "64M", "64MiB", "4G", "512K" (no unit: MiB); nullopt when not a size.
std::optional<uint64_t> parse_bytes(const std::string& s);

// --- failing ------------------------------------------------------------------------

// The name failures and the report's head go by ("store_bench"); set it first.
void set_program(const char* name);
const char* program();

// "<program>: FAILED: what" on stderr, exit 2 (atexit cleans up).
[[noreturn]] void fail(const std::string& what);

template <class T>
T check(Result<T> r, const std::string& what) {
  if (!r.ok()) fail(what + ": " + r.error().to_string());
  return std::move(r).value();
}

inline void check(const Status& s, const std::string& what) {
  if (!s.ok()) fail(what + ": " + s.error().to_string());
}

// --- options ------------------------------------------------------------------------

// The flags both benchmarks take.
struct CommonOptions {
  std::string dir = "/var/tmp";
  int reps = 0;  // 0: not given
  bool quick = false;
  bool strict = false;
  bool verbose = false;
};

// A flag of the program's own: takes its value with value() (usage(2) when
// there is none) and returns false for a flag it does not know.
using OwnFlag = std::function<bool(const std::string& flag, const std::function<std::string()>& value)>;

// Walks argv: --dir, --reps (at least 1), --quick, --strict and --verbose into
// o, --help and -h to usage(0), any other flag to own, and one own does not
// know to usage(2). Numbers that are not one throw (std::stoi).
void parse_common(int argc, char** argv, CommonOptions& o, void (*usage)(int), const OwnFlag& own);

// --- scratch directory and cleanup ----------------------------------------------------

// A new directory parent/<prefix>XXXXXX (parent created if need be); exits 2
// when it cannot.
std::string make_scratch(const std::string& parent, const std::string& prefix);

// Removes the scratch directory, if any (again: nothing).
void remove_scratch();

// Runs cleanup at exit and on SIGINT and SIGTERM, then dies of the signal.
void clean_up_on_exit(void (*cleanup)());

// --- the machine ----------------------------------------------------------------------

// The first line of the file at path that starts with prefix, or "".
std::string first_line_with(const std::string& path, const std::string& prefix);

// Bytes free for us in dir's file system (0 when unknown).
uint64_t free_bytes(const std::string& dir);

// Type, source and options of the mount holding path (longest matching mount point).
std::string filesystem_of(const std::string& path);

// The head of a report: program and date, command line, machine, memory (as
// given) and the scratch directory's file system and free space.
void print_machine(int argc, char** argv, const std::string& memory, const std::string& scratch);

// Bytes of a /proc/meminfo field ("MemAvailable"), 0 when unknown.
uint64_t meminfo_bytes(const std::string& key);

// Root, or CAP_CHECKPOINT_RESTORE (clone3 set_tid) with CAP_SYS_PTRACE: what a melt needs.
bool may_melt();

// --- child processes, by PID -------------------------------------------------------------

// Children that cleanup must end: up to 8 at a time.
void track(pid_t pid);
void untrack(pid_t pid);
// SIGKILLs and reaps every tracked child. Async-signal-safe: kill and waitpid only.
void kill_tracked();

// Reaps pid (and untracks it); its status, or nullopt when a tracer that is
// also its parent reaped it already (capture() does, waiting for a frozen
// process to die).
std::optional<int> reap(pid_t pid);

// Kills a child that must still be alive (it did not crash), then reaps it;
// returns the seconds from SIGKILL to reaped (the kernel freeing its memory).
double kill_and_reap(pid_t pid, const std::string& what);

// --- the table ------------------------------------------------------------------------

struct Row {
  std::string figure;
  std::string measured;
  std::string limit;
  double ratio = NAN;
  std::string target;  // ">= 0.85", "<= 0.03", or "" for a figure without one
  std::optional<bool> pass;
};

// Prints "  -> figure: measured, ratio" now and keeps the row for the table.
void add_row(Row r);

struct TableWidths {
  int figure, measured, limit;  // column widths
  int rule;                      // length of the line under the heading
};

// Prints every row kept; returns whether every target was met.
bool print_table(const TableWidths& w);

// "median unit [min-max]" of v x scale, with digits decimals.
std::string spread(const std::vector<double>& v, double scale, const char* unit, int digits = 0);

// bytes / each of secs, in MB/s.
std::vector<double> mbps(double bytes, const std::vector<double>& secs);

}  // namespace frost::bench
