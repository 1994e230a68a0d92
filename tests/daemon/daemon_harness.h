// What the persistent-process tests share: a frostd of their own, the JSON
// the CLI prints, the snapshot log, and processes ended by PID at the end.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "freeze/harness.h"

namespace frost::testing {

using nlohmann::json;

// frostd on a FROST_HOME, its stderr in home/frostd.err. Stopped with
// SIGTERM (or killed) and reaped when destroyed.
class Frostd {
 public:
  explicit Frostd(const fs::path& home, std::vector<std::string> args = {});
  ~Frostd();
  Frostd(const Frostd&) = delete;
  Frostd& operator=(const Frostd&) = delete;

  // Whether it answered on its socket within the start-up wait.
  bool up() const { return up_; }
  pid_t pid() const { return pid_; }
  // SIGKILL, as a power cut would.
  void kill_hard();
  // SIGTERM and wait; the exit status (or -1).
  int stop();
  std::string log() const;

 private:
  fs::path home_;
  pid_t pid_ = -1;
  bool up_ = false;
};

// Whether a daemon answers on home's socket.
bool daemon_answers(const fs::path& home);

// `frost ARGS --json` that must succeed; its JSON.
json frost_json(const std::vector<std::string>& args, const fs::path& home);

// The records of `frost log NAME --json`.
std::vector<json> log_records(const std::string& name, const fs::path& home);
// The newest snapshot whose commit the log records (0: none).
uint64_t last_logged_commit(const std::string& name, const fs::path& home);

// Processes to end by PID when the test ends (SIGKILL, then reaped when ours).
class Reaper {
 public:
  ~Reaper();
  void add(pid_t pid) { pids_.push_back(pid); }
  // Kills pid and reaps it if it is our child (or orphan, as a subreaper).
  static void kill_and_reap(pid_t pid);

 private:
  std::vector<pid_t> pids_;
};

// Waits until pred holds or timeout_ms passes.
bool eventually(const std::function<bool()>& pred, int timeout_ms = 10000);

// How many times line (a prefix) starts a line of the file.
int count_lines(const fs::path& file, const std::string& prefix);

}  // namespace frost::testing
