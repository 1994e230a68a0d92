#include "restore/lazy_melt.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "proc/ptrace.h"
#include "proc/remote_userfaultfd.h"

namespace frost::restore {
namespace {

constexpr uint64_t kPage = 4096;

bool private_anonymous(const image::MemoryAreaImage& a, int helper) {
  return helper < 0 && !(a.flags & image::kAreaShared) && a.source == image::ContentSource::kStorePages &&
         (a.kind == image::AreaKind::kAnon || a.kind == image::AreaKind::kHeap || a.kind == image::AreaKind::kStack);
}

// High, out of the way of the numbers the program's own opens get, and
// below its RLIMIT_NOFILE.
int kept_fd_number(const image::ProcessImage& image) {
  uint64_t limit = 1024;
  for (const image::Rlimit& r : image.rlimits) {
    if (r.resource == RLIMIT_NOFILE) limit = r.cur;
  }
  return int(std::clamp<uint64_t>(limit, 64, 1024) - 1);
}

}  // namespace

std::vector<bool> lazy_areas(const image::ProcessImage& image, const MeltFiles& files,
                             const std::vector<bool>& filled) {
  std::vector<bool> lazy(image.areas.size(), false);
  for (size_t i = 0; i < image.areas.size(); ++i) {
    lazy[i] = filled[i] && private_anonymous(image.areas[i], files.area_helper(i));
  }
  return lazy;
}

std::vector<VpnRange> lazy_vpn_ranges(const image::ProcessImage& image, const std::vector<bool>& lazy) {
  std::vector<VpnRange> ranges;
  for (size_t i = 0; i < image.areas.size(); ++i) {
    if (lazy[i]) ranges.push_back({image.areas[i].start / kPage, image.areas[i].end / kPage});
  }
  return ranges;  // the image's areas are sorted and disjoint
}

Result<std::unique_ptr<lazy::PageServer>> start_page_server(proc::RemoteSyscall& leader, store::Store& store,
                                                            store::SnapshotId id, const image::ProcessImage& image,
                                                            const std::vector<bool>& lazy, int* kept_fd) {
  // Not user-mode-only: the kernel's own accesses (a read(2) into a pending
  // buffer) must wait for the page too. The stub still has frost's
  // credentials here, which that needs.
  FROST_ASSIGN(UniqueFd uffd, proc::open_remote_userfaultfd_kept(leader, O_CLOEXEC | O_NONBLOCK, "lazy melt",
                                                                  kept_fd_number(image), kept_fd));
  FROST_ASSIGN(std::unique_ptr<lazy::PageServer> server,
               lazy::PageServer::create(store, id, leader.pid(), std::move(uffd)));
  for (size_t i = 0; i < image.areas.size(); ++i) {
    if (lazy[i]) FROST_TRY(server->add_area(image.areas[i].start, image.areas[i].end));
  }
  int kept = *kept_fd;
  server->set_release([kept](pid_t pid, int fd) { return release_served_process(pid, fd, kept); });
  return server;
}

Status release_served_process(pid_t pid, int uffd, int kept_fd) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point give_up = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    Result<proc::SeizedProcess> seized = proc::SeizedProcess::seize(pid);
    if (seized.ok()) {
      Result<proc::RemoteSyscall> leader = proc::RemoteSyscall::attach(pid, pid);
      Status cleared = leader.ok() ? Status::Ok() : Status(leader.error());
      if (leader.ok()) {
        if (::syscall(SYS_kcmp, ::getpid(), pid, KCMP_FILE, uffd, kept_fd) == 0) {
          Result<long> r = leader->call(SYS_close, kept_fd);
          if (!r.ok()) cleared = r.error();
        }
        Result<long> r = leader->call(SYS_prctl, PR_SET_PDEATHSIG, 0, 0, 0, 0);
        if (!r.ok()) cleared = r.error();
      }
      Status resumed = seized->resume();
      FROST_TRY(cleared);
      return resumed;
    }
    if (seized.error().is(ErrorKind::kNotFound)) return Status::Ok();
    // Another tracer (a snapshot being taken) lets go soon.
    if (!seized.error().is(ErrorKind::kBusy) || Clock::now() >= give_up) {
      return seized.error().context(fmt::format("clearing the parent-death signal of process {}", pid));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace frost::restore
