#include "dump/capture.h"

#include <signal.h>

#include <chrono>
#include <optional>

#include <fmt/format.h>

#include "common/cpu_class.h"

#include "dump/dirty_tracker.h"
#include "dump/memory_dump.h"
#include "dump/process_state.h"
#include "fds/fd_table.h"
#include "image/image_codec.h"
#include "proc/proc_status.h"
#include "proc/ptrace.h"
#include "proc/thread_state.h"

namespace frost::dump {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<uint8_t> siginfo_bytes(const siginfo_t& info) {
  const auto* p = reinterpret_cast<const uint8_t*>(&info);
  return std::vector<uint8_t>(p, p + sizeof info);
}

image::SyscallRestart restart_of(const user_regs_struct& regs) {
  switch (proc::syscall_restart(regs)) {
    case proc::SyscallRestart::kReexecute: return image::SyscallRestart::kReexecute;
    case proc::SyscallRestart::kRestartBlock: return image::SyscallRestart::kRestartBlock;
    case proc::SyscallRestart::kNone: break;
  }
  return image::SyscallRestart::kNone;
}

Result<image::ThreadImage> capture_thread(pid_t pid, const proc::SeizedThread& seized) {
  FROST_ASSIGN(proc::ThreadState st, proc::capture_thread(pid, seized.tid));
  image::ThreadImage t;
  t.tid = st.tid;
  t.name = st.name;
  const auto* r = reinterpret_cast<const uint8_t*>(&st.regs);
  t.regs.assign(r, r + sizeof st.regs);
  t.xstate = std::move(st.xstate);
  t.fs_base = st.regs.fs_base;
  t.gs_base = st.regs.gs_base;
  t.sigmask = st.sigmask;
  // Signals seizing took off the queue are still the thread's: they go back
  // when it resumes, and into the image in front of the rest.
  for (const siginfo_t& info : seized.taken_signals) t.pending.push_back(siginfo_bytes(info));
  for (const siginfo_t& info : st.pending) t.pending.push_back(siginfo_bytes(info));
  t.rseq = {st.rseq.abi_pointer, st.rseq.abi_size, st.rseq.signature, st.rseq.flags};
  t.restart = restart_of(st.regs);
  FROST_TRY(probe_thread(pid, t));
  return t;
}

Status capture_process_fields(pid_t pid, image::ProcessImage& img) {
  FROST_ASSIGN(proc::ProcStat stat, proc::read_stat(pid));
  FROST_ASSIGN(proc::ProcStatus status, proc::read_status(pid));
  img.pid = pid;
  img.ppid = stat.ppid;
  img.pgid = stat.pgrp;
  img.sid = stat.session;
  FROST_ASSIGN(img.comm, proc::read_comm(pid));
  FROST_ASSIGN(img.exe, proc::read_exe(pid));
  FROST_ASSIGN(img.cwd, proc::read_cwd(pid));
  img.umask = status.umask.value_or(022);
  FROST_ASSIGN(img.personality, proc::read_personality(pid));

  image::Credentials& c = img.creds;
  c.uids = {status.uid.real, status.uid.effective, status.uid.saved, status.uid.fs};
  c.gids = {status.gid.real, status.gid.effective, status.gid.saved, status.gid.fs};
  c.groups.assign(status.groups.begin(), status.groups.end());
  c.cap_inheritable = status.cap_inheritable;
  c.cap_permitted = status.cap_permitted;
  c.cap_effective = status.cap_effective;
  c.cap_bounding = status.cap_bounding;
  c.cap_ambient = status.cap_ambient;
  c.no_new_privs = status.no_new_privs;

  FROST_ASSIGN(proc::Limits limits, proc::read_limits(pid));
  for (uint32_t r = 0; r < limits.size(); ++r) img.rlimits.push_back({r, limits[r].rlim_cur, limits[r].rlim_max});

  image::MmFields& mm = img.mm;
  mm.start_code = stat.start_code;
  mm.end_code = stat.end_code;
  mm.start_data = stat.start_data;
  mm.end_data = stat.end_data;
  mm.start_brk = stat.start_brk;
  mm.start_stack = stat.start_stack;
  mm.arg_start = stat.arg_start;
  mm.arg_end = stat.arg_end;
  mm.env_start = stat.env_start;
  mm.env_end = stat.env_end;
  FROST_ASSIGN(auto auxv, proc::read_auxv(pid));
  for (auto [type, value] : auxv) {
    mm.auxv.push_back(type);
    mm.auxv.push_back(value);
  }
  return Status::Ok();
}

// A process melted into a PID namespace of its own sees other ids than
// frost does: the image keeps the ones it sees, so the next melt gives it
// the same again.
Status use_own_namespace_ids(pid_t pid, image::ProcessImage& img) {
  FROST_ASSIGN(proc::ProcStatus st, proc::read_status(pid));
  if (st.nspid.size() < 2) return Status::Ok();
  pid_t own = st.nspid.back();
  if (img.sid == pid) img.sid = own;
  if (img.pgid == pid) img.pgid = own;
  img.pid = own;
  for (image::ThreadImage& t : img.threads) {
    FROST_ASSIGN(proc::ProcStatus ts, proc::read_thread_status(pid, t.tid));
    if (!ts.nspid.empty()) t.tid = ts.nspid.back();
  }
  return Status::Ok();
}

// Everything but the pages, which go to the writer as they are read.
Result<image::ProcessImage> capture_image(const proc::SeizedProcess& seized, store::SnapshotWriter& writer,
                                          const ProgressFn& progress, MemoryDumpStats* stats,
                                          Tracking tracking) {
  pid_t pid = seized.pid();
  image::ProcessImage img;
  FROST_TRY(capture_process_fields(pid, img));
  for (const proc::SeizedThread& t : seized.threads()) {
    FROST_ASSIGN(image::ThreadImage ti, capture_thread(pid, t));
    img.threads.push_back(std::move(ti));
  }
  FROST_TRY(probe_process(pid, pid, img));
  FROST_ASSIGN(std::vector<siginfo_t> shared, proc::peek_pending_signals(pid, proc::SignalQueue::kShared));
  for (const siginfo_t& info : shared) img.shared_pending.push_back(siginfo_bytes(info));
  FROST_ASSIGN(img.fds, fds::dump_fds(pid));
  FROST_TRY(use_own_namespace_ids(pid, img));
  // Last: the probes above map and unmap a scratch page in the process.
  FROST_ASSIGN(img.areas, dump_memory(pid, writer, progress, stats, tracking));
  return img;
}

// The image an incremental capture builds on: that of the tracker's base, if
// the tracker belongs to this process and the base is still in the store.
// Without one the capture is full (and arms the tracker again).
Result<std::optional<image::ProcessImage>> tracked_parent(const store::Store& store,
                                                          std::unique_ptr<DirtyTracker>* tracker, pid_t pid) {
  if (*tracker == nullptr) return std::optional<image::ProcessImage>();
  if ((*tracker)->pid() != pid) {
    return Error::invalid(fmt::format("the dirty tracker belongs to process {}, not {}", (*tracker)->pid(), pid));
  }
  Result<std::vector<uint8_t>> meta = store.read_meta((*tracker)->base());
  if (!meta.ok()) return std::optional<image::ProcessImage>();
  FROST_ASSIGN(image::ProcessImage img, image::decode(*meta));
  return std::optional<image::ProcessImage>(std::move(img));
}

}  // namespace

Result<std::string> default_name(const store::Store& store, pid_t pid) {
  FROST_ASSIGN(std::string comm, proc::read_comm(pid));
  for (char& c : comm) {
    if (c == '/' || c == ' ' || c < 0x20) c = '_';
  }
  for (const store::OwnerInfo& owner : store.list()) {
    if (owner.name != comm || owner.snapshots.empty()) continue;
    Result<std::vector<uint8_t>> meta = store.read_meta(owner.snapshots.back().id);
    if (!meta.ok()) break;
    Result<image::ProcessImage> img = image::decode(*meta);
    if (img.ok() && img->pid != pid) return fmt::format("{}-{}", comm, pid);
    break;
  }
  return comm;
}

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// A force snapshot's first stop, for a process that has no tracker yet: the
// userfaultfd is made by a remote call, which needs the process held.
Status arm_tracker(pid_t pid, std::unique_ptr<DirtyTracker>* tracker, double* stopped_ms) {
  Clock::time_point t = Clock::now();
  FROST_ASSIGN(proc::SeizedProcess seized, proc::SeizedProcess::seize(pid));
  Result<std::unique_ptr<DirtyTracker>> made = DirtyTracker::create(pid, pid);
  FROST_TRY(seized.resume());
  *stopped_ms += ms_since(t);
  if (!made.ok()) return made.error();
  *tracker = std::move(*made);
  return Status::Ok();
}

// A tracker for a seized process, or none (and why) when this kernel cannot
// track writes: then every capture is a full copy.
Result<std::unique_ptr<DirtyTracker>> tracker_or_reason(pid_t pid, std::string* reason) {
  Result<std::unique_ptr<DirtyTracker>> made = DirtyTracker::create(pid, pid);
  if (made.ok() || made.error().kind() != ErrorKind::kUnsupported) return made;
  *reason = made.error().to_string();
  return std::unique_ptr<DirtyTracker>();
}

// Rounds while the process runs: each copies what was written during the
// one before. They stop when the set no longer shrinks by half, or is small
// enough that the stopped round will be short anyway.
// How long a background capture stays in the background.
constexpr double kBackgroundBudgetMs = 2000;

// Back to normal priority once the budget is spent.
void check_background_budget(std::optional<CpuClassScope>& cpu, Clock::time_point t0) {
  if (cpu && ms_since(t0) > kBackgroundBudgetMs) cpu->set(CpuClass::kNormal);
}

Status precopy_rounds(pid_t pid, store::SnapshotWriter& writer, DirtyTracker& tracker,
                      std::vector<image::MemoryAreaImage>* seen, PrecopyState* state, CaptureResult* result,
                      std::optional<CpuClassScope>& cpu, Clock::time_point t0) {
  constexpr int kMaxRounds = 4;
  constexpr uint64_t kSmallEnough = 256;
  uint64_t last = UINT64_MAX;
  for (int round = 0; round < kMaxRounds; ++round) {
    MemoryDumpStats stats;
    FROST_ASSIGN(std::vector<image::MemoryAreaImage> areas,
                 precopy_memory(pid, writer, tracker, &stats, state));
    for (image::MemoryAreaImage& a : areas) seen->push_back(std::move(a));
    result->precopy_rounds++;
    result->precopy_pages += stats.pages;
    check_background_budget(cpu, t0);
    // Deferred pages were written all the same: they count toward whether
    // the written set still shrinks.
    uint64_t written = stats.pages + state->deferred;
    if (written <= kSmallEnough || written * 2 > last) break;
    last = written;
  }
  return Status::Ok();
}

Result<CaptureResult> capture_checked(pid_t pid, store::Store& store, const CaptureOptions& options,
                                      CaptureResult result) {
  Clock::time_point t0 = Clock::now();
  std::optional<CpuClassScope> cpu;
  if (options.background) cpu.emplace(CpuClass::kBackground);
  const bool precopy = options.precopy && options.tracker != nullptr;
  if (options.tracker != nullptr && *options.tracker != nullptr && (*options.tracker)->pid() != pid) {
    options.tracker->reset();  // another process's (the PID was reused)
  }
  Tracking tracking;
  std::optional<image::ProcessImage> parent;
  if (options.tracker != nullptr) {
    FROST_ASSIGN(parent, tracked_parent(store, options.tracker, pid));
  }
  bool precopy_now = precopy;
  if (precopy && !parent) {
    // Rounds on a tracker without a base would copy only what it saw
    // written: start from a fresh one, which copies every area whole.
    options.tracker->reset();
    if (cpu) cpu->set(CpuClass::kNormal);  // a stop
    Status armed = arm_tracker(pid, options.tracker, &result.stopped_ms);
    if (cpu) cpu->set(CpuClass::kBackground);
    if (!armed.ok() && armed.error().kind() != ErrorKind::kUnsupported) return armed.error();
    if (!armed.ok()) {
      result.full_copy_reason = armed.error().to_string();
      precopy_now = false;
    }
  }
  std::optional<store::SnapshotId> base;
  if (parent) base = (*options.tracker)->base();
  FROST_ASSIGN(std::unique_ptr<store::SnapshotWriter> writer, store.begin_snapshot(result.name, base));

  // What the last round must undo when areas vanish: the base's pages and
  // those copied by the rounds made while the process ran.
  std::vector<image::MemoryAreaImage> copied;
  PrecopyState precopy_state;
  if (precopy_now) {
    Status pre = precopy_rounds(pid, *writer, **options.tracker, &copied, &precopy_state, &result, cpu, t0);
    if (!pre.ok()) {
      // The running process changed under a round (an area unmapped while
      // it was read, as a program starting up does): what was copied cannot
      // be trusted, so start over with the whole capture done stopped.
      writer.reset();
      options.tracker->reset();
      parent.reset();
      base.reset();
      copied.clear();
      precopy_state = PrecopyState();
      precopy_now = false;
      result.precopy_rounds = 0;
      result.precopy_pages = 0;
      FROST_ASSIGN(writer, store.begin_snapshot(result.name, std::nullopt));
    } else {
      if (!parent) parent.emplace();
      for (image::MemoryAreaImage& a : copied) parent->areas.push_back(std::move(a));
    }
  }

  Clock::time_point stop = Clock::now();
  // The pause is everyone's concern: it runs at normal priority.
  if (cpu) cpu->set(CpuClass::kNormal);
  FROST_ASSIGN(proc::SeizedProcess seized, proc::SeizedProcess::seize(pid));
  if (seized.job_control_stopped()) {
    // Its stop would be lost: a melted process runs. Refuse rather than surprise.
    return Error(ErrorKind::kUnsupported, fmt::format("process {} is stopped by job control (SIGSTOP); continue it first", pid));
  }
  result.threads = int(seized.threads().size());
  if (options.tracker != nullptr && result.full_copy_reason.empty()) {
    if (*options.tracker == nullptr) {
      FROST_ASSIGN(*options.tracker, tracker_or_reason(pid, &result.full_copy_reason));
    }
    tracking.tracker = options.tracker->get();
    if (parent && tracking.tracker != nullptr) tracking.parent = &*parent;
    if (precopy_now && tracking.tracker != nullptr) tracking.owed = &precopy_state.owed;
  }
  MemoryDumpStats stats;
  // A snapshot's process goes on as soon as its pages are copied out: the
  // store's work on them, the metadata and the sync come after. A commit
  // that fails then drops the tracker (capture()), so nothing the process
  // writes from here on can be lost to the next snapshot.
  HeldPages held;
  if (options.mode == CaptureMode::kSnapshot) tracking.hold = &held;
  FROST_ASSIGN(image::ProcessImage img, capture_image(seized, *writer, options.progress, &stats, tracking));
  if (options.mode == CaptureMode::kSnapshot) {
    FROST_TRY(seized.resume());
    result.stopped_ms += ms_since(stop);
    if (cpu) cpu->set(CpuClass::kBackground);
    check_background_budget(cpu, t0);
    FROST_TRY(held.store(*writer));
  }
  FROST_TRY(writer->put_meta(image::encode(img)));
  FROST_ASSIGN(result.snapshot, writer->commit());
  result.parent = base.value_or(0);
  if (tracking.tracker != nullptr) tracking.tracker->set_base(result.snapshot);
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (options.mode == CaptureMode::kFreeze) {
    // The image of a frozen process is all there is of it: keep it past retention.
    FROST_TRY(store.pin(result.snapshot));
    FROST_TRY(seized.kill_in_background());
    result.stopped_ms += ms_since(stop);
  }
  FROST_ASSIGN(store::SnapshotInfo info, store.info(result.snapshot));
  result.pages = stats.pages + result.precopy_pages;
  result.bytes_stored = info.bytes_written;
  return result;
}

}  // namespace

Result<CaptureResult> capture(pid_t pid, store::Store& store, const CaptureOptions& options) {
  FROST_TRY(proc::check_seizable(pid));
  FROST_TRY(fds::check_fds(pid));
  CaptureResult result;
  result.pid = pid;
  if (options.name.empty()) {
    FROST_ASSIGN(result.name, default_name(store, pid));
  } else {
    result.name = options.name;
  }
  Result<CaptureResult> done = capture_checked(pid, store, options, std::move(result));
  // The tracker's written set may be consumed by a capture that did not
  // commit: only a full copy is safe next.
  if (!done.ok() && options.tracker != nullptr) options.tracker->reset();
  return done;
}

}  // namespace frost::dump
