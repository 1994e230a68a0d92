#include "restore/melt.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include <fmt/format.h>

#include "fds/fd_table.h"
#include "image/image_codec.h"
#include "proc/proc_status.h"
#include "proc/ptrace.h"
#include "proc/remote_syscall.h"
#include "restore/address_space.h"
#include "restore/lazy_melt.h"
#include "restore/melt_files.h"
#include "restore/new_terminal.h"
#include "restore/page_fill.h"
#include "restore/pid_namespace.h"
#include "restore/stub.h"
#include "restore/thread_restore.h"

namespace frost::restore {
namespace {

using Clock = std::chrono::steady_clock;

Result<store::SnapshotId> pick_snapshot(const store::Store& store, const std::string& name,
                                        const MeltOptions& options) {
  if (!options.snapshot) {
    Result<store::SnapshotId> id = store.latest(name);
    if (!id.ok()) return Error::not_found(fmt::format("no image named '{}' (see frost ls)", name));
    return id;
  }
  FROST_ASSIGN(store::SnapshotInfo info, store.info(*options.snapshot));
  if (info.owner != name) {
    return Error::invalid(fmt::format("snapshot {} belongs to '{}', not '{}'", info.id, info.owner, name));
  }
  return info.id;
}

Status check_image(const image::ProcessImage& img) {
  if (img.threads.empty() || img.threads.front().tid != img.pid || img.pid <= 0) {
    return Error::corruption("the image's thread list does not start with its process");
  }
  for (const image::ThreadImage& t : img.threads) {
    if (t.regs.size() != sizeof(user_regs_struct)) return Error::corruption("the image holds malformed registers");
  }
  uint64_t prev = 0;
  for (const image::MemoryAreaImage& a : img.areas) {
    if (a.start >= a.end || a.start < prev || (a.start | a.end) % 4096 != 0 || a.end > (1ull << 47)) {
      return Error::corruption(fmt::format("the image's memory area {:#x}-{:#x} is malformed", a.start, a.end));
    }
    prev = a.end;
  }
  return Status::Ok();
}

// Waits until no process or thread holds any of the image's IDs. The
// image's own zombie (a freeze just ended it) goes when its parent reaps it.
Status wait_for_free_ids(const image::ProcessImage& img, std::chrono::milliseconds patience) {
  Clock::time_point deadline = Clock::now() + patience;
  for (const image::ThreadImage& t : img.threads) {
    for (;;) {
      Result<proc::ProcStat> st = proc::read_stat(t.tid);
      if (!st.ok()) break;  // free
      bool zombie = st->state == 'Z' || st->state == 'X';
      if (!zombie || Clock::now() >= deadline) {
        std::string who = t.tid == img.pid ? "PID" : "thread id";
        return Error(ErrorKind::kExists,
                     fmt::format("{} {} is taken by {} ({}{}); the image needs it", who, t.tid,
                                 st->pid == t.tid ? "process" : "a thread of process", st->comm,
                                 zombie ? ", a zombie its parent has not reaped" : ""));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return Status::Ok();
}

// tty_helper: the terminal its terminal fds went to; own_terminal: a new one
// (new_terminal.h), whose session it leads, rather than the caller's.
StubPlan make_plan(const image::ProcessImage& img, const std::vector<fds::RestoredFd>& fds,
                   const MeltFiles& files, int tty_helper, bool own_terminal) {
  StubPlan p;
  p.pid = img.pid;
  int max_fd = -1;
  for (const fds::RestoredFd& f : fds) {
    p.fd_from.push_back(f.fd.get());
    p.fd_to.push_back(f.target);
    p.fd_cloexec.push_back(f.cloexec);
    max_fd = std::max(max_fd, f.target);
  }
  p.helpers = files.helper_fds();
  p.helper_base = std::max(max_fd + 1, 3);
  p.cwd = img.cwd;
  p.umask = img.umask;
  p.personality = img.personality;
  if (tty_helper >= 0 && own_terminal) {
    p.session = StubPlan::Session::kNewSession;
    p.foreground_tty = tty_helper;
    p.controlling_tty = true;
  } else if (tty_helper >= 0) {
    p.session = StubPlan::Session::kOwnGroup;  // a job in the caller's session
    p.foreground_tty = tty_helper;
  } else if (img.sid == img.pid) {
    p.session = StubPlan::Session::kNewSession;
  } else if (img.pgid == img.pid) {
    p.session = StubPlan::Session::kOwnGroup;
  } else {
    p.session = StubPlan::Session::kJoinGroup;
    p.pgid = img.pgid;
  }
  p.rlimits = img.rlimits;
  p.sigactions = img.sigactions;
  return p;
}

// The host TID of each of the image's threads, in the image's order.
Result<std::vector<pid_t>> host_thread_ids(pid_t host_pid, const image::ProcessImage& img) {
  FROST_ASSIGN(auto pairs, namespace_tids(host_pid));
  std::vector<pid_t> out;
  for (const image::ThreadImage& t : img.threads) {
    auto it = std::find_if(pairs.begin(), pairs.end(), [&](const auto& p) { return p.first == t.tid; });
    if (it == pairs.end()) return Error::io(fmt::format("thread {} of the image was not created", t.tid), 0);
    out.push_back(it->second);
  }
  return out;
}

// Everything after the stub is seized. Any error leaves the stub to be killed.
// A lazy melt leaves *pager set when pages are pending.
Status build(proc::SeizedProcess& seized, store::Store& store, store::SnapshotId id,
             const image::ProcessImage& img, const MeltFiles& files, int helper_base,
             const MeltOptions& options, uint64_t* pages, std::unique_ptr<lazy::PageServer>* pager) {
  pid_t pid = seized.pid();  // the host's view: another number in a new PID namespace
  FROST_ASSIGN(proc::RemoteSyscall leader, proc::RemoteSyscall::attach(pid, pid));
  AddressSpace space(leader, img, files, helper_base);
  FROST_TRY(space.prepare());
  FROST_ASSIGN(std::vector<bool> filled, areas_with_pages(store, id, img, pages));
  std::vector<bool> lazy(img.areas.size(), false);
  bool pending = false;
  if (options.lazy) {
    lazy = lazy_areas(img, files, filled);
    for (size_t i = 0; i < lazy.size(); ++i) {
      if (!lazy[i]) continue;
      filled[i] = false;  // mapped with its own protections: UFFDIO_COPY needs no write access
      pending = true;
    }
  }
  FROST_TRY(space.map_areas(filled));
  // From registration on, the remote calls below can make the kernel touch
  // a pending page (registering rseq writes to its area): a helper thread
  // answers such faults until the process is ready to run.
  std::unique_ptr<lazy::PageServer::FaultHelper> helper;
  int kept_uffd = -1;
  if (pending) {
    FROST_ASSIGN(*pager, start_page_server(leader, store, id, img, lazy, &kept_uffd));
    helper = (*pager)->serve_faults_in_background();
  }
  std::vector<VpnRange> skip = pending ? lazy_vpn_ranges(img, lazy) : std::vector<VpnRange>{};
  FROST_ASSIGN(uint64_t eager, fill_pages(store, id, pid, files, options.progress, pending ? 0 : *pages, skip));
  // Every stored page the eager walk left out lies in a lazy area.
  if (*pager != nullptr) (*pager)->set_pending(*pages - std::min(eager, *pages));
  FROST_TRY(space.finish_areas(filled));
  FROST_TRY(space.set_mm_fields());

  Window window{space.gadget(), space.scratch()};
  FROST_TRY(create_threads(leader, window, img));
  FROST_TRY(seized.seize_new_threads());
  if (seized.threads().size() != img.threads.size()) {
    return Error::io(fmt::format("the new process has {} threads, the image {}", seized.threads().size(), img.threads.size()), 0);
  }
  FROST_ASSIGN(std::vector<pid_t> host_tids, host_thread_ids(pid, img));
  FROST_TRY(restore_process_signals(leader, window, img));
  for (size_t i = 1; i < img.threads.size(); ++i) {
    FROST_TRY(restore_thread_kernel_state({pid, host_tids[i], img.pid}, img.threads[i], window, img.creds));
  }
  // The leader last: its credentials may take away what the calls above need.
  if (kept_uffd >= helper_base) {
    if (kept_uffd > helper_base) FROST_TRY(leader.call(SYS_close_range, helper_base, kept_uffd - 1, 0));
    FROST_TRY(leader.call(SYS_close_range, kept_uffd + 1, ~0u, 0));
  } else {
    FROST_TRY(leader.call(SYS_close_range, helper_base, ~0u, 0));
  }
  // Pending pages keep the process tied to this thread until served.
  if (*pager == nullptr) FROST_TRY(leader.call(SYS_prctl, PR_SET_PDEATHSIG, 0, 0, 0, 0));
  FROST_TRY(restore_thread_kernel_state({pid, pid, img.pid}, img.threads[0], window, img.creds));
  FROST_TRY(space.drop_window());
  for (size_t i = 0; i < img.threads.size(); ++i) FROST_TRY(set_thread_cpu_state(img.threads[i], host_tids[i]));
  if (helper) FROST_TRY(helper->stop());
  return Status::Ok();
}

}  // namespace

Result<MeltResult> melt(store::Store& store, const std::string& name, const MeltOptions& options) {
  Clock::time_point t0 = Clock::now();
  MeltResult result;
  FROST_ASSIGN(result.snapshot, pick_snapshot(store, name, options));
  Result<std::vector<uint8_t>> meta = store.read_meta(result.snapshot);
  if (!meta.ok()) return meta.error().context(fmt::format("reading image '{}' (snapshot {})", name, result.snapshot));
  Result<image::ProcessImage> decoded = image::decode(*meta);
  if (!decoded.ok()) return decoded.error().context(fmt::format("image '{}' (snapshot {})", name, result.snapshot));
  const image::ProcessImage& img = *decoded;
  FROST_TRY(check_image(img));
  std::optional<PidNamespace> ns;
  if (options.pidns) {
    FROST_ASSIGN(ns, PidNamespace::create());
  } else {
    FROST_TRY(wait_for_free_ids(img, options.id_wait));
  }

  FROST_ASSIGN(MeltFiles files, MeltFiles::open(img));
  int tty_fd = options.shell_job_tty;
  std::optional<NewTerminal> terminal;
  bool uses_terminal = std::any_of(img.fds.begin(), img.fds.end(), [](const image::FdImage& f) { return f.kind == "tty"; });
  if (tty_fd < 0 && options.new_terminal && uses_terminal) {
    FROST_ASSIGN(terminal, open_new_terminal(uid_t(img.creds.uids[0])));
    tty_fd = terminal->slave.get();
  }
  int tty_helper = tty_fd >= 0 ? files.add_terminal(tty_fd) : -1;
  fds::RestoreOptions fd_options;
  fd_options.shell_job_tty = tty_fd;
  fd_options.shared_memory = [&files](uint64_t dev, uint64_t inode) { return files.shared_object_by_inode(dev, inode); };
  FROST_ASSIGN(std::vector<fds::RestoredFd> fds, fds::restore_fds(img.fds, fd_options));
  StubPlan plan = make_plan(img, fds, files, tty_helper, terminal.has_value());
  // The stub moves every fd above the highest number in play before placing it.
  struct rlimit nofile {};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  plan.new_pidns = ns.has_value();
  // The group it joined is not in the new namespace: it leads its own session there.
  if (ns && plan.session == StubPlan::Session::kJoinGroup) plan.session = StubPlan::Session::kNewSession;
  if (ns) FROST_TRY(ns->enter());
  Result<Stub> spawned = Stub::spawn(plan);
  if (ns) FROST_TRY(ns->leave());
  if (!spawned.ok()) return spawned.error();
  Stub stub = std::move(*spawned);
  FROST_ASSIGN(proc::SeizedProcess seized, proc::SeizedProcess::seize(stub.pid()));
  Status built = build(seized, store, result.snapshot, img, files, plan.helper_base, options, &result.pages,
                       &result.pager);
  if (!built.ok()) {
    (void)seized.kill();
    return built.error().context(fmt::format("melting '{}'", name));
  }
  FROST_TRY(seized.resume());
  result.pid = stub.pid();
  result.ns_pid = img.pid;
  stub.release();
  if (ns) {
    result.ns_init = ns->init_pid();
    ns->release();
  }
  result.threads = int(img.threads.size());
  if (terminal) result.terminal = std::move(terminal->master);
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return result;
}

}  // namespace frost::restore
