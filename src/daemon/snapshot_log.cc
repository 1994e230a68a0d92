#include "daemon/snapshot_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/unique_fd.h"
#include "daemon/atomic_file.h"

namespace frost::daemon {

using nlohmann::json;

uint64_t wall_clock_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

std::string SnapshotLog::path(const std::string& name) const { return home_ + "/log/" + name + ".jsonl"; }

Status SnapshotLog::append(const std::string& name, LogRecord r) const {
  if (r.time_ns == 0) r.time_ns = wall_clock_ns();
  std::string dir = home_ + "/log";
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Error::io("cannot create " + dir);
  json j{{"time_ns", r.time_ns}, {"kind", r.kind}};
  if (r.snapshot != 0) {
    j["snapshot"] = r.snapshot;
    j["parent"] = r.parent;
    j["pages"] = r.pages;
    j["bytes"] = r.bytes;
    j["pause_ms"] = r.pause_ms;
    j["precopy_rounds"] = r.precopy_rounds;
  }
  if (!r.note.empty()) j["note"] = r.note;
  std::string line = j.dump() + "\n";
  std::string file = path(name);
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Error::io("cannot open " + file);
  // One write of a whole line: a crash leaves at most a torn last line.
  if (::write(fd.get(), line.data(), line.size()) != ssize_t(line.size())) return Error::io("cannot append to " + file);
  if (::fdatasync(fd.get()) != 0) return Error::io("cannot sync " + file);
  return Status::Ok();
}

Result<std::vector<LogRecord>> SnapshotLog::read(const std::string& name) const {
  std::vector<LogRecord> out;
  Result<std::string> text = read_small_file(path(name));
  if (!text.ok()) {
    if (text.error().kind() == ErrorKind::kNotFound) return out;
    return text.error();
  }
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      json j = json::parse(line);
      LogRecord r;
      r.time_ns = j.at("time_ns").get<uint64_t>();
      r.kind = j.at("kind").get<std::string>();
      r.snapshot = j.value("snapshot", store::SnapshotId(0));
      r.parent = j.value("parent", store::SnapshotId(0));
      r.pages = j.value("pages", uint64_t(0));
      r.bytes = j.value("bytes", uint64_t(0));
      r.pause_ms = j.value("pause_ms", 0.0);
      r.precopy_rounds = j.value("precopy_rounds", 0);
      r.note = j.value("note", std::string());
      out.push_back(std::move(r));
    } catch (const json::exception&) {
      if (in.peek() == EOF) break;  // torn by a crash while appending
      return Error::corruption(fmt::format("{}: a damaged line: {}", path(name), line.substr(0, 80)));
    }
  }
  return out;
}

void SnapshotLog::remove(const std::string& name) const { ::unlink(path(name).c_str()); }

}  // namespace frost::daemon
