// Per-process history for `frost log`: every snapshot taken (time, kind,
// pages, bytes, pause) and every one skipped, with the reason. One JSON
// object per line in $FROST_HOME/log/NAME.jsonl, appended and synced after
// the snapshot's commit, so a logged commit is one recovery may rely on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/store.h"

namespace frost::daemon {

struct LogRecord {
  uint64_t time_ns = 0;           // wall clock
  std::string kind;               // weak, force, freeze, skipped, melt, recover, persist
  store::SnapshotId snapshot = 0;
  store::SnapshotId parent = 0;   // 0: a full snapshot
  uint64_t pages = 0;             // pages written into the store
  uint64_t bytes = 0;             // bytes the snapshot added to the store
  double pause_ms = 0;            // how long the process was stopped
  int precopy_rounds = 0;
  std::string note;               // a skip's reason, a fallback, an error
};

class SnapshotLog {
 public:
  explicit SnapshotLog(std::string home) : home_(std::move(home)) {}
  // Appends and syncs one record; time_ns is filled when zero.
  Status append(const std::string& name, LogRecord record) const;
  // Every record, oldest first. A torn last line (a crash while appending) is left out.
  Result<std::vector<LogRecord>> read(const std::string& name) const;
  // Forgets a process's history.
  void remove(const std::string& name) const;

 private:
  std::string path(const std::string& name) const;
  std::string home_;
};

uint64_t wall_clock_ns();

}  // namespace frost::daemon
