#include "lazy/page_server.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deque>

#include <fmt/format.h>

#include "common/kernel_compat.h"

namespace frost::lazy {
namespace {

constexpr uint64_t kPage = 4096;
// Prefetch places runs of at most this many pages: big enough that the
// ioctl's fixed cost vanishes, small enough that a fault arriving meanwhile
// waits only microseconds for its turn.
constexpr uint64_t kRunPages = 128;
// A fault brings this many following pages of its extent along (when the
// snapshot holds them): a sequential reader then faults once per 64 KiB.
constexpr uint64_t kFaultAhead = 15;

constexpr uint64_t kFeatures =
    UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;

using Clock = std::chrono::steady_clock;

}  // namespace

struct PageServer::Space {
  explicit Space(UniqueFd fd) : uffd(std::move(fd)) {}
  Userfault uffd;
  ExtentMap extents;
  std::deque<uint64_t> faults;  // addresses read from the fd, not yet answered
  bool gone = false;            // the address space no longer exists
};

PageServer::PageServer(store::Store& store, store::SnapshotId snapshot, pid_t pid, UniqueFd pidfd)
    : store_(store), snapshot_(snapshot), pid_(pid), pidfd_(std::move(pidfd)) {}

Result<std::unique_ptr<PageServer>> PageServer::create(store::Store& store, store::SnapshotId snapshot, pid_t pid,
                                                       UniqueFd uffd) {
  UniqueFd pidfd(int(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return Error::io(fmt::format("opening a pidfd for process {}", pid));
  auto space = std::make_unique<Space>(std::move(uffd));
  FROST_TRY(space->uffd.handshake(kFeatures));
  FROST_TRY(store.hold(snapshot));
  std::unique_ptr<PageServer> server(new PageServer(store, snapshot, pid, std::move(pidfd)));
  server->held_ = true;
  server->spaces_.push_back(std::move(space));
  server->spaces_seen_ = 1;
  return server;
}

PageServer::~PageServer() {
  if (!done_) kill_process();
  close_all();
  if (held_) store_.release(snapshot_);
}

Status PageServer::add_area(uint64_t start, uint64_t end) {
  Space& main = *spaces_.front();
  FROST_TRY(main.uffd.register_missing(start, end));
  main.extents.add(start, end, start / kPage);
  last_vpn_ = std::max(last_vpn_, end / kPage - 1);
  return Status::Ok();
}

void PageServer::kill_process() {
  if (pidfd_ && process_alive()) (void)::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

bool PageServer::process_alive() {
  if (process_exited_ || !pidfd_) return false;
  pollfd p{pidfd_.get(), POLLIN, 0};
  if (::poll(&p, 1, 0) == 1) process_exited_ = true;
  return !process_exited_;
}

void PageServer::close_all() {
  for (auto& s : spaces_) s->uffd.close();
}

bool PageServer::any_space_alive() const {
  return std::any_of(spaces_.begin(), spaces_.end(), [](const auto& s) { return !s->gone; });
}

// --- messages ---------------------------------------------------------------------------

Status PageServer::drain(Space& space) {
  uffd_msg msg;
  for (;;) {
    if (space.gone) return Status::Ok();
    FROST_ASSIGN(bool got, space.uffd.read(&msg));
    if (!got) return Status::Ok();
    if (msg.event == UFFD_EVENT_PAGEFAULT) {
      space.faults.push_back(msg.arg.pagefault.address);
    } else {
      FROST_TRY(handle_event(space, msg));
    }
  }
}

Status PageServer::handle_event(Space& space, const uffd_msg& msg) {
  switch (msg.event) {
    case UFFD_EVENT_FORK: {
      // The child's copy of every page the parent had is already in its
      // page tables; what it lacks comes from the same walk as the parent's.
      auto child = std::make_unique<Space>(UniqueFd(int(msg.arg.fork.ufd)));
      child->extents = space.extents;
      spaces_.push_back(std::move(child));
      ++spaces_seen_;
      return Status::Ok();
    }
    case UFFD_EVENT_REMAP:
      space.extents.move(msg.arg.remap.from, msg.arg.remap.to, msg.arg.remap.len);
      return Status::Ok();
    case UFFD_EVENT_REMOVE:
    case UFFD_EVENT_UNMAP:
      space.extents.cut(msg.arg.remove.start, msg.arg.remove.end);
      return Status::Ok();
    default:
      return Error::io(fmt::format("unexpected userfaultfd event {:#x}", msg.event), 0);
  }
}

// EAGAIN: an event is being delivered on this fd (the kernel refuses to
// place pages while the layout changes). Read it; the kernel lowers its
// "changing" count only when the changing thread runs again, so give it a
// moment when there was nothing to read.
Status PageServer::wait_changes(Space& space) {
  size_t before = space.faults.size();
  uint64_t seen = spaces_seen_;
  auto extents = space.extents.pages();
  FROST_TRY(drain(space));
  if (space.faults.size() == before && spaces_seen_ == seen && space.extents.pages() == extents) {
    ::usleep(50);
  }
  return Status::Ok();
}

// --- faults -----------------------------------------------------------------------------

Status PageServer::serve_faults(Space& space) {
  while (!space.faults.empty() && !space.gone) {
    uint64_t addr = space.faults.front();
    space.faults.pop_front();
    FROST_TRY(serve_fault(space, addr));
  }
  return Status::Ok();
}

Status PageServer::serve_fault(Space& space, uint64_t addr) {
  const uint64_t page = addr & ~(kPage - 1);
  std::array<uint8_t, kPage> buf;
  for (;;) {
    if (space.gone) return Status::Ok();
    std::optional<uint64_t> vpn = space.extents.vpn_at(page);
    bool stored = false;
    if (vpn) {
      Result<bool> read = store_.read_page(snapshot_, *vpn, buf);
      if (!read.ok()) return read.error().context(fmt::format("reading page {:#x} for a fault", *vpn));
      stored = *read;
    }
    // Not in any extent (dropped, or beyond what the snapshot had) or never
    // written before the freeze: the page reads as zero.
    Placed p = stored ? space.uffd.copy(page, buf.data(), kPage) : space.uffd.zero(page, kPage);
    switch (p.err) {
      case 0:
        if (!stored) {
          ++zeroed_;
          return Status::Ok();
        }
        ++faulted_;
        place_neighbours(space, page, *vpn);
        return Status::Ok();
      case EEXIST:  // placed meanwhile; the thread may still sleep on it
      case ENOENT:  // unmapped meanwhile: the thread will fault again, and see
        space.uffd.wake(page, kPage);
        return Status::Ok();
      case ESRCH:
        space.gone = true;
        return Status::Ok();
      case EAGAIN:
        FROST_TRY(wait_changes(space));
        continue;
      default:
        return Error::io(fmt::format("placing page {:#x} at {:#x}", vpn.value_or(0), page), p.err);
    }
  }
}

// Best effort: the walk brings whatever this misses.
void PageServer::place_neighbours(Space& space, uint64_t page, uint64_t vpn) {
  uint64_t room = std::min(kFaultAhead, space.extents.pages_from(page) - 1);
  if (room == 0) return;
  std::array<uint8_t, kFaultAhead * kPage> buf;
  uint64_t n = 0;
  for (; n < room; ++n) {
    std::span<uint8_t, kPage> out(buf.data() + n * kPage, kPage);
    Result<bool> read = store_.read_page(snapshot_, vpn + 1 + n, out);
    if (!read.ok() || !*read) break;
  }
  if (n == 0) return;
  Placed p = space.uffd.copy(page + kPage, buf.data(), n * kPage);
  faulted_ += p.done / kPage;
  if (p.err == ESRCH) space.gone = true;
}

// --- serving ----------------------------------------------------------------------------

Status PageServer::poll_once(int timeout_ms) {
  std::vector<pollfd> fds;
  std::vector<size_t> which;
  for (size_t i = 0; i < spaces_.size(); ++i) {
    if (spaces_[i]->gone || !spaces_[i]->uffd) continue;
    fds.push_back({spaces_[i]->uffd.fd(), POLLIN, 0});
    which.push_back(i);
  }
  if (!process_exited_) fds.push_back({pidfd_.get(), POLLIN, 0});
  int n = ::poll(fds.data(), fds.size(), timeout_ms);
  if (n < 0 && errno != EINTR) return Error::io("waiting for page faults");
  if (n <= 0) return Status::Ok();
  for (size_t k = 0; k < which.size(); ++k) {
    if (fds[k].revents == 0) continue;
    Space& space = *spaces_[which[k]];
    FROST_TRY(drain(space));
    FROST_TRY(serve_faults(space));
  }
  if (!process_exited_ && fds.back().revents != 0) {
    process_exited_ = true;
    // Its address space, if no vfork child shares it, is going with it.
    spaces_.front()->gone = true;
  }
  return Status::Ok();
}

Status PageServer::serve_until_stopped(int stop_fd) {
  for (;;) {
    std::vector<pollfd> fds{{stop_fd, POLLIN, 0}};
    for (auto& s : spaces_) fds.push_back({s->uffd.fd(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return Error::io("waiting for page faults");
    if (fds[0].revents != 0) return Status::Ok();
    for (size_t i = 0; i < spaces_.size(); ++i) {
      FROST_TRY(drain(*spaces_[i]));
      FROST_TRY(serve_faults(*spaces_[i]));
    }
  }
}

// Places snapshot pages [vpn, vpn + pages) wherever the space's map says
// they are now. The kernel refuses a run that crosses into another VMA
// (the process may have split an area with mprotect): such a run is placed
// page by page.
Status PageServer::place_run(Space& space, uint64_t vpn, uint64_t pages, const uint8_t* data) {
  uint64_t i = 0;
  bool single = false;
  while (i < pages && !space.gone) {
    uint64_t skip = 0;
    std::optional<Placement> at = space.extents.find(vpn + i, &skip);
    if (!at) {
      i += std::min(skip, pages - i);
      continue;
    }
    uint64_t len = single ? 1 : std::min(at->pages, pages - i);
    Placed p = space.uffd.copy(at->addr, data + i * kPage, len * kPage);
    i += p.done / kPage;
    prefetched_ += p.done / kPage;
    switch (p.err) {
      case 0:
        break;
      case EEXIST:  // a fault placed it first
        ++i;
        break;
      case ENOENT:
        if (len > 1) {
          single = true;
        } else {
          ++i;  // unmapped, its event already read
        }
        break;
      case ESRCH:
        space.gone = true;
        break;
      case EAGAIN:
        FROST_TRY(wait_changes(space));
        FROST_TRY(serve_faults(space));
        break;
      default:
        return Error::io(fmt::format("placing page {:#x} at {:#x}", vpn + i, at->addr), p.err);
    }
  }
  return Status::Ok();
}

// One walk of the snapshot in page order serves every address space: a
// fork's child joins at the walk's position, because every page before it
// was placed in the parent before the fork copied the parent's page tables
// (from the fork on the kernel refuses placements in the parent, EAGAIN,
// until the fork event is read and the child is followed too).
Status PageServer::prefetch() {
  std::vector<uint8_t> run(kRunPages * kPage);
  uint64_t first = 0, n = 0;
  bool finished = false;
  auto flush = [&]() -> Status {
    if (n == 0) return Status::Ok();
    FROST_TRY(poll_once(0));
    for (size_t s = 0; s < spaces_.size(); ++s) {
      if (!spaces_[s]->gone) FROST_TRY(place_run(*spaces_[s], first, n, run.data()));
    }
    n = 0;
    if (!any_space_alive()) finished = true;
    return Status::Ok();
  };
  Status walked = store_.for_each_page(snapshot_, [&](uint64_t vpn, std::span<const uint8_t, kPage> page) -> Status {
    if (n > 0 && (vpn != first + n || n == kRunPages)) FROST_TRY(flush());
    if (finished || vpn > last_vpn_) {
      finished = true;
      return Error(ErrorKind::kBusy, "walk over");  // stops the walk, not an error
    }
    if (n == 0) first = vpn;
    std::memcpy(run.data() + n * kPage, page.data(), kPage);
    ++n;
    return Status::Ok();
  });
  if (!walked.ok() && !finished) return walked.error().context(fmt::format("prefetching snapshot {}", snapshot_));
  return flush();
}

Status PageServer::run() {
  Clock::time_point t0 = Clock::now();
  Status served = prefetch();
  if (served.ok()) {
    // Events still queued (a fork at the very end) must be read, or the
    // forking thread would wait on a closed fd's completion.
    for (size_t i = 0; i < spaces_.size(); ++i) {
      if (!spaces_[i]->gone) served = drain(*spaces_[i]);
      if (!served.ok()) break;
    }
  }
  if (!served.ok()) {
    kill_process();
    close_all();
    done_ = true;
    seconds_ = std::chrono::duration<double>(Clock::now() - t0).count();
    return served.error().context(fmt::format("serving the pages of process {}", pid_));
  }
  // Every page is in: closing the fds unregisters the areas, and a later
  // fault on an untouched page is an ordinary zero-fill.
  Status released = Status::Ok();
  if (release_ && process_alive()) released = release_(pid_, spaces_.front()->uffd.fd());
  close_all();
  done_ = true;
  pending_ = 0;
  seconds_ = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!released.ok()) {
    // Still tied to this thread: leaving would kill it. Stay until it ends.
    pollfd p{pidfd_.get(), POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    return released.error().context(fmt::format("letting process {} go", pid_));
  }
  return Status::Ok();
}

// --- while the process is built ---------------------------------------------------------

std::unique_ptr<PageServer::FaultHelper> PageServer::serve_faults_in_background() {
  return std::make_unique<FaultHelper>(*this);
}

PageServer::FaultHelper::FaultHelper(PageServer& server) : stop_fd_(::eventfd(0, EFD_CLOEXEC)) {
  thread_ = std::thread([this, &server] {
    if (!stop_fd_) {
      outcome_ = Error::io("creating an eventfd");
      return;
    }
    outcome_ = server.serve_until_stopped(stop_fd_.get());
  });
}

Status PageServer::FaultHelper::stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (stop_fd_) (void)!::write(stop_fd_.get(), &one, sizeof one);
    thread_.join();
  }
  return outcome_;
}

}  // namespace frost::lazy
