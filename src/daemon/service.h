// What frost does for persistent processes, behind one door: frostd calls it
// for every request on its socket and for its timers; the CLI calls it
// directly when no daemon runs. A request is a JSON object with an "op";
// its result is a JSON object (the same shapes either way, so the CLI prints
// them the same and scripts see the same --json).
//
//   persist     {pid, name?, policy?, every_ms?, command?}  first snapshot, then registered
//   unpersist   {name}
//   snapshot    {target, kind: weak|force}      target: a name or a pid
//   freeze      {target}
//   melt        {name, eager?, snapshot?}
//   recover     {}    every registered process whose process is gone
//   hibernate   {}    freeze every running persistent process
//   resume      {}    melt every frozen one
//   list        {}    the registry, with each process's liveness
//   rm          {name}
//   ping        {}
//
// Only root or the owner of a process may act on it (Caller).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"
#include "daemon/idle_probe.h"
#include "daemon/registry.h"
#include "daemon/snapshot_log.h"
#include "dump/progress.h"
#include "store/store.h"

namespace frost::dump {
class DirtyTracker;
}

namespace frost::daemon {

using nlohmann::json;

struct Caller {
  uid_t uid = 0;
};

struct ServiceOptions {
  std::string home;
  // frostd: dirty trackers live across snapshots, melts are lazy (a thread
  // per melted process serves its pages), timers run. The CLI alone: every
  // snapshot is a full copy and melts are eager.
  bool daemon = false;
};

class Service {
 public:
  Service(ServiceOptions options, std::unique_ptr<store::Store> store, Registry registry);
  // Waits for the page servers: a melted process dies with its server.
  ~Service();

  // One request; its result, or the error to report.
  Result<json> handle(const json& request, const Caller& caller, const ProgressFn& progress = {});

  // Takes the periodic snapshots that are due (daemon). Returns how long
  // until it should be called again.
  std::chrono::milliseconds tick();

 private:
  using Clock = std::chrono::steady_clock;
  // What the daemon keeps per persistent process, beyond the registry.
  struct Runtime {
    std::unique_ptr<dump::DirtyTracker> tracker;
    Clock::time_point due{};
    std::optional<Clock::time_point> looking_since;  // weak: looking for an idle moment
    std::string last_busy;
    IdleProbe probe;
    bool gone_logged = false;
  };

  Result<json> persist(const json& req, const Caller& caller);
  Result<json> unpersist(const json& req, const Caller& caller);
  Result<json> snapshot(const json& req, const Caller& caller, const ProgressFn& progress);
  Result<json> freeze(const json& req, const Caller& caller, const ProgressFn& progress);
  Result<json> melt(const json& req, const Caller& caller, const ProgressFn& progress);
  Result<json> recover(const Caller& caller);
  Result<json> hibernate(const Caller& caller);
  Result<json> resume(const Caller& caller);
  Result<json> list(const Caller& caller);
  Result<json> remove(const json& req, const Caller& caller);
  Result<json> adopt(const json& req, const Caller& caller);
  Result<json> attach(const json& req, const Caller& caller);

  // A snapshot of a registered process, logged. kind: weak, force, freeze.
  // periodic: a timer's snapshot, made in the background (CaptureOptions::background).
  Result<json> snapshot_entry(PersistentProcess& e, const std::string& kind, const ProgressFn& progress,
                              bool periodic = false);
  // The entry's process runs again as pid (ns_pid inside a new PID
  // namespace): recorded, its timers restarted, the melt logged.
  Status now_running(PersistentProcess& e, pid_t pid, pid_t ns_pid, const std::string& log_kind, const std::string& note);
  // Melts a registered process (lazily in the daemon) and marks it running.
  Result<json> melt_entry(PersistentProcess& e, std::optional<store::SnapshotId> snapshot, bool eager, bool pidns,
                          const std::string& log_kind, const ProgressFn& progress);
  // Melts on a thread of its own that then serves the pages (lazy), or here (eager).
  Result<json> melt_image(const std::string& name, std::optional<store::SnapshotId> snapshot, bool eager,
                          bool pidns, const ProgressFn& progress);
  void tick_one(PersistentProcess& e, Runtime& rt, Clock::time_point now);
  void reap_children();
  bool pid_taken(const PersistentProcess& e);
  bool serving(pid_t pid);
  Status save_registry();

  ServiceOptions options_;
  std::unique_ptr<store::Store> store_;
  Registry registry_;
  SnapshotLog log_;
  std::mutex mu_;  // one operation at a time on the store and registry
  std::map<std::string, Runtime> runtime_;
  std::set<pid_t> children_;  // melted by us: reaped when they end

  // The terminals of processes melted here whose own terminal was gone
  // (MeltOptions::new_terminal), by image name: frostd holds the master
  // side so the process keeps its terminal; `frost attach` gets a copy.
  struct HeldTerminal {
    UniqueFd master;
    pid_t pid = 0;
  };
  void keep_terminal(const std::string& name, pid_t pid, UniqueFd master);
  void drop_ended_terminals();
  std::mutex terminal_mu_;
  std::map<std::string, HeldTerminal> terminals_;

  std::mutex pager_mu_;
  std::set<pid_t> serving_;  // processes whose pages are still coming in
  std::vector<std::thread> pagers_;
};

// Fails unless caller is root or uid.
Status may_act(const Caller& caller, uid_t uid, const std::string& what);

}  // namespace frost::daemon
