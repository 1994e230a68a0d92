// Snapshot -> running process: `frost melt`. Eager: all memory is copied
// before the process runs. Lazy (MeltOptions::lazy): the private anonymous
// areas are registered with a userfaultfd instead of filled, and the
// process runs at once; MeltResult::pager then brings the pages in
// (lazy/page_server.h, docs/LAZY_MELT.md).
//
//   image + checks (IDs free, files unchanged)  -- nothing created yet
//   fds and helper files opened in frost
//   stub at the saved PID, seized
//   address space, pages, threads at their TIDs, per-thread state, registers
//   detach: the process runs on from where it was frozen
//
// On any failure the stub is killed and reaped; the store is only read.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "dump/progress.h"
#include "lazy/page_server.h"
#include "store/store.h"

namespace frost::restore {

struct MeltOptions {
  std::optional<store::SnapshotId> snapshot;  // default: the newest of the name
  // Terminal fds go to this terminal (the caller's); -1: a terminal fd fails the melt.
  int shell_job_tty = -1;
  // With no shell_job_tty: terminal fds go to a new pseudo-terminal, of
  // which the process becomes the session leader, and whose master comes
  // back in MeltResult::terminal (frostd holds it; `frost attach` connects
  // a user's terminal to it). Without either, a terminal fd fails the melt.
  bool new_terminal = false;
  // How long to wait for the saved PID/TIDs to be released (a frozen
  // process's zombie waits for its parent to reap it).
  std::chrono::milliseconds id_wait{10'000};
  ProgressFn progress;
  // Page the private anonymous memory in on demand (and in the background)
  // instead of copying it before the process runs.
  bool lazy = false;
  // Melt into a new PID namespace, where the process has its saved PID and
  // TIDs whatever holds them on this machine (needs CAP_SYS_ADMIN).
  bool pidns = false;
};

struct MeltResult {
  pid_t pid = 0;       // as seen from here (in a new PID namespace: not the saved one)
  pid_t ns_pid = 0;    // the saved PID, which the process sees as its own
  pid_t ns_init = 0;   // a new PID namespace's init (frost's child), else 0
  store::SnapshotId snapshot = 0;
  int threads = 0;
  uint64_t pages = 0;
  double seconds = 0;  // until the process runs
  // Set when lazy and pages are pending. The process runs, and waits for
  // every pending page it touches until pager->run() serves it: call run()
  // at once, on the thread that called melt(). Dropping the pager without
  // run() kills the process.
  std::unique_ptr<lazy::PageServer> pager;
  // MeltOptions::new_terminal and the image had a terminal: its master side.
  UniqueFd terminal;
};

Result<MeltResult> melt(store::Store& store, const std::string& name, const MeltOptions& options);

}  // namespace frost::restore
