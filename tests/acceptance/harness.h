// What the acceptance tests share: starting real programs with clean fds,
// running the built `frost` binary against a private store, waiting by
// polling, and ending every started process by its PID, also on failure.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace frost::acceptance {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The machine running these may be slow and busy: waits are long, but each
// one ends as soon as its condition holds.
inline constexpr milliseconds kCommandTimeout = seconds(90);
inline constexpr milliseconds kConditionTimeout = seconds(60);

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string slurp(const fs::path& p);
void write_file(const fs::path& p, std::string_view text);
size_t count_lines(std::string_view text);
std::vector<std::string> split_lines(std::string_view text);

// Calls done() every 10 ms until it holds (true) or timeout passes (false).
bool poll_until(const std::function<bool()>& done, milliseconds timeout = kConditionTimeout);

// Where a started program's standard fds point. out/err are created or truncated.
struct Stdio {
  fs::path in = "/dev/null";
  fs::path out = "/dev/null";
  fs::path err = "/dev/null";
};

// Starts argv (argv[0] an absolute path) with `env` ("K=V") added to ours.
// The child gets only fds 0-2, default signal dispositions and an empty mask:
// the harness running us may leak fds, and frost refuses foreign pipes.
pid_t spawn(const std::vector<std::string>& argv, const Stdio& stdio, const std::vector<std::string>& env = {});

// What the tests need of /proc/PID/stat; start_time is in clock ticks after boot.
struct ProcStat {
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  uint64_t start_time = 0;
};
std::optional<ProcStat> read_proc_stat(pid_t pid);
// The TracerPid line of /proc/PID/status, or -1 when the process is gone.
pid_t tracer_of(pid_t pid);

// Waits for our child (or an orphan we adopted as subreaper) to end: its wait
// status, or nullopt on timeout or when pid is not our child.
std::optional<int> wait_exit(pid_t pid, milliseconds timeout = kConditionTimeout);
std::string describe_status(int status);

// Makes orphaned descendants (melted processes, whose `frost melt` exits)
// our children, so we can wait for them and they do not linger as zombies.
void become_subreaper();

// Every process a test started, each identified by PID and start time so a
// reused PID is never touched. The destructor kills and reaps what is left.
class ProcessJanitor {
 public:
  ProcessJanitor() = default;
  ~ProcessJanitor();
  ProcessJanitor(const ProcessJanitor&) = delete;
  ProcessJanitor& operator=(const ProcessJanitor&) = delete;

  // (Re)records pid as it is now: a melted process has its old PID but a new start time.
  void track(pid_t pid);
  // True once the tracked incarnation of pid no longer exists (reaping it if it is ours).
  bool wait_gone(pid_t pid, milliseconds timeout);

 private:
  struct Tracked {
    pid_t pid;
    uint64_t start_time;
  };
  bool gone(const Tracked& t) const;
  std::vector<Tracked> tracked_;
};

// A finished command: its exit code (-1 if it did not exit normally) and output.
struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};
std::ostream& operator<<(std::ostream& os, const Outcome& o);

// Runs argv to completion (killed after timeout), output through files.
Outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
            milliseconds timeout = kCommandTimeout);

// The integer value of "key" in a one-line JSON object, or nullopt.
std::optional<int64_t> json_int(const std::string& json, const std::string& key);

// One test's world: a temp dir, a private FROST_HOME, the janitor, and the
// freeze/melt steps every test repeats, checked as they go.
class AcceptanceTest : public ::testing::Test {
 protected:
  void SetUp() override;

  const fs::path& dir() const { return dir_.path(); }
  fs::path home() const { return dir_.path() / "home"; }
  std::string frost_home_env() const { return "FROST_HOME=" + home().string(); }

  // spawn(), with the process handed to the janitor.
  pid_t start(const std::vector<std::string>& argv, const Stdio& stdio, const std::vector<std::string>& env = {});
  Outcome frost(const std::vector<std::string>& args);
  // frost freeze PID --name NAME, then, if it is our child (or adopted), reaps
  // the ended process so its PID is free for the melt. Returns the snapshot id.
  int64_t freeze(pid_t pid, const std::string& name, bool our_child = true);
  // frost melt NAME: the same PID runs again, now our (adopted) child.
  void melt(const std::string& name, pid_t pid);

  TempDir dir_;              // destroyed last: the processes may use it
  ProcessJanitor janitor_;   // destroyed before the directory goes
};

}  // namespace frost::acceptance
