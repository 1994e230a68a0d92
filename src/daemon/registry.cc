#include "daemon/registry.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "daemon/atomic_file.h"

namespace frost::daemon {

using nlohmann::json;

const char* policy_name(Policy p) { return p == Policy::kWeak ? "weak" : "force"; }

Result<Policy> parse_policy(const std::string& s) {
  if (s == "weak") return Policy::kWeak;
  if (s == "force") return Policy::kForce;
  return Error::invalid(fmt::format("unknown policy '{}' (weak or force)", s));
}

const char* state_name(ProcessState s) { return s == ProcessState::kFrozen ? "frozen" : "running"; }

namespace {

constexpr int kFormatVersion = 1;

json to_json(const PersistentProcess& p) {
  return json{{"name", p.name},
              {"pid", p.pid},
              {"ns_pid", p.ns_pid},
              {"uid", p.uid},
              {"policy", policy_name(p.policy)},
              {"every_ms", p.every_ms},
              {"state", state_name(p.state)},
              {"start_ticks", p.identity.start_ticks},
              {"boot_id", p.identity.boot_id},
              {"command", p.command},
              {"last_snapshot", p.last_snapshot}};
}

Result<PersistentProcess> from_json(const json& j) {
  PersistentProcess p;
  p.name = j.at("name").get<std::string>();
  p.pid = j.at("pid").get<pid_t>();
  p.ns_pid = j.value("ns_pid", pid_t(0));
  p.uid = j.at("uid").get<uid_t>();
  FROST_ASSIGN(p.policy, parse_policy(j.at("policy").get<std::string>()));
  p.every_ms = j.at("every_ms").get<uint64_t>();
  std::string state = j.at("state").get<std::string>();
  if (state != "running" && state != "frozen") return Error::corruption("unknown state '" + state + "'");
  p.state = state == "frozen" ? ProcessState::kFrozen : ProcessState::kRunning;
  p.identity.start_ticks = j.at("start_ticks").get<uint64_t>();
  p.identity.boot_id = j.at("boot_id").get<std::string>();
  p.command = j.at("command").get<std::vector<std::string>>();
  p.last_snapshot = j.at("last_snapshot").get<store::SnapshotId>();
  if (p.name.empty() || p.pid <= 0) return Error::corruption("an entry without a name or pid");
  return p;
}

}  // namespace

Result<Registry> Registry::load(const std::string& home) {
  Registry r(home);
  Result<std::string> text = read_small_file(path(home));
  if (!text.ok()) {
    if (text.error().kind() == ErrorKind::kNotFound) return r;
    return text.error();
  }
  try {
    json j = json::parse(*text);
    if (j.at("version").get<int>() != kFormatVersion) {
      return Error(ErrorKind::kUnsupported, fmt::format("{}: unknown format version", path(home)));
    }
    for (const json& e : j.at("processes")) {
      Result<PersistentProcess> p = from_json(e);
      if (!p.ok()) return Error::corruption(fmt::format("{}: {}", path(home), p.error().to_string()));
      r.entries_.push_back(std::move(*p));
    }
  } catch (const json::exception& e) {
    return Error::corruption(fmt::format("{} is damaged: {}", path(home), e.what()));
  }
  return r;
}

Status Registry::save() const {
  json list = json::array();
  for (const PersistentProcess& p : entries_) list.push_back(to_json(p));
  json j{{"version", kFormatVersion}, {"processes", list}};
  return write_file_atomically(path(home_), j.dump(2) + "\n");
}

PersistentProcess* Registry::find(const std::string& name) {
  for (PersistentProcess& p : entries_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const PersistentProcess* Registry::find(const std::string& name) const {
  return const_cast<Registry*>(this)->find(name);
}

PersistentProcess* Registry::find_pid(pid_t pid) {
  for (PersistentProcess& p : entries_) {
    if (p.pid == pid) return &p;
  }
  return nullptr;
}

Status Registry::add(PersistentProcess p) {
  if (find(p.name) != nullptr) {
    return Error(ErrorKind::kExists, fmt::format("'{}' is already a persistent process (see frost ls)", p.name));
  }
  entries_.push_back(std::move(p));
  return Status::Ok();
}

bool Registry::remove(const std::string& name) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->name == name) {
      entries_.erase(it);
      return true;
    }
  }
  return false;
}

}  // namespace frost::daemon
