#include "restore/thread_restore.h"

#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "common/kernel_compat.h"
#include "proc/thread_state.h"

namespace frost::restore {
namespace {

constexpr size_t kSiginfoSize = 128;

Status check(Result<long> r, const std::string& what) {
  if (!r.ok()) return r.error().context(what);
  return Status::Ok();
}

timeval us_timeval(uint64_t us) { return {time_t(us / 1000000), suseconds_t(us % 1000000)}; }
timespec ns_timespec(uint64_t ns) { return {time_t(ns / 1000000000), long(ns % 1000000000)}; }

struct KernelSigevent {  // struct sigevent as the kernel reads it (x86-64)
  uint64_t value;
  int32_t signo;
  int32_t notify;
  int32_t tid;
  int32_t pad[11];
};
static_assert(sizeof(KernelSigevent) == 64);

// tgid and tid as the process sees them (inside its PID namespace).
Status queue_signals(proc::RemoteSyscall& t, uint64_t scratch, const std::vector<std::vector<uint8_t>>& infos,
                     pid_t tgid, pid_t tid, bool shared) {
  for (const std::vector<uint8_t>& info : infos) {
    if (info.size() != kSiginfoSize) return Error::corruption("a pending signal of the image is malformed");
    int sig = 0;
    std::memcpy(&sig, info.data(), sizeof sig);
    if (sig < 1 || sig > image::kSignalCount) return Error::corruption("a pending signal of the image is malformed");
    FROST_TRY(t.memory().write(scratch, info.data(), info.size()));
    Result<long> r = shared ? t.call(SYS_rt_sigqueueinfo, tgid, sig, long(scratch))
                            : t.call(SYS_rt_tgsigqueueinfo, tgid, tid, sig, long(scratch));
    FROST_TRY(check(r, fmt::format("queueing pending signal {}", sig)));
  }
  return Status::Ok();
}

// Credentials as frost runs with them now (the stub inherited them).
struct CurrentCreds {
  uid_t uid[3];
  gid_t gid[3];
  std::vector<gid_t> groups;
};

CurrentCreds current_creds() {
  CurrentCreds c{};
  getresuid(&c.uid[0], &c.uid[1], &c.uid[2]);
  getresgid(&c.gid[0], &c.gid[1], &c.gid[2]);
  int n = getgroups(0, nullptr);
  c.groups.resize(size_t(std::max(n, 0)));
  if (n > 0) getgroups(n, c.groups.data());
  return c;
}

// Never more than the kernel lets frost do: each call below fails with
// EPERM where the image would gain what the caller does not have.
Status apply_credentials(proc::RemoteSyscall& t, uint64_t scratch, const image::Credentials& want) {
  CurrentCreds now = current_creds();
  std::vector<gid_t> groups(want.groups.begin(), want.groups.end());
  bool same_groups = std::is_permutation(groups.begin(), groups.end(), now.groups.begin(), now.groups.end());
  bool same_gid = now.gid[0] == want.gids[0] && now.gid[1] == want.gids[1] && now.gid[2] == want.gids[2];
  bool same_uid = now.uid[0] == want.uids[0] && now.uid[1] == want.uids[1] && now.uid[2] == want.uids[2];
  auto denied = [&](Result<long> r, std::string what) -> Status {
    if (r.ok()) return Status::Ok();
    return Error(ErrorKind::kIo, fmt::format("the image runs {}, which frost (uid {}) may not restore", what, now.uid[1]),
                 r.error().err());
  };
  if (!same_groups) {
    FROST_TRY(t.memory().write(scratch, groups.data(), groups.size() * sizeof(gid_t)));
    FROST_TRY(denied(t.call(SYS_setgroups, long(groups.size()), long(scratch)), "with other supplementary groups"));
  }
  if (!same_gid) {
    FROST_TRY(denied(t.call(SYS_setresgid, want.gids[0], want.gids[1], want.gids[2]), fmt::format("as gid {}", want.gids[1])));
  }
  if (!same_uid) {
    FROST_TRY(denied(t.call(SYS_setresuid, want.uids[0], want.uids[1], want.uids[2]), fmt::format("as uid {}", want.uids[1])));
  }
  // Capabilities only shrink: ask for the image's sets within what the thread has now.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct have[2] = {};
  if (::syscall(SYS_capget, &hdr, have) == 0) {
    uint64_t permitted = (uint64_t(have[1].permitted) << 32) | have[0].permitted;
    if (!same_uid) permitted = want.uids[1] == 0 ? permitted : 0;
    uint64_t p = want.cap_permitted & permitted, e = want.cap_effective & p, i = want.cap_inheritable & p;
    uint64_t cur_e = (uint64_t(have[1].effective) << 32) | have[0].effective;
    if (p != permitted || e != cur_e) {
      __user_cap_data_struct data[2] = {{uint32_t(e), uint32_t(p), uint32_t(i)},
                                        {uint32_t(e >> 32), uint32_t(p >> 32), uint32_t(i >> 32)}};
      FROST_TRY(t.memory().write(scratch, &hdr, sizeof hdr));
      FROST_TRY(t.memory().write(scratch + 64, data, sizeof data));
      FROST_TRY(denied(t.call(SYS_capset, long(scratch), long(scratch + 64)), "with other capabilities"));
    }
  }
  if (want.no_new_privs) FROST_TRY(check(t.call(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "setting no_new_privs"));
  return Status::Ok();
}

}  // namespace

Status create_threads(proc::RemoteSyscall& leader, const Window& window, const image::ProcessImage& image) {
  for (size_t i = 1; i < image.threads.size(); ++i) {
    const image::ThreadImage& t = image.threads[i];
    clone_args args{};
    args.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    uint64_t tid = uint64_t(t.tid);
    uint64_t tid_at = window.scratch + 256;
    args.set_tid = tid_at;
    args.set_tid_size = 1;
    FROST_TRY(leader.memory().write(window.scratch, &args, CLONE_ARGS_SIZE_VER1));
    FROST_TRY(leader.memory().write(tid_at, &tid, sizeof tid));
    Result<long> r = leader.call(SYS_clone3, long(window.scratch), CLONE_ARGS_SIZE_VER1);
    if (!r.ok()) {
      if (r.error().err() == EEXIST) {
        return Error(ErrorKind::kExists, fmt::format("thread id {} (thread {} of the image) is taken by another process", t.tid, i + 1), EEXIST);
      }
      return r.error().context(fmt::format("creating thread {}", t.tid));
    }
    if (*r != t.tid) return Error::io(fmt::format("thread {} was created as {}", t.tid, *r), 0);
  }
  return Status::Ok();
}

Status restore_thread_kernel_state(const ThreadIds& ids, const image::ThreadImage& thread, const Window& window,
                                   const image::Credentials& creds) {
  FROST_ASSIGN(proc::RemoteSyscall t, proc::RemoteSyscall::attach(ids.host_pid, ids.host_tid, false));
  t.use_gadget(window.gadget);
  const uint64_t s = window.scratch;
  if (thread.rseq.abi_pointer != 0) {
    FROST_TRY(check(t.call(SYS_rseq, long(thread.rseq.abi_pointer), long(thread.rseq.abi_size), 0, long(thread.rseq.signature)),
                    "registering rseq"));
  }
  FROST_TRY(check(t.call(SYS_set_robust_list, long(thread.robust_list_head), long(thread.robust_list_len)), "setting the robust futex list"));
  FROST_TRY(check(t.call(SYS_set_tid_address, long(thread.clear_child_tid)), "setting clear_child_tid"));
  stack_t ss{};
  ss.ss_sp = reinterpret_cast<void*>(thread.sigaltstack.sp);
  ss.ss_size = thread.sigaltstack.size;
  ss.ss_flags = int(thread.sigaltstack.flags & ~uint32_t(SS_ONSTACK));
  if (ss.ss_flags & SS_DISABLE) ss = stack_t{nullptr, SS_DISABLE, 0};
  FROST_TRY(t.memory().write(s, &ss, sizeof ss));
  FROST_TRY(check(t.call(SYS_sigaltstack, long(s), 0), "setting the alternate signal stack"));
  char name[16] = {};
  std::memcpy(name, thread.name.data(), std::min<size_t>(thread.name.size(), 15));
  FROST_TRY(t.memory().write(s, name, sizeof name));
  FROST_TRY(check(t.call(SYS_prctl, PR_SET_NAME, long(s)), "setting the thread name"));
  FROST_TRY(queue_signals(t, s, thread.pending, ids.pid, thread.tid, false));
  return apply_credentials(t, s, creds);
}

Status restore_process_signals(proc::RemoteSyscall& leader, const Window& window, const image::ProcessImage& image) {
  const uint64_t s = window.scratch;
  FROST_TRY(queue_signals(leader, s, image.shared_pending, image.pid, image.pid, true));
  for (int which = 0; which < 3; ++which) {
    const image::ItimerImage& it = image.itimers[which];
    if (it.value_us == 0 && it.interval_us == 0) continue;
    itimerval v{us_timeval(it.interval_us), us_timeval(it.value_us)};
    FROST_TRY(leader.memory().write(s, &v, sizeof v));
    FROST_TRY(check(leader.call(SYS_setitimer, which, long(s), 0), "restoring an itimer"));
  }
  if (image.posix_timers.empty()) return Status::Ok();
  FROST_TRY(check(leader.call(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0),
                  "asking for POSIX timer ids (Linux 6.16)"));
  for (const image::PosixTimerImage& pt : image.posix_timers) {
    KernelSigevent ev{};
    ev.value = pt.sigev_value;
    ev.signo = pt.signo;
    ev.notify = pt.notify;
    ev.tid = pt.notify_tid;
    int32_t id = pt.id;
    FROST_TRY(leader.memory().write(s, &ev, sizeof ev));
    FROST_TRY(leader.memory().write(s + 128, &id, sizeof id));
    FROST_TRY(check(leader.call(SYS_timer_create, pt.clock_id, long(s), long(s + 128)), fmt::format("re-creating POSIX timer {}", pt.id)));
    FROST_TRY(leader.memory().read(s + 128, &id, sizeof id));
    if (id != pt.id) return Error::io(fmt::format("POSIX timer {} came back as {}", pt.id, id), 0);
    if (pt.value_ns == 0) continue;
    itimerspec v{ns_timespec(pt.interval_ns), ns_timespec(pt.value_ns)};
    FROST_TRY(leader.memory().write(s + 256, &v, sizeof v));
    FROST_TRY(check(leader.call(SYS_timer_settime, pt.id, 0, long(s + 256), 0), fmt::format("arming POSIX timer {}", pt.id)));
  }
  return check(leader.call(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0),
               "ending POSIX timer restore");
}

Status set_thread_cpu_state(const image::ThreadImage& thread, pid_t host_tid) {
  if (thread.regs.size() != sizeof(user_regs_struct)) {
    return Error::corruption(fmt::format("thread {}: registers of {} bytes, expected {}", thread.tid,
                                         thread.regs.size(), sizeof(user_regs_struct)));
  }
  user_regs_struct regs{};
  std::memcpy(&regs, thread.regs.data(), sizeof regs);
  if (!thread.xstate.empty()) FROST_TRY(proc::set_xstate(host_tid, thread.xstate));
  FROST_TRY(proc::set_registers(host_tid, proc::registers_for_restore(regs)));
  return proc::set_signal_mask(host_tid, thread.sigmask);
}

}  // namespace frost::restore
