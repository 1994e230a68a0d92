// The persistent processes: who they are, how often and how they are
// snapshotted, and whether they run or are frozen. Kept in
// $FROST_HOME/registry.json, replaced whole on every change (atomic_file.h),
// so a crash leaves the last complete version.
//
// Whoever holds the store's lock (frostd, or the CLI when no daemon runs) is
// the only writer; readers (frost ls) may read it at any time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "daemon/process_identity.h"
#include "store/store.h"

namespace frost::daemon {

// How periodic snapshots treat the process.
enum class Policy {
  kWeak,   // only while every thread is idle; skipped (and logged) otherwise
  kForce,  // pre-copy while it runs, then a short stop
};

enum class ProcessState {
  kRunning,  // on the machine (or gone after a crash: frost recover melts it)
  kFrozen,   // taken off by freeze/hibernate; melt/resume brings it back
};

const char* policy_name(Policy p);
Result<Policy> parse_policy(const std::string& s);
const char* state_name(ProcessState s);

struct PersistentProcess {
  std::string name;              // the store owner of its snapshots
  pid_t pid = 0;                 // as seen from here
  pid_t ns_pid = 0;              // melted into a PID namespace: its PID there (the saved one)
  uid_t uid = 0;                 // its owner: only they and root may act on it
  Policy policy = Policy::kForce;
  uint64_t every_ms = 5000;      // 0: no periodic snapshots
  ProcessState state = ProcessState::kRunning;
  ProcessIdentity identity;      // of the process now behind pid
  std::vector<std::string> command;
  store::SnapshotId last_snapshot = 0;  // newest committed
};

class Registry {
 public:
  // Reads $home/registry.json; an absent file is an empty registry.
  static Result<Registry> load(const std::string& home);
  // Writes the registry durably.
  Status save() const;

  PersistentProcess* find(const std::string& name);
  const PersistentProcess* find(const std::string& name) const;
  PersistentProcess* find_pid(pid_t pid);
  Status add(PersistentProcess p);  // kExists when the name is taken
  bool remove(const std::string& name);
  std::vector<PersistentProcess>& entries() { return entries_; }
  const std::vector<PersistentProcess>& entries() const { return entries_; }

  static std::string path(const std::string& home) { return home + "/registry.json"; }

 private:
  explicit Registry(std::string home) : home_(std::move(home)) {}
  std::string home_;
  std::vector<PersistentProcess> entries_;
};

}  // namespace frost::daemon
