#include "dump/memory_dump.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "common/batch_pipeline.h"
#include "common/page_batch.h"
#include "common/unique_fd.h"
#include "dump/dirty_tracker.h"
#include "image/page_layout.h"
#include "store/format.h"
#include "proc/memory.h"
#include "proc/pagemap.h"
#include "proc/proc_maps.h"
#include "proc/proc_status.h"

namespace frost::dump {
namespace {

constexpr uint64_t kPage = 4096;

// Which pages of an area the snapshot needs.
enum class Copy {
  kNothing,         // vdso/vvar, or a shared file mapping: the kernel or the file has them
  kPresent,         // private anonymous: every page in RAM or swap
  kPresentAnon,     // private file mapping: only pages copied on write
  kAll,             // private mapping of something that will be gone (deleted file, shmem)
  kObject,          // shared anonymous memory or memfd: the object's pages, once
};

struct Plan {
  image::MemoryAreaImage area;
  Copy copy = Copy::kNothing;
  proc::MemoryArea live;  // as smaps showed it
};

// A run of pages: `pages` pages at `remote` in the process go to store vpn `vpn`.
struct Run {
  uint64_t remote = 0, vpn = 0, pages = 0;
};

Error unsupported_area(const proc::MemoryArea& a, std::string_view why) {
  return Error(ErrorKind::kUnsupported,
               fmt::format("memory area {:#x}-{:#x} {} ({}) cannot be frozen: {}", a.start, a.end,
                           a.perms(), a.path.empty() ? "anonymous" : a.path, why));
}

uint32_t area_flags(const proc::MemoryArea& a) {
  uint32_t f = a.shared ? image::kAreaShared : image::kAreaPrivate;
  if (a.flags.has(proc::vmflag::kGrowsDown)) f |= image::kAreaGrowsDown;
  if (a.flags.has(proc::vmflag::kLocked)) f |= image::kAreaLocked;
  if (a.flags.has(proc::vmflag::kDontCopy)) f |= image::kAreaDontFork;
  if (a.flags.has(proc::vmflag::kDontDump)) f |= image::kAreaDontDump;
  if (a.flags.has(proc::vmflag::kHugePage)) f |= image::kAreaHugePage;
  if (a.flags.has(proc::vmflag::kNoHugePage)) f |= image::kAreaNoHugePage;
  return f;
}

class Planner {
 public:
  Result<std::optional<Plan>> plan(const proc::MemoryArea& a) {
    bool special = a.kind == proc::AreaKind::kVdso || a.kind == proc::AreaKind::kVvar ||
                   a.kind == proc::AreaKind::kVvarVclock || a.kind == proc::AreaKind::kVsyscall;
    if (!special && (a.flags.has(proc::vmflag::kPfnMap) || a.flags.has(proc::vmflag::kIo))) {
      return unsupported_area(a, "device memory");
    }
    Plan p;
    p.live = a;
    image::MemoryAreaImage& m = p.area;
    m.start = a.start;
    m.end = a.end;
    m.prot = uint32_t(a.prot);
    m.flags = area_flags(a);
    m.path = a.path;
    m.file_offset = a.offset;
    m.inode = a.inode;
    m.dev = (uint64_t(a.dev_major) << 32) | a.dev_minor;
    switch (a.kind) {
      case proc::AreaKind::kVsyscall:
        return std::optional<Plan>();  // fixed by the kernel, nothing to save
      case proc::AreaKind::kOther:
        return unsupported_area(a, "a kind of mapping frost does not know");
      case proc::AreaKind::kVdso: m.kind = image::AreaKind::kVdso; break;
      case proc::AreaKind::kVvar: m.kind = image::AreaKind::kVvar; break;
      case proc::AreaKind::kVvarVclock: m.kind = image::AreaKind::kVvarVclock; break;
      case proc::AreaKind::kAnon:
      case proc::AreaKind::kHeap:
      case proc::AreaKind::kStack:
        m.kind = a.kind == proc::AreaKind::kHeap    ? image::AreaKind::kHeap
                 : a.kind == proc::AreaKind::kStack ? image::AreaKind::kStack
                                                    : image::AreaKind::kAnon;
        if (a.shared) return unsupported_area(a, "shared anonymous memory without a shmem object");
        m.source = image::ContentSource::kStorePages;
        p.copy = Copy::kPresent;
        break;
      case proc::AreaKind::kFile:
        m.kind = image::AreaKind::kFile;
        if (a.shared) {
          if (a.deleted) return unsupported_area(a, "a shared mapping of a deleted file");
          m.source = image::ContentSource::kFileMapped;
        } else if (a.deleted) {
          // The file will not be there to map again: keep every page.
          m.source = image::ContentSource::kStorePages;
          p.copy = Copy::kAll;
        } else {
          m.source = image::ContentSource::kFileMapped;
          p.copy = Copy::kPresentAnon;
        }
        break;
      case proc::AreaKind::kShmem: {
        if (a.path.starts_with("/SYSV")) return unsupported_area(a, "SysV shared memory");
        bool memfd = a.path.starts_with("/memfd:");
        m.kind = memfd ? image::AreaKind::kMemfd : image::AreaKind::kShmem;
        if (memfd) m.path = a.path.substr(7);
        if (!a.shared) {
          m.source = image::ContentSource::kStorePages;
          p.copy = Copy::kAll;
          break;
        }
        auto key = std::make_pair(m.dev, m.inode);
        auto [it, fresh] = shared_ids_.try_emplace(key, shared_ids_.size());
        if (it->second >= image::kMaxSharedObjects) return unsupported_area(a, "too many shared objects");
        m.source = image::ContentSource::kSharedObject;
        m.shared_id = it->second;
        p.copy = Copy::kObject;
        break;
      }
    }
    return std::optional<Plan>(std::move(p));
  }

 private:
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> shared_ids_;
};

// Gathers pages into batches: the process's memory (one process_vm_readv
// per batch) or a shared object's (pread) is read on this thread while the
// batch before goes into the store on the pipeline's. With a hold, batches
// are kept for the caller to store later and no pipeline runs.
class Copier {
 public:
  Copier(pid_t pid, store::SnapshotWriter& writer, const ProgressFn& progress, uint64_t total,
         MemoryDumpStats* stats, HeldPages* hold = nullptr)
      : memory_(pid), writer_(writer), progress_(progress), stats_(stats), hold_(hold) {
    if (hold_ != nullptr) return;
    // The sink keeps what it needs by value or through this: the caller's
    // progress function may be a temporary.
    pipe_.emplace(3, [this, total](PageBatch& b) -> Status {
      Status st = b.for_each_run([&](uint64_t vpn, std::span<const uint8_t> bytes) {
        return writer_.put_pages(vpn, bytes);
      });
      stats_->pages += b.pages;
      stats_->bytes_read += b.pages * kPage;
      if (progress_) progress_(stats_->bytes_read, total);
      b.clear();
      return st;
    });
  }

  // Pages of the process, read in the next flush.
  Status add(Run run) {
    while (run.pages > 0) {
      FROST_TRY(make_room());
      uint64_t n = std::min<uint64_t>(batch_->room(), run.pages);
      pending_.push_back({run.remote, batch_->add(run.vpn, n), n * kPage});
      run.remote += n * kPage;
      run.vpn += n;
      run.pages -= n;
    }
    return Status::Ok();
  }

  // Room for up to `pages` pages at `vpn`, filled by the caller; returns how many fit.
  Result<std::pair<uint8_t*, uint64_t>> reserve(uint64_t vpn, uint64_t pages) {
    FROST_TRY(make_room());
    uint64_t n = std::min<uint64_t>(batch_->room(), pages);
    return std::make_pair(batch_->add(vpn, n), n);
  }

  Status flush() {
    if (batch_ == nullptr) return Status::Ok();
    Status st = Status::Ok();
    if (!pending_.empty()) {
      st = memory_.read(pending_);
      pending_.clear();
    }
    if (hold_ != nullptr) {
      // Counted once read: the batch stays in the hold either way.
      hold_->count(batch_->pages);
      stats_->pages += batch_->pages;
      stats_->bytes_read += batch_->pages * kPage;
      batch_ = nullptr;
      return st;
    }
    if (!st.ok()) {
      pipe_->release(batch_);
      batch_ = nullptr;
      return st;
    }
    pipe_->publish(batch_);
    batch_ = nullptr;
    return Status::Ok();
  }

  // Flushes and waits for the store; the first error of either side.
  Status finish() {
    Status flushed = flush();
    if (hold_ != nullptr) return flushed;
    Status stored = pipe_->finish();
    FROST_TRY(stored);
    return flushed;
  }

 private:
  Status make_room() {
    if (batch_ != nullptr && batch_->room() > 0) return Status::Ok();
    FROST_TRY(flush());
    if (hold_ != nullptr) {
      if (hold_->full()) FROST_TRY(hold_->store(writer_));
      batch_ = &hold_->append();
      return Status::Ok();
    }
    batch_ = pipe_->acquire();
    if (batch_ == nullptr) return pipe_->finish();  // the store failed: its error
    return Status::Ok();
  }

  proc::ProcessMemory memory_;
  store::SnapshotWriter& writer_;
  ProgressFn progress_;
  MemoryDumpStats* stats_;
  HeldPages* hold_;
  std::optional<BatchPipeline<PageBatch>> pipe_;
  PageBatch* batch_ = nullptr;
  std::vector<proc::MemoryRange> pending_;
};

// The runs of pages of a private area that the snapshot keeps.
Result<std::vector<Run>> private_runs(proc::Pagemap& pagemap, const Plan& p) {
  const image::MemoryAreaImage& m = p.area;
  std::vector<Run> runs;
  if (p.copy == Copy::kAll) {
    runs.push_back({m.start, m.start / kPage, (m.end - m.start) / kPage});
    return runs;
  }
  FROST_ASSIGN(std::vector<proc::PageRange> present, pagemap.present_pages(m.start, m.end));
  for (const proc::PageRange& r : present) {
    if (r.categories & proc::page_is::kPfnZero) continue;  // reads as zero
    if (p.copy == Copy::kPresentAnon && (r.categories & proc::page_is::kFile)) continue;  // the file has it
    if (!runs.empty() && runs.back().remote + runs.back().pages * kPage == r.start) {
      runs.back().pages += r.pages();
    } else {
      runs.push_back({r.start, r.start / kPage, r.pages()});
    }
  }
  return runs;
}

// A shared object's data, read through the object itself (its holes are
// skipped and pages this process never touched are found too).
Status copy_object(pid_t pid, const image::MemoryAreaImage& m, Copier& copier) {
  std::string path = fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, m.start, m.end);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  const uint64_t first = m.file_offset, last = m.file_offset + (m.end - m.start);
  if (!fd) {
    // Without CAP_SYS_ADMIN map_files is closed: read the mapping instead
    // (which faults holes in).
    return copier.add({m.start, image::shared_object_vpn(m.shared_id, first), (m.end - m.start) / kPage});
  }
  uint64_t pos = first;
  while (pos < last) {
    off_t data = ::lseek(fd.get(), off_t(pos), SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) return Error::io(fmt::format("seeking data in {}", path));
    if (uint64_t(data) >= last) break;
    off_t hole = ::lseek(fd.get(), data, SEEK_HOLE);
    if (hole < 0) return Error::io(fmt::format("seeking a hole in {}", path));
    uint64_t from = uint64_t(data) & ~(kPage - 1);
    uint64_t to = std::min<uint64_t>((uint64_t(hole) + kPage - 1) & ~(kPage - 1), last);
    for (uint64_t at = from; at < to;) {
      FROST_ASSIGN(auto room, copier.reserve(image::shared_object_vpn(m.shared_id, at), (to - at) / kPage));
      auto [dst, pages] = room;
      size_t n = pages * kPage;
      ssize_t got = ::pread(fd.get(), dst, n, off_t(at));
      if (got < 0) return Error::io(fmt::format("reading {}", path));
      // Past the object's end (the mapping is longer than the file): zeros.
      std::fill(dst + got, dst + n, 0);
      at += n;
    }
    pos = to;
  }
  return Status::Ok();
}


// Pages of the parent whose areas are gone (or shrank): without a removal the
// snapshot would inherit them. Shared objects are copied whole every time, so
// every object page of the parent goes too.
Status remove_vanished(const image::ProcessImage& parent, const std::vector<Plan>& plans,
                       store::SnapshotWriter& writer) {
  FROST_TRY(writer.remove_pages(image::kSharedVpnBase, store::kMaxKey));
  std::vector<std::pair<uint64_t, uint64_t>> now;
  for (const Plan& p : plans) now.emplace_back(p.area.start, p.area.end);
  for (const image::MemoryAreaImage& a : parent.areas) {
    uint64_t at = a.start;
    for (auto [s, e] : now) {  // ascending, like the parent's areas
      if (e <= at || s >= a.end) continue;
      if (s > at) FROST_TRY(writer.remove_pages(at / kPage, s / kPage - 1));
      at = std::max(at, e);
    }
    if (at < a.end) FROST_TRY(writer.remove_pages(at / kPage, a.end / kPage - 1));
  }
  return Status::Ok();
}

// Runs of ascending page addresses.
std::vector<Run> runs_of(const std::vector<uint64_t>& pages) {
  std::vector<Run> runs;
  for (uint64_t a : pages) {
    if (!runs.empty() && runs.back().remote + runs.back().pages * kPage == a) {
      runs.back().pages++;
    } else {
      runs.push_back({a, a / kPage, 1});
    }
  }
  return runs;
}

// The pages of the area written since the last scan (protected again), and
// those of `owed` inside it.
Result<std::vector<Run>> written_runs(DirtyTracker& tracker, const Plan& p,
                                      const std::vector<uint64_t>* owed = nullptr) {
  FROST_ASSIGN(std::vector<proc::PageRange> written, tracker.written(p.area.start, p.area.end));
  std::vector<Run> runs;
  auto lo = owed ? std::lower_bound(owed->begin(), owed->end(), p.area.start) : std::vector<uint64_t>::const_iterator();
  auto hi = owed ? std::lower_bound(lo, owed->end(), p.area.end) : lo;
  if (lo == hi) {
    for (const proc::PageRange& r : written) runs.push_back({r.start, r.start / kPage, r.pages()});
    return runs;
  }
  std::vector<uint64_t> pages(lo, hi);
  for (const proc::PageRange& r : written) {
    for (uint64_t a = r.start; a < r.end; a += kPage) pages.push_back(a);
  }
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  return runs_of(pages);
}

// A pre-copy round's written pages of one area: the hot ones (also written
// in the round before) go to state->owed while it has room, the rest are
// returned to be copied now.
Result<std::vector<Run>> precopy_runs(DirtyTracker& tracker, const Plan& p, PrecopyState& state,
                                      std::vector<uint64_t>* written_now, std::vector<uint64_t>* owed_now) {
  FROST_ASSIGN(std::vector<proc::PageRange> written, tracker.written(p.area.start, p.area.end));
  std::vector<uint64_t> copy;
  for (const proc::PageRange& r : written) {
    for (uint64_t a = r.start; a < r.end; a += kPage) {
      written_now->push_back(a);
      bool hot = std::binary_search(state.last_written.begin(), state.last_written.end(), a);
      if (hot && state.owed.size() + owed_now->size() < PrecopyState::kMaxOwed) {
        owed_now->push_back(a);
      } else {
        copy.push_back(a);
      }
    }
  }
  return runs_of(copy);
}

bool same_mapping(const proc::MemoryArea& a, const proc::MemoryArea& b) {
  return a.start == b.start && a.end == b.end && a.prot == b.prot && a.shared == b.shared && a.offset == b.offset &&
         a.dev_major == b.dev_major && a.dev_minor == b.dev_minor && a.inode == b.inode && a.path == b.path;
}

// maps, with the smaps details of `recent` when every area is unchanged
// since (and so is the size mlocked); smaps itself otherwise.
Result<std::vector<proc::MemoryArea>> read_areas(pid_t pid, const std::vector<proc::MemoryArea>* recent,
                                                 bool* from_smaps) {
  *from_smaps = true;
  if (recent == nullptr) return proc::read_smaps(pid);
  FROST_ASSIGN(std::vector<proc::MemoryArea> areas, proc::read_maps(pid));
  FROST_ASSIGN(proc::ProcStatus status, proc::read_status(pid));
  uint64_t locked = 0;
  size_t j = 0;
  for (proc::MemoryArea& a : areas) {
    while (j < recent->size() && (*recent)[j].end <= a.start) ++j;
    if (j == recent->size() || !same_mapping(a, (*recent)[j])) return proc::read_smaps(pid);
    a = (*recent)[j];
    if (a.flags.has(proc::vmflag::kLocked)) locked += a.size();
  }
  if (locked / 1024 != status.vm_locked_kb) return proc::read_smaps(pid);
  *from_smaps = false;
  return areas;
}

Result<std::vector<Plan>> plan_areas(pid_t pid, uint64_t* total, const std::vector<proc::MemoryArea>* recent,
                                     std::vector<proc::MemoryArea>* seen, bool* from_smaps) {
  FROST_ASSIGN(std::vector<proc::MemoryArea> areas, read_areas(pid, recent, from_smaps));
  *seen = areas;
  Planner planner;
  std::vector<Plan> plans;
  for (const proc::MemoryArea& a : areas) {
    FROST_ASSIGN(std::optional<Plan> p, planner.plan(a));
    if (!p) continue;
    if (p->copy == Copy::kAll) *total += a.size();
    else if (p->copy != Copy::kNothing) *total += a.rss + a.swap;
    plans.push_back(std::move(*p));
  }
  return plans;
}

// An area copied whole in an incremental capture (new, or mapped anew where
// another was): the pages the snapshot inherits in its range are the old
// mapping's, and those the copy does not put again (absent now: they read
// as zero) must not stay. Puts after this win.
Status drop_inherited(store::SnapshotWriter& writer, const Plan& p) {
  return writer.remove_pages(p.area.start / kPage, p.area.end / kPage - 1);
}

// Notes a registration the tracker just made in the areas the capture
// leaves it (DirtyTracker::set_known_areas), as smaps would now show it.
void mark_tracked(std::vector<proc::MemoryArea>& seen, uint64_t start) {
  auto it = std::find_if(seen.begin(), seen.end(), [&](const proc::MemoryArea& a) { return a.start == start; });
  if (it != seen.end()) it->flags.add(proc::vmflag::kUffdWp);
}

std::vector<image::MemoryAreaImage> areas_of(std::vector<Plan>& plans) {
  std::vector<image::MemoryAreaImage> out;
  out.reserve(plans.size());
  for (Plan& p : plans) out.push_back(std::move(p.area));
  return out;
}

}  // namespace

PageBatch& HeldPages::append() {
  batches_.push_back(std::make_unique<PageBatch>());
  return *batches_.back();
}

Status HeldPages::store(store::SnapshotWriter& writer) {
  std::vector<std::unique_ptr<PageBatch>> batches = std::move(batches_);
  batches_.clear();
  pages_ = 0;
  for (const auto& b : batches) {
    FROST_TRY(b->for_each_run([&](uint64_t vpn, std::span<const uint8_t> bytes) { return writer.put_pages(vpn, bytes); }));
  }
  return Status::Ok();
}

Result<std::vector<image::MemoryAreaImage>> precopy_memory(pid_t pid, store::SnapshotWriter& writer,
                                                           DirtyTracker& tracker, MemoryDumpStats* stats,
                                                           PrecopyState* state) {
  uint64_t total = 0;
  std::vector<proc::MemoryArea> seen;
  bool from_smaps = false;
  FROST_ASSIGN(std::vector<Plan> plans, plan_areas(pid, &total, tracker.reusable_areas(), &seen, &from_smaps));
  FROST_ASSIGN(proc::Pagemap pagemap, proc::Pagemap::open(pid));
  Copier copier(pid, writer, ProgressFn(), total, stats);
  std::vector<uint64_t> written_now, owed_now;
  for (const Plan& p : plans) {
    if (p.copy == Copy::kNothing || p.copy == Copy::kObject) continue;
    std::vector<Run> runs;
    bool whole = !tracker.tracks(p.live);
    if (!whole) {
      Result<std::vector<Run>> written = precopy_runs(tracker, p, *state, &written_now, &owed_now);
      if (written.ok()) {
        runs = std::move(*written);
      } else if (written.error().err() == EPERM) {
        whole = true;  // mapped anew since its flags were read: not registered
      } else {
        return written.error();
      }
    }
    if (whole) {
      FROST_TRY(drop_inherited(writer, p));
      // Armed before the copy: a write during it marks the page for the next round.
      FROST_ASSIGN(bool tracked, tracker.track(p.live));
      if (tracked) mark_tracked(seen, p.live.start);
      FROST_ASSIGN(runs, private_runs(pagemap, p));
    }
    for (const Run& r : runs) FROST_TRY(copier.add(r));
  }
  FROST_TRY(copier.finish());
  tracker.set_known_areas(std::move(seen), from_smaps);
  // Areas come in ascending order, so both lists are sorted already.
  state->last_written = std::move(written_now);
  state->deferred = owed_now.size();
  std::vector<uint64_t> owed;
  std::merge(state->owed.begin(), state->owed.end(), owed_now.begin(), owed_now.end(), std::back_inserter(owed));
  owed.erase(std::unique(owed.begin(), owed.end()), owed.end());
  state->owed = std::move(owed);
  return areas_of(plans);
}

Result<std::vector<image::MemoryAreaImage>> dump_memory(pid_t pid, store::SnapshotWriter& writer,
                                                        const ProgressFn& progress,
                                                        MemoryDumpStats* stats, Tracking tracking) {
  uint64_t total = 0;
  std::vector<proc::MemoryArea> seen;
  bool from_smaps = false;
  const std::vector<proc::MemoryArea>* reuse = tracking.tracker ? tracking.tracker->reusable_areas() : nullptr;
  FROST_ASSIGN(std::vector<Plan> plans, plan_areas(pid, &total, reuse, &seen, &from_smaps));
  const bool incremental = tracking.tracker != nullptr && tracking.parent != nullptr;
  if (incremental) FROST_TRY(remove_vanished(*tracking.parent, plans, writer));

  FROST_ASSIGN(proc::Pagemap pagemap, proc::Pagemap::open(pid));
  {
    Copier copier(pid, writer, progress, total, stats, tracking.hold);
    for (const Plan& p : plans) {
      if (p.copy == Copy::kNothing) continue;
      if (p.copy == Copy::kObject) {
        // Every mapping of the object: each may cover a different part.
        FROST_TRY(copy_object(pid, p.area, copier));
        continue;
      }
      std::vector<Run> runs;
      bool whole = !(incremental && tracking.tracker->tracks(p.live));
      if (!whole) {
        Result<std::vector<Run>> written = written_runs(*tracking.tracker, p, tracking.owed);
        if (written.ok()) {
          runs = std::move(*written);
        } else if (written.error().err() == EPERM) {
          whole = true;  // remapped since its flags were read: not registered, so copied whole
        } else {
          return written.error();
        }
      }
      if (whole) {
        if (incremental) FROST_TRY(drop_inherited(writer, p));
        FROST_ASSIGN(runs, private_runs(pagemap, p));
      }
      for (const Run& r : runs) FROST_TRY(copier.add(r));
    }
    FROST_TRY(copier.finish());
  }
  if (tracking.tracker != nullptr) {
    // Still stopped: nothing was written between the copy and the arming.
    for (const Plan& p : plans) {
      if (p.copy == Copy::kNothing || p.copy == Copy::kObject || tracking.tracker->tracks(p.live)) continue;
      FROST_ASSIGN(bool tracked, tracking.tracker->track(p.live));
      if (tracked) mark_tracked(seen, p.live.start);
    }
    tracking.tracker->set_known_areas(std::move(seen), from_smaps);
  }
  return areas_of(plans);
}

}  // namespace frost::dump
