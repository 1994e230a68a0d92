// What the freeze/melt tests share: running `frost` with a private
// FROST_HOME, starting the self-checking programs of tests/programs cleanly
// (stdout to a file, no inherited fds), and looking at a process from /proc.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/run_binary.h"

namespace frost::testing {

namespace fs = std::filesystem;

// Runs the frost CLI with FROST_HOME=home and waits for it; after a lazy
// `frost melt`, also for its page server to bring every page in and exit
// (a freeze must not meet pending pages, docs/LAZY_MELT.md).
Outcome frost(const std::vector<std::string>& args, const fs::path& home);
// The same without waiting for a page server (tests of lazy melt itself).
Outcome frost_keep_serving(const std::vector<std::string>& args, const fs::path& home);
// The page server a lazy `frost melt` reported (text or --json), or 0.
pid_t pager_of(const Outcome& melt);
// Waits (bounded) for a page server, adopted by this subreaper once `frost
// melt` exited, to end; its exit status, or -1 on timeout.
int wait_pager(pid_t pager, int timeout_ms = 20000);


// A self-checking program (tests/programs) started as our child, stdout and
// stderr to `out`, stdin from /dev/null, every other fd closed except those
// listed in keep. Killed and reaped by PID when destroyed.
class Program {
 public:
  Program(const std::string& binary, fs::path out, std::vector<int> keep = {});
  // Runs argv (argv[0] is the file run) instead of a bare binary.
  Program(const std::vector<std::string>& argv, fs::path out);
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  pid_t pid() const { return pid_; }
  std::string output() const { return slurp(out_); }
  // Waits for "READY <pid>".
  bool wait_ready();
  // Waits for the process (a child, or an orphan adopted by this subreaper)
  // to end; returns its exit status, or -1 (timeout: it is killed).
  int wait_exit(int timeout_ms = 20000);
  // After freeze: waits until the killed process is reaped (by us, or by a
  // lazy melt's page server, its parent) so its PID is free for the melt.
  void reap_frozen();

 private:
  Program(const std::vector<std::string>& argv, fs::path out, std::vector<int> keep);
  pid_t pid_ = -1;
  fs::path out_;
};

// State letter from /proc/PID/stat, or 0 when gone.
char process_state(pid_t pid);
// TracerPid from /proc/PID/status (-1 when gone).
int tracer_of(pid_t pid);
// Running and untouched: not stopped, not traced.
bool running_untouched(pid_t pid);
// A child of ours holding exactly `pid` (clone3 with set_tid), pausing until
// killed, as another program would after a reboot; -1 when the id is taken.
pid_t squat(pid_t pid);

}  // namespace frost::testing
