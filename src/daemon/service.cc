#include "daemon/service.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <future>

#include <fmt/format.h>

#include "dump/capture.h"
#include "dump/dirty_tracker.h"
#include "image/image_codec.h"
#include "proc/proc_status.h"
#include "restore/melt.h"

namespace frost::daemon {
namespace {

std::optional<pid_t> as_pid(const std::string& s) {
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), pid);
  if (ec != std::errc() || end != s.data() + s.size() || pid <= 0) return std::nullopt;
  return pid;
}

Result<uid_t> owner_of(pid_t pid) {
  Result<proc::ProcStatus> st = proc::read_status(pid);
  if (!st.ok()) return Error::not_found(fmt::format("process {} does not exist", pid));
  return st->uid.real;
}

// Owner names become file names (the log) and store owners.
Status check_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name.front() == '.' || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return Error::invalid(fmt::format("'{}' is not a usable name (1-200 characters, no '/', not starting with '.')", name));
  }
  return Status::Ok();
}

json capture_json(const dump::CaptureResult& r, const std::string& kind) {
  json j{{"name", r.name},       {"pid", r.pid},
         {"snapshot", r.snapshot}, {"parent", r.parent},
         {"threads", r.threads}, {"pages", r.pages},
         {"bytes_stored", r.bytes_stored}, {"pause_ms", r.stopped_ms},
         {"precopy_rounds", r.precopy_rounds}, {"seconds", r.seconds},
         {"kind", kind}};
  if (!r.full_copy_reason.empty()) j["full_copy_reason"] = r.full_copy_reason;
  return j;
}

template <class T>
T field(const json& req, const char* key, T fallback) {
  auto it = req.find(key);
  if (it == req.end() || it->is_null()) return fallback;
  return it->get<T>();
}

}  // namespace

Status may_act(const Caller& caller, uid_t uid, const std::string& what) {
  if (caller.uid == 0 || caller.uid == uid) return Status::Ok();
  return Error(ErrorKind::kInvalidArgument,
               fmt::format("permission denied: {} belongs to uid {} and may not be traced by uid {}", what, uid, caller.uid));
}

Service::Service(ServiceOptions options, std::unique_ptr<store::Store> store, Registry registry)
    : options_(std::move(options)), store_(std::move(store)), registry_(std::move(registry)), log_(options_.home) {
  for (const PersistentProcess& e : registry_.entries()) runtime_[e.name].due = Clock::now();
}

Service::~Service() {
  std::vector<std::thread> pagers;
  {
    std::lock_guard<std::mutex> lock(pager_mu_);
    pagers.swap(pagers_);
  }
  for (std::thread& t : pagers) t.join();
}

Status Service::save_registry() { return registry_.save(); }

bool Service::serving(pid_t pid) {
  std::lock_guard<std::mutex> lock(pager_mu_);
  return serving_.count(pid) != 0;
}

Result<json> Service::handle(const json& req, const Caller& caller, const ProgressFn& progress) {
  std::string op;
  try {
    op = req.at("op").get<std::string>();
  } catch (const json::exception&) {
    return Error::invalid("a request without an \"op\"");
  }
  std::lock_guard<std::mutex> lock(mu_);
  try {
    if (op == "ping") return json{{"pid", ::getpid()}, {"home", options_.home}, {"daemon", options_.daemon}};
    if (op == "persist") return persist(req, caller);
    if (op == "unpersist") return unpersist(req, caller);
    if (op == "snapshot") return snapshot(req, caller, progress);
    if (op == "freeze") return freeze(req, caller, progress);
    if (op == "melt") return melt(req, caller, progress);
    if (op == "recover") return recover(caller);
    if (op == "hibernate") return hibernate(caller);
    if (op == "resume") return resume(caller);
    if (op == "list") return list(caller);
    if (op == "rm") return remove(req, caller);
    if (op == "adopt") return adopt(req, caller);
    if (op == "attach") return attach(req, caller);
  } catch (const json::exception& e) {
    return Error::invalid(fmt::format("a malformed '{}' request: {}", op, e.what()));
  }
  return Error::invalid(fmt::format("unknown request '{}'", op));
}

// --- persist / unpersist --------------------------------------------------------

Result<json> Service::persist(const json& req, const Caller& caller) {
  pid_t pid = req.at("pid").get<pid_t>();
  FROST_ASSIGN(uid_t uid, owner_of(pid));
  FROST_TRY(may_act(caller, uid, fmt::format("process {}", pid)));
  if (PersistentProcess* known = registry_.find_pid(pid); known != nullptr && still_running(pid, known->identity)) {
    return Error(ErrorKind::kExists, fmt::format("process {} is already persistent as '{}'", pid, known->name));
  }
  PersistentProcess e;
  e.name = field<std::string>(req, "name", "");
  if (e.name.empty()) {
    FROST_ASSIGN(e.name, dump::default_name(*store_, pid));
  }
  FROST_TRY(check_name(e.name));
  if (registry_.find(e.name) != nullptr) {
    return Error(ErrorKind::kExists, fmt::format("the name '{}' is taken by another persistent process (see frost ls)", e.name));
  }
  FROST_ASSIGN(e.policy, parse_policy(field<std::string>(req, "policy", "force")));
  e.every_ms = field<uint64_t>(req, "every_ms", 5000);
  if (e.every_ms != 0 && e.every_ms < 100) return Error::invalid("snapshots cannot be taken more often than every 100 ms");
  e.pid = pid;
  e.uid = uid;
  e.command = field<std::vector<std::string>>(req, "command", {});
  FROST_ASSIGN(e.identity, identify(pid));

  runtime_.erase(e.name);
  FROST_ASSIGN(json first, snapshot_entry(e, "force", {}));
  FROST_TRY(registry_.add(e));
  Status saved = save_registry();
  if (!saved.ok()) {
    registry_.remove(e.name);
    return saved.error();
  }
  runtime_[e.name].due = Clock::now() + std::chrono::milliseconds(e.every_ms);
  first["policy"] = policy_name(e.policy);
  first["every_ms"] = e.every_ms;
  first["daemon"] = options_.daemon;
  return first;
}

Result<json> Service::unpersist(const json& req, const Caller& caller) {
  std::string name = req.at("name").get<std::string>();
  PersistentProcess* e = registry_.find(name);
  if (e == nullptr) return Error::not_found(fmt::format("no persistent process named '{}' (see frost ls)", name));
  FROST_TRY(may_act(caller, e->uid, fmt::format("'{}'", name)));
  json out{{"name", name}, {"pid", e->pid}, {"state", state_name(e->state)}};
  registry_.remove(name);
  FROST_TRY(save_registry());
  runtime_.erase(name);  // drops the tracker: its registration goes with it
  return out;
}

// --- snapshots ------------------------------------------------------------------

Result<json> Service::snapshot_entry(PersistentProcess& e, const std::string& kind, const ProgressFn& progress,
                                     bool periodic) {
  if (serving(e.pid)) {
    // Pages not yet in would be missing from the snapshot.
    return Error(ErrorKind::kBusy, fmt::format("'{}' is still being paged in after its melt; try again shortly", e.name));
  }
  Runtime& rt = runtime_[e.name];
  dump::CaptureOptions opt;
  opt.name = e.name;
  opt.mode = kind == "freeze" ? dump::CaptureMode::kFreeze : dump::CaptureMode::kSnapshot;
  opt.progress = progress;
  opt.tracker = options_.daemon ? &rt.tracker : nullptr;
  opt.precopy = kind == "force";
  opt.background = periodic;
  Result<dump::CaptureResult> r = dump::capture(e.pid, *store_, opt);
  if (!r.ok()) {
    (void)log_.append(e.name, LogRecord{0, "failed", 0, 0, 0, 0, 0, 0, kind + ": " + r.error().to_string()});
    return r.error().context(fmt::format("{} snapshot of '{}' (pid {})", kind, e.name, e.pid));
  }
  LogRecord rec{0, kind, r->snapshot, r->parent, r->pages, r->bytes_stored, r->stopped_ms, r->precopy_rounds, ""};
  if (!r->full_copy_reason.empty()) rec.note = "full copy: " + r->full_copy_reason;
  else if (!options_.daemon) rec.note = "full copy: taken without frostd (dirty tracking lives in the daemon)";
  FROST_TRY(log_.append(e.name, rec));
  e.last_snapshot = r->snapshot;
  json j = capture_json(*r, kind);
  if (!rec.note.empty()) j["note"] = rec.note;
  return j;
}

Result<json> Service::snapshot(const json& req, const Caller& caller, const ProgressFn& progress) {
  std::string target = req.at("target").get<std::string>();
  std::string kind = field<std::string>(req, "kind", "force");
  if (kind != "weak" && kind != "force") return Error::invalid(fmt::format("unknown snapshot kind '{}'", kind));
  std::optional<pid_t> pid = as_pid(target);
  PersistentProcess* e = pid ? registry_.find_pid(*pid) : registry_.find(target);
  if (e != nullptr && e->state == ProcessState::kRunning) {
    FROST_TRY(may_act(caller, e->uid, fmt::format("'{}'", e->name)));
    if (kind == "weak") {
      Runtime& rt = runtime_[e->name];
      rt.probe.forget();
      std::optional<std::string> busy = rt.probe.look(e->pid);
      for (int i = 0; i < 20 && busy; ++i) {  // up to 2 s for an idle moment
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        busy = rt.probe.look(e->pid);
      }
      if (busy) {
        (void)log_.append(e->name, LogRecord{0, "skipped", 0, 0, 0, 0, 0, 0, "weak: " + *busy});
        return Error(ErrorKind::kBusy, fmt::format("'{}' is not idle ({}); weak snapshot skipped", e->name, *busy));
      }
    }
    return snapshot_entry(*e, kind, progress);
  }
  // Not persistent: a plain snapshot, as `frost snapshot` has always taken.
  if (!pid) {
    Result<store::SnapshotId> id = store_->latest(target);
    if (!id.ok()) return Error::not_found(fmt::format("no process or image named '{}'", target));
    FROST_ASSIGN(std::vector<uint8_t> meta, store_->read_meta(*id));
    FROST_ASSIGN(image::ProcessImage img, image::decode(meta));
    pid = img.pid;
  }
  FROST_ASSIGN(uid_t uid, owner_of(*pid));
  FROST_TRY(may_act(caller, uid, fmt::format("process {}", *pid)));
  dump::CaptureOptions opt;
  opt.name = field<std::string>(req, "name", as_pid(target) ? "" : target);
  opt.progress = progress;
  FROST_ASSIGN(dump::CaptureResult r, dump::capture(*pid, *store_, opt));
  return capture_json(r, kind);
}

Result<json> Service::freeze(const json& req, const Caller& caller, const ProgressFn& progress) {
  std::string target = req.at("target").get<std::string>();
  std::optional<pid_t> pid = as_pid(target);
  PersistentProcess* e = pid ? registry_.find_pid(*pid) : registry_.find(target);
  if (e != nullptr) {
    FROST_TRY(may_act(caller, e->uid, fmt::format("'{}'", e->name)));
    if (e->state == ProcessState::kFrozen) return Error::invalid(fmt::format("'{}' is already frozen", e->name));
    if (!still_running(e->pid, e->identity)) {
      return Error::not_found(fmt::format("'{}' (pid {}) is not running; frost recover melts it", e->name, e->pid));
    }
    FROST_ASSIGN(json j, snapshot_entry(*e, "freeze", progress));
    e->state = ProcessState::kFrozen;
    runtime_[e->name].tracker.reset();
    FROST_TRY(save_registry());
    reap_children();
    j["frozen"] = true;
    return j;
  }
  if (!pid) return Error::invalid(fmt::format("'{}' is not a process id (nor a persistent process)", target));
  FROST_ASSIGN(uid_t uid, owner_of(*pid));
  FROST_TRY(may_act(caller, uid, fmt::format("process {}", *pid)));
  dump::CaptureOptions opt;
  opt.name = field<std::string>(req, "name", "");
  opt.mode = dump::CaptureMode::kFreeze;
  opt.progress = progress;
  FROST_ASSIGN(dump::CaptureResult r, dump::capture(*pid, *store_, opt));
  reap_children();
  json j = capture_json(r, "freeze");
  j["frozen"] = true;
  return j;
}

// --- melting ----------------------------------------------------------------------

Result<json> Service::melt_image(const std::string& name, std::optional<store::SnapshotId> snapshot, bool eager,
                                 bool pidns, const ProgressFn& progress) {
  restore::MeltOptions opt;
  opt.pidns = pidns;
  opt.snapshot = snapshot;
  opt.progress = progress;
  opt.lazy = options_.daemon && !eager;
  // Only a daemon outlives this request to hold a new terminal.
  opt.new_terminal = options_.daemon;
  auto summary = [](const restore::MeltResult& r, bool lazy) {
    json j{{"pid", r.pid}, {"snapshot", r.snapshot}, {"threads", r.threads},
           {"pages", r.pages}, {"seconds", r.seconds}, {"lazy", lazy}, {"terminal", bool(r.terminal)}};
    if (r.ns_init != 0) j.update(json{{"pidns", true}, {"ns_pid", r.ns_pid}, {"ns_init", r.ns_init}});
    return j;
  };
  if (!opt.lazy) {
    FROST_ASSIGN(restore::MeltResult r, restore::melt(*store_, name, opt));
    children_.insert(r.pid);
    if (r.ns_init != 0) children_.insert(r.ns_init);
    json j = summary(r, false);
    if (r.terminal) keep_terminal(name, r.pid, std::move(r.terminal));
    return j;
  }
  // The page server must run on the thread that made the process: the
  // process dies with that thread (parent-death signal) rather than read
  // zeros when its server is gone.
  auto promise = std::make_shared<std::promise<Result<json>>>();
  std::future<Result<json>> answer = promise->get_future();
  std::thread server([this, promise, name, opt, summary]() {
    Result<restore::MeltResult> r = restore::melt(*store_, name, opt);
    if (!r.ok()) {
      promise->set_value(r.error());
      return;
    }
    pid_t pid = r->pid;
    std::unique_ptr<lazy::PageServer> pager = std::move(r->pager);
    json j = summary(*r, pager != nullptr);
    if (r->terminal) keep_terminal(name, pid, std::move(r->terminal));
    if (pager != nullptr) {
      std::lock_guard<std::mutex> lock(pager_mu_);
      serving_.insert(pid);
    }
    promise->set_value(j);
    if (pager == nullptr) return;
    Status served = pager->run();
    if (!served.ok()) {
      (void)log_.append(name, LogRecord{0, "failed", 0, 0, 0, 0, 0, 0, "page server: " + served.error().to_string()});
    }
    std::lock_guard<std::mutex> lock(pager_mu_);
    serving_.erase(pid);
  });
  {
    std::lock_guard<std::mutex> lock(pager_mu_);
    pagers_.push_back(std::move(server));
  }
  FROST_ASSIGN(json j, answer.get());
  children_.insert(j.at("pid").get<pid_t>());
  if (j.contains("ns_init")) children_.insert(j["ns_init"].get<pid_t>());
  return j;
}

Result<json> Service::melt_entry(PersistentProcess& e, std::optional<store::SnapshotId> snapshot, bool eager,
                                 bool pidns, const std::string& log_kind, const ProgressFn& progress) {
  Result<json> r = melt_image(e.name, snapshot, eager, pidns, progress);
  if (!r.ok()) {
    (void)log_.append(e.name, LogRecord{0, "failed", 0, 0, 0, 0, 0, 0, log_kind + ": " + r.error().to_string()});
    return r.error();
  }
  pid_t pid = r->at("pid").get<pid_t>();
  pid_t ns_pid = r->value("ns_pid", pid_t(0));
  FROST_TRY(now_running(e, pid, ns_pid, log_kind,
                        fmt::format("melted from snapshot {} as pid {}{}{}{}", r->at("snapshot").get<uint64_t>(), pid,
                                    ns_pid != 0 ? fmt::format(" (pid {} in a new PID namespace)", ns_pid) : "",
                                    r->at("lazy").get<bool>() ? " (lazily)" : "",
                                    r->value("terminal", false) ? fmt::format("; on a new terminal: frost attach {}", e.name) : "")));
  (*r)["name"] = e.name;
  return r;
}

Status Service::now_running(PersistentProcess& e, pid_t pid, pid_t ns_pid, const std::string& log_kind,
                            const std::string& note) {
  e.state = ProcessState::kRunning;
  e.pid = pid;
  e.ns_pid = ns_pid;
  FROST_ASSIGN(e.identity, identify(e.pid));
  FROST_TRY(save_registry());
  Runtime& rt = runtime_[e.name];
  rt.tracker.reset();
  rt.probe.forget();
  rt.looking_since.reset();
  rt.gone_logged = false;
  rt.due = Clock::now() + std::chrono::milliseconds(e.every_ms);
  LogRecord rec{0, log_kind, 0, 0, 0, 0, 0, 0, ""};
  rec.note = note;
  (void)log_.append(e.name, rec);
  return Status::Ok();
}

void Service::keep_terminal(const std::string& name, pid_t pid, UniqueFd master) {
  std::lock_guard<std::mutex> lock(terminal_mu_);
  terminals_[name] = HeldTerminal{std::move(master), pid};
}

void Service::drop_ended_terminals() {
  std::lock_guard<std::mutex> lock(terminal_mu_);
  std::erase_if(terminals_, [](const auto& t) { return ::kill(t.second.pid, 0) != 0 && errno == ESRCH; });
}

// A copy of the terminal frostd holds for a melted process; the answer
// carries it as "_fd", which the daemon passes along (SCM_RIGHTS) and closes.
Result<json> Service::attach(const json& req, const Caller& caller) {
  std::string name = req.at("name").get<std::string>();
  if (!options_.daemon) return Error::invalid("frostd is not running: only frostd holds the terminals of what it melted");
  drop_ended_terminals();
  std::lock_guard<std::mutex> lock(terminal_mu_);
  auto it = terminals_.find(name);
  if (it == terminals_.end()) {
    return Error::not_found(fmt::format("frostd holds no terminal for '{}' (only a process melted by frostd whose "
                                        "terminal was gone has one)", name));
  }
  FROST_ASSIGN(uid_t uid, owner_of(it->second.pid));
  FROST_TRY(may_act(caller, uid, fmt::format("'{}'", name)));
  int copy = ::fcntl(it->second.master.get(), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return Error::io("copying the terminal");
  return json{{"name", name}, {"pid", it->second.pid}, {"_fd", copy}};
}

// A melt the CLI made itself (a shell job, or with no frostd running): the
// registry learns the new process, or `frost recover` would take the old
// one for gone and melt a second copy.
Result<json> Service::adopt(const json& req, const Caller& caller) {
  std::string name = req.at("name").get<std::string>();
  pid_t pid = req.at("pid").get<pid_t>();
  pid_t ns_pid = field<pid_t>(req, "ns_pid", 0);
  PersistentProcess* e = registry_.find(name);
  if (e == nullptr) return json{{"name", name}, {"adopted", false}};
  FROST_TRY(may_act(caller, e->uid, fmt::format("'{}'", name)));
  FROST_ASSIGN(uid_t uid, owner_of(pid));
  FROST_TRY(may_act(caller, uid, fmt::format("process {}", pid)));
  if (e->state == ProcessState::kRunning && e->pid != pid && still_running(e->pid, e->identity)) {
    return Error(ErrorKind::kExists, fmt::format("'{}' is running as pid {}, not {}", name, e->pid, pid));
  }
  std::string how = field<std::string>(req, "how", "");
  FROST_TRY(now_running(*e, pid, ns_pid, "melt",
                        fmt::format("melted from snapshot {} as pid {}{}{}", field<uint64_t>(req, "snapshot", 0), pid,
                                    ns_pid != 0 ? fmt::format(" (pid {} in a new PID namespace)", ns_pid) : "",
                                    how.empty() ? "" : " (" + how + ")")));
  return json{{"name", name}, {"adopted", true}, {"pid", pid}};
}

Result<json> Service::melt(const json& req, const Caller& caller, const ProgressFn& progress) {
  std::string name = req.at("name").get<std::string>();
  bool eager = field<bool>(req, "eager", false);
  bool pidns = field<bool>(req, "pidns", false);
  std::optional<store::SnapshotId> snapshot;
  if (req.contains("snapshot") && !req["snapshot"].is_null()) snapshot = req["snapshot"].get<store::SnapshotId>();
  PersistentProcess* e = registry_.find(name);
  if (e != nullptr) {
    FROST_TRY(may_act(caller, e->uid, fmt::format("'{}'", name)));
    if (e->state == ProcessState::kRunning && still_running(e->pid, e->identity)) {
      return Error(ErrorKind::kExists, fmt::format("'{}' is running (pid {}); freeze it first", name, e->pid));
    }
    return melt_entry(*e, snapshot, eager, pidns, "melt", progress);
  }
  if (caller.uid != 0) {
    // Whose image it is shows in the image itself.
    Result<store::SnapshotId> id = snapshot ? Result<store::SnapshotId>(*snapshot) : store_->latest(name);
    if (id.ok()) {
      FROST_ASSIGN(std::vector<uint8_t> meta, store_->read_meta(*id));
      FROST_ASSIGN(image::ProcessImage img, image::decode(meta));
      FROST_TRY(may_act(caller, img.creds.uids[0], fmt::format("image '{}'", name)));
    }
  }
  FROST_ASSIGN(json j, melt_image(name, snapshot, eager, pidns, progress));
  j["name"] = name;
  return j;
}

// Whether the saved PID of a process that is not running is held by
// another process (or one of its threads) on this machine.
bool Service::pid_taken(const PersistentProcess& e) {
  pid_t saved = e.ns_pid != 0 ? e.ns_pid : e.pid;
  return ::access(fmt::format("/proc/{}", saved).c_str(), F_OK) == 0;
}

Result<json> Service::recover(const Caller& caller) {
  json done = json::array(), failed = json::array(), alive = json::array();
  for (PersistentProcess& e : registry_.entries()) {
    if (e.state != ProcessState::kRunning) continue;
    if (caller.uid != 0 && caller.uid != e.uid) continue;
    if (still_running(e.pid, e.identity)) {
      alive.push_back(e.name);
      continue;
    }
    Result<store::SnapshotId> newest = store_->latest(e.name);
    Result<store::SnapshotId> intact = store_->latest_intact(e.name);
    if (!intact.ok()) {
      std::string why = fmt::format("no intact snapshot: {}", intact.error().to_string());
      (void)log_.append(e.name, LogRecord{0, "failed", 0, 0, 0, 0, 0, 0, "recover: " + why});
      failed.push_back(json{{"name", e.name}, {"error", why}});
      continue;
    }
    // After a reboot the number usually belongs to someone else: then the
    // process gets a PID namespace in which it is its own again.
    Result<json> r = melt_entry(e, *intact, false, pid_taken(e), "recover", {});
    if (!r.ok()) {
      failed.push_back(json{{"name", e.name}, {"error", r.error().to_string()}});
      continue;
    }
    if (newest.ok() && *newest != *intact) {
      (*r)["note"] = fmt::format("the newest snapshot {} is damaged; melted from {}", *newest, *intact);
    }
    done.push_back(*r);
  }
  return json{{"recovered", done}, {"failed", failed}, {"running", alive}};
}

Result<json> Service::hibernate(const Caller& caller) {
  json done = json::array(), failed = json::array();
  for (PersistentProcess& e : registry_.entries()) {
    if (e.state != ProcessState::kRunning || (caller.uid != 0 && caller.uid != e.uid)) continue;
    if (!still_running(e.pid, e.identity)) continue;
    Result<json> r = snapshot_entry(e, "freeze", {});
    if (!r.ok()) {
      failed.push_back(json{{"name", e.name}, {"error", r.error().to_string()}});
      continue;
    }
    e.state = ProcessState::kFrozen;
    runtime_[e.name].tracker.reset();
    done.push_back(*r);
  }
  FROST_TRY(save_registry());
  reap_children();
  return json{{"frozen", done}, {"failed", failed}};
}

Result<json> Service::resume(const Caller& caller) {
  json done = json::array(), failed = json::array();
  for (PersistentProcess& e : registry_.entries()) {
    if (e.state != ProcessState::kFrozen || (caller.uid != 0 && caller.uid != e.uid)) continue;
    Result<json> r = melt_entry(e, std::nullopt, false, pid_taken(e), "resume", {});
    if (!r.ok()) {
      failed.push_back(json{{"name", e.name}, {"error", r.error().to_string()}});
      continue;
    }
    done.push_back(*r);
  }
  return json{{"melted", done}, {"failed", failed}};
}

Result<json> Service::list(const Caller&) {
  json out = json::array();
  for (const PersistentProcess& e : registry_.entries()) {
    bool alive = still_running(e.pid, e.identity);
    out.push_back(json{{"name", e.name},
                       {"pid", e.pid},
                       {"uid", e.uid},
                       {"policy", policy_name(e.policy)},
                       {"every_ms", e.every_ms},
                       {"state", e.state == ProcessState::kFrozen ? "frozen" : alive ? "running" : "gone"},
                       {"command", e.command},
                       {"paging_in", serving(e.pid)}});
  }
  return json{{"processes", out}, {"daemon", options_.daemon}};
}

Result<json> Service::remove(const json& req, const Caller& caller) {
  std::string name = req.at("name").get<std::string>();
  if (const PersistentProcess* e = registry_.find(name); e != nullptr) {
    return Error::invalid(fmt::format("'{}' is a persistent process; frost unpersist it first", name));
  }
  Result<store::SnapshotId> id = store_->latest(name);
  if (!id.ok()) return Error::not_found(fmt::format("no image named '{}' (see frost ls)", name));
  if (caller.uid != 0) {
    FROST_ASSIGN(std::vector<uint8_t> meta, store_->read_meta(*id));
    FROST_ASSIGN(image::ProcessImage img, image::decode(meta));
    FROST_TRY(may_act(caller, img.creds.uids[0], fmt::format("image '{}'", name)));
  }
  FROST_TRY(store_->remove_owner(name));
  log_.remove(name);
  return json{{"name", name}, {"removed", true}};
}

// --- timers -------------------------------------------------------------------------

void Service::reap_children() {
  for (auto it = children_.begin(); it != children_.end();) {
    // A process still being paged in is left alone: its server may ptrace it.
    if (serving(*it)) {
      ++it;
      continue;
    }
    int status = 0;
    pid_t r = ::waitpid(*it, &status, WNOHANG);
    if (r == *it || (r < 0 && errno == ECHILD)) it = children_.erase(it);
    else ++it;
  }
}

void Service::tick_one(PersistentProcess& e, Runtime& rt, Clock::time_point now) {
  if (e.state != ProcessState::kRunning || e.every_ms == 0 || now < rt.due) return;
  const auto every = std::chrono::milliseconds(e.every_ms);
  if (!still_running(e.pid, e.identity)) {
    if (!rt.gone_logged) {
      (void)log_.append(e.name, LogRecord{0, "gone", 0, 0, 0, 0, 0, 0,
                                          fmt::format("process {} ended; frost recover melts it again", e.pid)});
      rt.gone_logged = true;
      rt.tracker.reset();
    }
    return;
  }
  if (serving(e.pid)) return;  // no snapshot until every page is in
  if (e.policy == Policy::kForce) {
    (void)snapshot_entry(e, "force", {}, true);
    rt.due = now + every;
    return;
  }
  // Weak: look every tick (100 ms) until an idle moment.
  if (!rt.looking_since) {
    rt.looking_since = now;
    rt.probe.forget();
  }
  std::optional<std::string> busy = rt.probe.look(e.pid);
  if (!busy) {
    (void)snapshot_entry(e, "weak", {}, true);
    rt.looking_since.reset();
    rt.due = now + every;
    return;
  }
  if (*busy != "first look") rt.last_busy = *busy;
  // A whole interval without an idle moment: that snapshot is skipped, and
  // the look goes on for the next one.
  if (now - *rt.looking_since >= every) {
    (void)log_.append(e.name, LogRecord{0, "skipped", 0, 0, 0, 0, 0, 0, "weak: " + rt.last_busy});
    rt.looking_since = now;
  }
}

std::chrono::milliseconds Service::tick() {
  std::lock_guard<std::mutex> lock(mu_);
  Clock::time_point now = Clock::now();
  for (PersistentProcess& e : registry_.entries()) tick_one(e, runtime_[e.name], Clock::now());
  reap_children();
  drop_ended_terminals();
  Clock::time_point next = now + std::chrono::milliseconds(1000);
  for (PersistentProcess& e : registry_.entries()) {
    const Runtime& rt = runtime_[e.name];
    if (e.state != ProcessState::kRunning || e.every_ms == 0) continue;
    next = std::min(next, rt.looking_since ? Clock::now() + std::chrono::milliseconds(100) : rt.due);
  }
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
  return std::clamp(wait, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

}  // namespace frost::daemon
