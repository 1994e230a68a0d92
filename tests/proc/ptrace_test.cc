// Seizing real processes: every thread stopped, and let go as it was.
#include "proc/ptrace.h"

#include <cpuid.h>
#include <gtest/gtest.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "proc/memory.h"
#include "proc/thread_state.h"
#include "targets/target_launcher.h"

namespace frost::proc {
namespace {

using testing::Target;
using testing::kill_and_reap;
using testing::thread_state;
using testing::tid_named;
using testing::tids_of;
using testing::tracer_of;
using testing::wait_until;

constexpr int kTargetThreads = 12;  // main, 8 spinners, reader, sleeper, busy

std::unique_ptr<Target> launch_settled() {
  auto t = Target::launch();
  if (!t) return t;
  // The reader and the main thread are blocked in read() before we seize.
  pid_t reader = tid_named(t->pid, "reader");
  wait_until([&] {
    return testing::blocked_syscall(t->pid, reader) == SYS_read &&
           testing::blocked_syscall(t->pid, t->pid) == SYS_read;
  });
  return t;
}

void expect_all_stopped_by_us(const SeizedProcess& p) {
  std::set<pid_t> held;
  for (const SeizedThread& t : p.threads()) held.insert(t.tid);
  std::vector<pid_t> now = tids_of(p.pid());
  EXPECT_EQ(held, std::set<pid_t>(now.begin(), now.end()));
  for (pid_t tid : now) {
    EXPECT_EQ(thread_state(p.pid(), tid), 't') << "thread " << tid;
    EXPECT_EQ(tracer_of(p.pid(), tid), getpid()) << "thread " << tid;
  }
}

void expect_running_untraced(pid_t pid) {
  for (pid_t tid : tids_of(pid)) {
    auto st = read_thread_status(pid, tid);
    if (!st.ok()) continue;  // ended since listed (the churn target's threads do)
    EXPECT_TRUE(st->state != 't' && st->state != 'T') << "thread " << tid << " state " << st->state;
    EXPECT_EQ(st->tracer_pid, 0) << "thread " << tid;
  }
}

void expect_check_ok(Target& t) {
  std::string check = t.command("check");
  for (int i = 0; i < 8; ++i) {
    EXPECT_NE(check.find("spin" + std::to_string(i) + "=ok"), std::string::npos) << check;
  }
  EXPECT_NE(check.find("sleeper_err=0"), std::string::npos) << check;
}

// The target is alive: its spinners keep counting.
void expect_alive(Target& t) {
  long before = t.ping().at(0);
  EXPECT_TRUE(wait_until([&] { return t.ping().at(0) > before; }));
}

TEST(PtraceSeize, SeizeAndResumeLeavesTargetRunning) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    EXPECT_EQ(p->threads().size(), size_t(kTargetThreads));
    EXPECT_EQ(p->threads().front().tid, t->pid);
    EXPECT_FALSE(p->job_control_stopped());
    expect_all_stopped_by_us(*p);
    Status r = p->resume();
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_FALSE(p->attached());
    EXPECT_TRUE(p->resume().ok());  // idempotent
  }
  expect_running_untraced(t->pid);
  expect_alive(*t);
  expect_check_ok(*t);
}

TEST(PtraceSeize, DestructorResumes) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  for (int i = 0; i < 5; ++i) {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    SeizedProcess moved = std::move(*p);  // the moved-from one must not detach
    EXPECT_TRUE(moved.attached());
  }
  expect_running_untraced(t->pid);
  t->feed_reader("after");
  EXPECT_EQ(t->read_line(), "read 5 after");
  expect_alive(*t);
  expect_check_ok(*t);
}

// PTRACE_DETACH needs a stopped tracee; resume() stops one that a caller
// set running under trace before letting it go.
TEST(PtraceSeize, ResumeCopesWithAThreadLeftRunning) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  pid_t spin = tid_named(t->pid, "spin5");
  {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    ASSERT_EQ(::ptrace(PTRACE_CONT, spin, nullptr, nullptr), 0);
    ASSERT_TRUE(wait_until([&] { return thread_state(t->pid, spin) != 't'; }));
    Status r = p->resume();
    EXPECT_TRUE(r.ok()) << r.error().to_string();
  }
  expect_running_untraced(t->pid);
  expect_check_ok(*t);
}

TEST(PtraceSeize, CatchesThreadsCreatedWhileSeizing) {
  auto t = Target::launch("churn");
  ASSERT_TRUE(t);
  for (int i = 0; i < 30; ++i) {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    // Stopped threads cannot start new ones: what /proc lists now is final.
    expect_all_stopped_by_us(*p);
    ASSERT_TRUE(p->resume().ok());
  }
  expect_running_untraced(t->pid);
  long before = t->ping().at(0);
  EXPECT_TRUE(wait_until([&] { return t->ping().at(0) > before; }));
}

TEST(PtraceSeize, KeepsAJobControlStopAsItWas) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  ASSERT_EQ(::kill(t->pid, SIGSTOP), 0);
  ASSERT_TRUE(wait_until([&] {
    for (pid_t tid : tids_of(t->pid)) {
      if (thread_state(t->pid, tid) != 'T') return false;
    }
    return true;
  }));
  {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    EXPECT_TRUE(p->job_control_stopped());
    for (const SeizedThread& th : p->threads()) EXPECT_TRUE(th.job_control_stopped);
    ASSERT_TRUE(p->resume().ok());
  }
  for (pid_t tid : tids_of(t->pid)) {
    EXPECT_EQ(thread_state(t->pid, tid), 'T') << "thread " << tid;
    EXPECT_EQ(tracer_of(t->pid, tid), 0);
  }
  ASSERT_EQ(::kill(t->pid, SIGCONT), 0);
  expect_alive(*t);
  expect_running_untraced(t->pid);
  expect_check_ok(*t);
}

// A sender queues numbered real-time signals while we seize and resume over
// and over, until some seizes have caught a thread that had already dequeued
// one (a signal-delivery-stop before our interrupt: a race we cannot force,
// only provoke). Those are handed back at resume: none may be lost, none
// doubled, and each keeps its value.
TEST(PtraceSeize, SignalsTakenWhileSeizingAreNotLost) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t target = t->pid;
  pid_t sender = ::fork();
  ASSERT_GE(sender, 0);
  if (sender == 0) {
    static volatile sig_atomic_t stop = 0;
    ::signal(SIGTERM, [](int) { stop = 1; });
    long sent[2] = {0, 0};  // count, sum of values
    for (int i = 1; !stop; ++i) {
      sigval v{};
      v.sival_int = i;
      while (::sigqueue(target, SIGRTMIN, v) != 0) {
        if (errno != EAGAIN) ::_exit(1);
        ::usleep(100);  // the target's queue is full
      }
      sent[0] += 1;
      sent[1] += i;
      // Fast enough to race every seize, slow enough never to fill the
      // target's queue: a full queue leaves no room to put a taken signal back
      // (see SeizedProcess::resume).
      ::usleep(20);
    }
    (void)!::write(report[1], sent, sizeof(sent));
    ::_exit(0);
  }
  ::close(report[1]);
  size_t taken = 0;
  int rounds = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((taken < 3 || rounds < 200) && std::chrono::steady_clock::now() < end) {
    auto p = SeizedProcess::seize(target);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    for (const SeizedThread& th : p->threads()) taken += th.taken_signals.size();
    auto resumed = p->resume();
    ASSERT_TRUE(resumed.ok()) << resumed.error().to_string();
    ++rounds;
  }
  ::kill(sender, SIGTERM);
  long sent[2] = {};
  ASSERT_EQ(::read(report[0], sent, sizeof(sent)), ssize_t(sizeof(sent)));
  ::close(report[0]);
  kill_and_reap(sender);
  std::printf("%d seizes, %zu signals taken and queued again, %ld sent\n", rounds, taken, sent[0]);
  EXPECT_GE(taken, 1u) << "no seize caught a signal on its way in; the requeue went untested";
  EXPECT_TRUE(wait_until([&] { return t->ping().at(1) >= sent[0]; }));
  std::vector<long> pong = t->ping();
  EXPECT_EQ(pong.at(1), sent[0]);
  EXPECT_EQ(pong.at(2), sent[1]);
  expect_running_untraced(target);
  expect_check_ok(*t);
}

TEST(PtraceSeize, KillEndsTheProcess) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  auto p = SeizedProcess::seize(t->pid);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  Status k = p->kill();
  ASSERT_TRUE(k.ok()) << k.error().to_string();
  EXPECT_FALSE(p->attached());
  // We are its parent as well as its tracer, so kill() reaped it.
  int status;
  EXPECT_EQ(::waitpid(t->pid, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_NE(::kill(t->pid, 0), 0);
}

// --- refusals -------------------------------------------------------------------

TEST(PtraceErrors, NoSuchProcess) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(0);
  kill_and_reap(pid);
  auto p = SeizedProcess::seize(pid);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind(), ErrorKind::kNotFound) << p.error().to_string();
}

TEST(PtraceErrors, Zombie) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(0);
  ASSERT_TRUE(wait_until([&] { return thread_state(pid, pid) == 'Z'; }));
  auto p = SeizedProcess::seize(pid);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(p.error().message().find("zombie"), std::string::npos) << p.error().to_string();
  kill_and_reap(pid);
}

TEST(PtraceErrors, MainThreadGone) {
  auto t = Target::launch("leaderless");
  ASSERT_TRUE(t);
  ASSERT_TRUE(wait_until([&] { return thread_state(t->pid, t->pid) == 'Z'; }));
  auto p = SeizedProcess::seize(t->pid);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind(), ErrorKind::kUnsupported) << p.error().to_string();
  EXPECT_NE(p.error().message().find("main thread"), std::string::npos) << p.error().to_string();
}

TEST(PtraceErrors, WaitingForAVforkChild) {
  auto t = Target::launch("vfork");
  ASSERT_TRUE(t);
  std::string child = t->read_line();
  ASSERT_EQ(child.rfind("child ", 0), 0u) << child;
  pid_t child_pid = std::stoi(child.substr(6));
  ASSERT_TRUE(wait_until([&] { return thread_state(t->pid, t->pid) == 'D'; }));
  auto p = SeizedProcess::seize(t->pid);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind(), ErrorKind::kBusy) << p.error().to_string();
  EXPECT_NE(p.error().message().find("vfork"), std::string::npos) << p.error().to_string();
  EXPECT_EQ(tracer_of(t->pid, t->pid), 0);
  // The target first: its child is then handed to us (the test runner is a
  // subreaper) and can be reaped here.
  t.reset();
  kill_and_reap(child_pid);
}

TEST(PtraceErrors, Self) {
  auto p = SeizedProcess::seize(getpid());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(p.error().message().find("frost itself"), std::string::npos) << p.error().to_string();
}

TEST(PtraceErrors, KernelThread) {
  auto p = SeizedProcess::seize(2);  // kthreadd
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(p.error().message().find("kernel thread"), std::string::npos) << p.error().to_string();
}

TEST(PtraceErrors, ThreadIdIsNotAProcess) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  auto p = SeizedProcess::seize(tid_named(t->pid, "reader"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind(), ErrorKind::kInvalidArgument) << p.error().to_string();
  expect_running_untraced(t->pid);
}

TEST(PtraceErrors, AlreadyTracedByAnother) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t target = t->pid;
  pid_t tracer = ::fork();
  ASSERT_GE(tracer, 0);
  if (tracer == 0) {
    char ok = ::ptrace(PTRACE_SEIZE, target, nullptr, nullptr) == 0 ? 'y' : 'n';
    (void)!::write(ready[1], &ok, 1);
    for (;;) ::pause();
  }
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  ASSERT_EQ(ok, 'y');

  auto p = SeizedProcess::seize(target);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind(), ErrorKind::kBusy);
  EXPECT_EQ(p.error().err(), EPERM);
  EXPECT_NE(p.error().message().find("already traced by process " + std::to_string(tracer)),
            std::string::npos)
      << p.error().to_string();
  // Untouched: not stopped, and still answering.
  for (pid_t tid : tids_of(target)) EXPECT_NE(thread_state(target, tid), 't');
  expect_alive(*t);

  kill_and_reap(tracer);  // its tracees are let go as it exits
  expect_running_untraced(target);
  expect_check_ok(*t);
}

// --- thread state ---------------------------------------------------------------

// Offset of the upper halves of ymm0-15 in the standard XSAVE layout.
uint32_t ymm_hi_offset() {
  unsigned eax, ebx, ecx, edx;
  __cpuid_count(0xd, 2, eax, ebx, ecx, edx);
  return ebx;
}

constexpr uint32_t kXmmOffset = 160;  // legacy area: xmm0-15

TEST(PtraceThreadState, RegistersXstateMaskRseqAndRestart) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  pid_t reader = tid_named(t->pid, "reader");
  auto p = SeizedProcess::seize(t->pid);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  ProcessMemory memory(t->pid);
  const uint64_t always_blocked = (1ull << (SIGUSR2 - 1)) | (1ull << (SIGRTMIN + 1 - 1));
  int spinners = 0;
  for (const SeizedThread& th : p->threads()) {
    auto st = capture_thread(t->pid, th.tid);
    ASSERT_TRUE(st.ok()) << st.error().to_string();
    SCOPED_TRACE(st->name);
    EXPECT_EQ(st->regs.cs, 0x33u);
    EXPECT_NE(st->regs.rsp, 0u);
    EXPECT_NE(st->regs.fs_base, 0u);  // glibc's TLS
    EXPECT_GE(st->xstate.size(), 576u + 256u);
    EXPECT_EQ(st->sigmask & always_blocked, always_blocked);
    EXPECT_NE(st->rseq.abi_pointer, 0u);  // glibc registers rseq in every thread
    EXPECT_EQ(st->rseq.signature, 0x53053053u);
    EXPECT_TRUE(st->pending.empty());

    if (st->name.rfind("spin", 0) == 0) {
      ++spinners;
      int index = std::stoi(st->name.substr(4));
      for (int r = 0; r < 16; ++r) {
        uint8_t expect[16];
        std::memset(expect, (index << 4) | r, sizeof(expect));
        EXPECT_EQ(std::memcmp(&st->xstate[kXmmOffset + 16 * r], expect, 16), 0) << "xmm" << r;
        EXPECT_EQ(std::memcmp(&st->xstate[ymm_hi_offset() + 16 * r], expect, 16), 0) << "ymm" << r;
      }
    }
    if (th.tid == reader || th.tid == t->pid) {
      // Blocked in read(): stopped on its way out with -ERESTARTSYS.
      EXPECT_EQ(st->regs.orig_rax, unsigned(SYS_read));
      EXPECT_EQ(long(st->regs.rax), -512);
      ASSERT_EQ(syscall_restart(st->regs), SyscallRestart::kReexecute);
      user_regs_struct again = registers_for_restore(st->regs);
      EXPECT_EQ(again.rip, st->regs.rip - 2);
      EXPECT_EQ(again.rax, unsigned(SYS_read));
      EXPECT_EQ(long(again.orig_rax), -1);
      uint8_t insn[2];
      ASSERT_TRUE(memory.read(again.rip, insn, 2).ok());
      EXPECT_EQ(insn[0], 0x0f);
      EXPECT_EQ(insn[1], 0x05);
    }
    if (st->name == "busy") {
      EXPECT_EQ(long(st->regs.orig_rax), -1);
      EXPECT_EQ(syscall_restart(st->regs), SyscallRestart::kNone);
    }
    if (st->name == "sleeper") {
      EXPECT_NE(st->sigmask & (1ull << (SIGRTMIN - 1)), 0u);
      if (st->regs.orig_rax == unsigned(SYS_clock_nanosleep)) {
        EXPECT_EQ(syscall_restart(st->regs), SyscallRestart::kRestartBlock);
        user_regs_struct again = registers_for_restore(st->regs);
        EXPECT_EQ(again.rax, unsigned(SYS_restart_syscall));
        EXPECT_EQ(again.rip, st->regs.rip - 2);
      }
    }
  }
  EXPECT_EQ(spinners, 8);
  ASSERT_TRUE(p->resume().ok());
  expect_check_ok(*t);
}

TEST(PtraceThreadState, PendingSignalsPerThreadAndShared) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  pid_t reader = tid_named(t->pid, "reader");
  ASSERT_EQ(::syscall(SYS_tgkill, t->pid, reader, SIGUSR2), 0);
  sigval v{};
  v.sival_int = 42;
  ASSERT_EQ(::sigqueue(t->pid, SIGRTMIN + 1, v), 0);
  ASSERT_TRUE(wait_until([&] {
    auto st = read_thread_status(t->pid, reader);
    return st.ok() && st->sig_pending != 0 && st->shared_pending != 0;
  }));
  auto p = SeizedProcess::seize(t->pid);
  ASSERT_TRUE(p.ok()) << p.error().to_string();

  auto mine = peek_pending_signals(reader, SignalQueue::kThread);
  ASSERT_TRUE(mine.ok()) << mine.error().to_string();
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].si_signo, SIGUSR2);
  EXPECT_EQ((*mine)[0].si_code, SI_TKILL);
  EXPECT_EQ((*mine)[0].si_pid, getpid());

  auto shared = peek_pending_signals(t->pid, SignalQueue::kShared);
  ASSERT_TRUE(shared.ok()) << shared.error().to_string();
  ASSERT_EQ(shared->size(), 1u);
  EXPECT_EQ((*shared)[0].si_signo, SIGRTMIN + 1);
  EXPECT_EQ((*shared)[0].si_code, SI_QUEUE);
  EXPECT_EQ((*shared)[0].si_value.sival_int, 42);

  auto none = peek_pending_signals(tid_named(t->pid, "spin0"), SignalQueue::kThread);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(p->resume().ok());
  // Peeking dequeued nothing.
  auto st = read_thread_status(t->pid, reader);
  ASSERT_TRUE(st.ok());
  EXPECT_NE(st->sig_pending & (1ull << (SIGUSR2 - 1)), 0u);
  expect_check_ok(*t);
}

TEST(PtraceThreadState, SettersTakeEffect) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  pid_t spin0 = tid_named(t->pid, "spin0");
  {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    for (const SeizedThread& th : p->threads()) {  // setting what was read changes nothing
      auto regs = get_registers(th.tid);
      auto xs = get_xstate(th.tid);
      auto mask = get_signal_mask(th.tid);
      ASSERT_TRUE(regs.ok() && xs.ok() && mask.ok());
      ASSERT_TRUE(set_registers(th.tid, *regs).ok());
      ASSERT_TRUE(set_xstate(th.tid, *xs).ok());
      ASSERT_TRUE(set_signal_mask(th.tid, *mask).ok());
    }
    auto xs = get_xstate(spin0);
    ASSERT_TRUE(xs.ok());
    std::memset(&(*xs)[kXmmOffset + 16 * 3], 0xab, 16);
    std::memset(&(*xs)[ymm_hi_offset() + 16 * 3], 0xcd, 16);
    Status s = set_xstate(spin0, *xs);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
  }
  std::string check = t->command("check");
  std::string ymm3;  // xmm3 is the low half, printed first
  for (int i = 0; i < 16; ++i) ymm3 += "ab";
  for (int i = 0; i < 16; ++i) ymm3 += "cd";
  EXPECT_NE(check.find("spin0=bad:ymm3:" + ymm3), std::string::npos) << check;
  for (int i = 1; i < 8; ++i) {
    EXPECT_NE(check.find("spin" + std::to_string(i) + "=ok"), std::string::npos) << check;
  }
  EXPECT_NE(check.find("sleeper_err=0"), std::string::npos) << check;
}

TEST(PtraceThreadState, RestartClassification) {
  user_regs_struct r{};
  r.orig_rax = static_cast<unsigned long long>(-1);
  r.rax = static_cast<unsigned long long>(-512);
  EXPECT_EQ(syscall_restart(r), SyscallRestart::kNone);  // not in a system call
  r.orig_rax = SYS_read;
  r.rip = 0x1000;
  for (long code : {512, 513, 514}) {
    r.rax = static_cast<unsigned long long>(-code);
    EXPECT_EQ(syscall_restart(r), SyscallRestart::kReexecute) << code;
    user_regs_struct out = registers_for_restore(r);
    EXPECT_EQ(out.rip, 0xffeu);
    EXPECT_EQ(out.rax, unsigned(SYS_read));
  }
  r.rax = static_cast<unsigned long long>(-516);
  EXPECT_EQ(syscall_restart(r), SyscallRestart::kRestartBlock);
  EXPECT_EQ(registers_for_restore(r).rax, unsigned(SYS_restart_syscall));
  r.rax = static_cast<unsigned long long>(-EINTR);
  EXPECT_EQ(syscall_restart(r), SyscallRestart::kNone);
  EXPECT_EQ(registers_for_restore(r).rip, 0x1000u);
  r.rax = 5;
  EXPECT_EQ(syscall_restart(r), SyscallRestart::kNone);
}

// --- memory -----------------------------------------------------------------------

TEST(PtraceMemory, ReadWriteInBatchesWithFallback) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  ProcessMemory memory(t->pid);

  char marker[16] = {};
  ASSERT_TRUE(memory.read(t->marker, marker, 12).ok());
  EXPECT_STREQ(marker, "frost-marker");
  const char fresh[] = "written-by-frost";
  ASSERT_TRUE(memory.write(t->marker, fresh, sizeof(fresh)).ok());
  EXPECT_EQ(t->command("marker"), "marker written-by-frost");

  // PROT_NONE: only /proc/PID/mem reaches it.
  char hidden[32] = {};
  Status s = memory.read(t->none_page, hidden, 17);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_STREQ(hidden, "behind PROT_NONE");

  // Read-only: the write goes through /proc/PID/mem.
  const char ro[] = "rewritten";
  s = memory.write(t->ro_page, ro, sizeof(ro));
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(t->command("ro"), "ro rewritten");

  // One batch: 3 MiB in two ranges (several 1 MiB iovecs) around the PROT_NONE page.
  constexpr size_t kBig = 3 << 20;
  std::vector<uint8_t> a(kBig / 2), b(kBig - kBig / 2);
  char none_again[17] = {};
  MemoryRange ranges[] = {{t->big, a.data(), a.size()},
                          {t->none_page, none_again, 16},
                          {t->big + a.size(), b.data(), b.size()}};
  s = memory.read(ranges);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_STREQ(none_again, "behind PROT_NONE");
  bool same = true;
  for (size_t i = 0; i < kBig && same; ++i) {
    same = (i < a.size() ? a[i] : b[i - a.size()]) == uint8_t(i % 251);
  }
  EXPECT_TRUE(same);

  // Nothing mapped there: an error naming the address.
  char x;
  s = memory.read(0x1000, &x, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("0x1000"), std::string::npos) << s.error().to_string();
  expect_check_ok(*t);
}

}  // namespace
}  // namespace frost::proc
