// Serves the memory of a lazily melted process (DESIGN.md, "Restoring a
// process"; docs/LAZY_MELT.md): the process runs while its private anonymous
// pages are still in the store, and each one arrives either when the process
// touches it (a userfaultfd missing-page fault, answered with UFFDIO_COPY) or
// when the background prefetch, a walk of the snapshot in page order, gets
// to it. Once the walk is through, every page is in and the server lets go.
//
// One server follows one melted process and every process it forks while
// pages are pending: each address space has its own userfaultfd (the kernel
// makes one per fork, UFFD_EVENT_FORK) and its own ExtentMap of where the
// snapshot's pages are now, kept up to date from the REMAP, REMOVE and UNMAP
// events. An address in no extent reads as zero.
//
// Threads: run() must be called on the thread that called melt(): the
// process dies with that thread (PR_SET_PDEATHSIG), so that a crash of the
// server can never let it read a zero page where its data should be. The
// store must outlive the server, which holds the snapshot (Store::hold).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "lazy/extent_map.h"
#include "lazy/userfault.h"
#include "store/store.h"

namespace frost::lazy {

class PageServer {
 public:
  // Run once every page is in, if the process still lives, just before the
  // userfaultfds are closed: undoes what kept the process tied to the
  // server. `uffd` is the server's fd of the process's own address space.
  using ReleaseFn = std::function<Status(pid_t pid, int uffd)>;

  // A server for process pid, whose address space `uffd` belongs to (made
  // in the process, see proc/remote_userfaultfd.h; the handshake is done
  // here, asking for fork, mremap, madvise and munmap events). Nothing is
  // registered yet.
  static Result<std::unique_ptr<PageServer>> create(store::Store& store, store::SnapshotId snapshot,
                                                    pid_t pid, UniqueFd uffd);

  // Before the process runs: registers [start, end) for missing-page faults,
  // served from the snapshot's pages vpn = start / 4096 on.
  Status add_area(uint64_t start, uint64_t end);
  // Stored pages the registered areas hold (the pages still to come).
  void set_pending(uint64_t pages) { pending_ = pages; }
  uint64_t pages_pending() const { return pending_; }
  void set_release(ReleaseFn fn) { release_ = std::move(fn); }

  // While the process is being built (melt's remote calls can make the
  // kernel touch a pending page, e.g. when it registers rseq): answers
  // faults on another thread until the returned object is destroyed. The
  // server must not be used otherwise meanwhile.
  class FaultHelper;
  std::unique_ptr<FaultHelper> serve_faults_in_background();

  // On the thread that called melt(): serves until every page is in (then
  // closes the userfaultfds and calls the release function) or every
  // address space is gone. On an error the process is killed (SIGKILL):
  // its pages could no longer be served.
  Status run();

  pid_t pid() const { return pid_; }
  uint64_t pages_faulted() const { return faulted_; }
  uint64_t pages_prefetched() const { return prefetched_; }
  uint64_t pages_zeroed() const { return zeroed_; }
  // Address spaces served, the process's own included (forks add more).
  uint64_t address_spaces() const { return spaces_seen_; }
  double seconds() const { return seconds_; }

  // Kills the process when run() did not finish: dropping the
  // userfaultfds would leave its pending pages reading as zero.
  ~PageServer();

 private:
  struct Space;
  PageServer(store::Store& store, store::SnapshotId snapshot, pid_t pid, UniqueFd pidfd);

  Status serve_until_stopped(int stop_fd);
  Status poll_once(int timeout_ms);
  Status wait_changes(Space& space);
  void place_neighbours(Space& space, uint64_t page, uint64_t vpn);
  Status drain(Space& space);
  Status handle_event(Space& space, const uffd_msg& msg);
  Status serve_faults(Space& space);
  Status serve_fault(Space& space, uint64_t addr);
  Status place_run(Space& space, uint64_t vpn, uint64_t pages, const uint8_t* data);
  Status prefetch();
  void close_all();
  bool process_alive();
  void kill_process();
  bool any_space_alive() const;

  store::Store& store_;
  store::SnapshotId snapshot_;
  pid_t pid_;
  UniqueFd pidfd_;
  bool held_ = false;
  bool process_exited_ = false;
  bool done_ = false;
  std::vector<std::unique_ptr<Space>> spaces_;
  ReleaseFn release_;
  uint64_t last_vpn_ = 0;  // the highest snapshot page any area holds
  uint64_t pending_ = 0, faulted_ = 0, prefetched_ = 0, zeroed_ = 0, spaces_seen_ = 0;
  double seconds_ = 0;
};

// Answers faults on its own thread from construction until stop().
class PageServer::FaultHelper {
 public:
  explicit FaultHelper(PageServer& server);
  ~FaultHelper() { (void)stop(); }
  FaultHelper(const FaultHelper&) = delete;
  FaultHelper& operator=(const FaultHelper&) = delete;
  // Ends the thread; returns what stopped it early, if anything did.
  Status stop();

 private:
  UniqueFd stop_fd_;
  Status outcome_;
  std::thread thread_;
};

}  // namespace frost::lazy
