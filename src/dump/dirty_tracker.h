// Which pages a process wrote since its last snapshot, so the next one
// stores only those (DESIGN.md, "Dirty tracking").
//
// Soft-dirty bits are off on these machines. Instead a userfaultfd is made in
// the process (a remote call), taken by frost (pidfd_getfd) and closed there;
// every area is registered for write-protect in async mode, where a write is
// resolved by the kernel itself (no fault reaches frost) and only marks the
// page written. PAGEMAP_SCAN with PM_SCAN_WP_MATCHING reads the written pages
// and protects them again in one pass.
//
// Registration belongs to an area: one mapped after the tracker armed, or
// unmapped and mapped again, carries no "uw" flag in smaps and is copied whole
// by the next snapshot, then tracked from there on.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "proc/pagemap.h"
#include "proc/proc_maps.h"
#include "store/store.h"

namespace frost::dump {

class DirtyTracker {
 public:
  // Creates the userfaultfd in process pid through thread tid (both seized by
  // the calling thread). Nothing is registered yet.
  static Result<std::unique_ptr<DirtyTracker>> create(pid_t pid, pid_t tid);

  // Registers an area and protects every page of it, so that only writes
  // from now on are reported. False when the kernel will not track it (the
  // area is then copied whole by every snapshot).
  Result<bool> track(const proc::MemoryArea& area);
  // Whether the area carries this tracker's registration.
  bool tracks(const proc::MemoryArea& area) const;
  // Pages of the area written since the last call (or track), protected again.
  Result<std::vector<proc::PageRange>> written(uint64_t start, uint64_t end);

  // The process's areas as the last capture saw them, with smaps' flags
  // (the registrations it made included), so that the next capture can read
  // maps and take the flags from here while maps shows the same areas.
  // Reading smaps walks every page table: 35 ms for 4 GiB, each time.
  //
  // smaps is read again once the flags are kMaxFlagAge old: madvise() on a
  // whole area changes its flags and not maps (DONTFORK, DONTDUMP, HUGEPAGE),
  // and a capture within that age does not see it. An mlock does show, in
  // VmLck. A registration lost to a mapping made anew shows when its write
  // scan fails (the area is then copied whole).
  static constexpr std::chrono::seconds kMaxFlagAge{30};
  // The areas to reuse, or none when there are none or they are too old.
  const std::vector<proc::MemoryArea>* reusable_areas() const;
  // from_smaps: the flags were read now (else they came from here).
  void set_known_areas(std::vector<proc::MemoryArea> areas, bool from_smaps);

  pid_t pid() const { return pid_; }
  // The snapshot whose pages the next incremental one builds on.
  store::SnapshotId base() const { return base_; }
  void set_base(store::SnapshotId id) { base_ = id; }

 private:
  DirtyTracker(pid_t pid, UniqueFd uffd, proc::Pagemap pagemap)
      : pid_(pid), uffd_(std::move(uffd)), pagemap_(std::move(pagemap)) {}
  pid_t pid_;
  UniqueFd uffd_;
  proc::Pagemap pagemap_;
  store::SnapshotId base_ = 0;
  std::vector<proc::MemoryArea> known_areas_;
  std::chrono::steady_clock::time_point flags_read_at_;
};

}  // namespace frost::dump
