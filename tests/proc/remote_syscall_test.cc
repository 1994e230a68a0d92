// System calls injected into threads of a real process, which must carry on
// afterwards as if nothing happened.
#include "proc/remote_syscall.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>

#include <cstring>

#include "proc/proc_maps.h"
#include "proc/ptrace.h"
#include "proc/thread_state.h"
#include "targets/target_launcher.h"

namespace frost::proc {
namespace {

using testing::Target;
using testing::thread_state;
using testing::tid_named;
using testing::tids_of;
using testing::tracer_of;
using testing::wait_until;

std::unique_ptr<Target> launch_settled() {
  auto t = Target::launch();
  if (!t) return t;
  pid_t reader = tid_named(t->pid, "reader");
  wait_until([&] {
    return testing::blocked_syscall(t->pid, reader) == SYS_read &&
           testing::blocked_syscall(t->pid, t->pid) == SYS_read;
  });
  return t;
}

void expect_check_ok(Target& t) {
  std::string check = t.command("check");
  for (int i = 0; i < 8; ++i) {
    EXPECT_NE(check.find("spin" + std::to_string(i) + "=ok"), std::string::npos) << check;
  }
  EXPECT_NE(check.find("sleeper_err=0"), std::string::npos) << check;
}

void expect_running_untraced(pid_t pid) {
  for (pid_t tid : tids_of(pid)) {
    char s = thread_state(pid, tid);
    EXPECT_TRUE(s != 't' && s != 'T') << "thread " << tid << " state " << s;
    EXPECT_EQ(tracer_of(pid, tid), 0) << "thread " << tid;
  }
}

bool same_registers(const user_regs_struct& a, const user_regs_struct& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

TEST(RemoteSyscall, GetpidAndGettidInEveryThread) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    for (const SeizedThread& th : p->threads()) {
      auto before = get_registers(th.tid);
      auto mask = get_signal_mask(th.tid);
      auto xstate = get_xstate(th.tid);
      ASSERT_TRUE(before.ok() && mask.ok() && xstate.ok());
      auto rs = RemoteSyscall::attach(t->pid, th.tid);
      ASSERT_TRUE(rs.ok()) << rs.error().to_string();
      EXPECT_NE(rs->gadget(), 0u);  // found in the vdso
      for (int i = 0; i < 3; ++i) {
        auto pid = rs->call(SYS_getpid);
        ASSERT_TRUE(pid.ok()) << pid.error().to_string();
        EXPECT_EQ(*pid, t->pid);
        auto tid = rs->call(SYS_gettid);
        ASSERT_TRUE(tid.ok()) << tid.error().to_string();
        EXPECT_EQ(*tid, th.tid);
      }
      auto after = get_registers(th.tid);
      ASSERT_TRUE(after.ok());
      EXPECT_TRUE(same_registers(*before, *after)) << "thread " << th.tid;
      EXPECT_EQ(*get_signal_mask(th.tid), *mask);
      EXPECT_EQ(*get_xstate(th.tid), *xstate);
      EXPECT_EQ(thread_state(t->pid, th.tid), 't');
    }
    ASSERT_TRUE(p->resume().ok());
  }
  expect_running_untraced(t->pid);
  t->feed_reader("hello");
  EXPECT_EQ(t->read_line(), "read 5 hello");
  EXPECT_EQ(t->ping().size(), 3u);
  expect_check_ok(*t);
}

// Without a `syscall` found in the target: the one the thread stopped after,
// or two bytes written at rip and put back.
TEST(RemoteSyscall, WithoutAGadget) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    ProcessMemory memory(t->pid);
    for (const SeizedThread& th : p->threads()) {
      auto before = get_registers(th.tid);
      ASSERT_TRUE(before.ok());
      uint8_t code[2], code_after[2];
      ASSERT_TRUE(memory.read(before->rip, code, 2).ok());
      // "busy" runs user code only: no syscall to borrow, the patch path.
      if (th.tid == tid_named(t->pid, "busy")) {
        EXPECT_EQ(long(before->orig_rax), -1);
      }
      auto rs = RemoteSyscall::attach(t->pid, th.tid, /*find_gadget=*/false);
      ASSERT_TRUE(rs.ok());
      EXPECT_EQ(rs->gadget(), 0u);
      auto tid = rs->call(SYS_gettid);
      ASSERT_TRUE(tid.ok()) << tid.error().to_string();
      EXPECT_EQ(*tid, th.tid);
      EXPECT_TRUE(same_registers(*before, *get_registers(th.tid)));
      ASSERT_TRUE(memory.read(before->rip, code_after, 2).ok());
      EXPECT_EQ(std::memcmp(code, code_after, 2), 0) << "thread " << th.tid;
    }
    ASSERT_TRUE(p->resume().ok());
  }
  expect_running_untraced(t->pid);
  t->feed_reader("hi");
  EXPECT_EQ(t->read_line(), "read 2 hi");
  expect_check_ok(*t);
}

TEST(RemoteSyscall, MmapWriteMunmap) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    auto rs = RemoteSyscall::attach(t->pid, t->pid);
    ASSERT_TRUE(rs.ok()) << rs.error().to_string();
    auto area = rs->map_anonymous(4096);
    ASSERT_TRUE(area.ok()) << area.error().to_string();
    uint64_t addr = area->addr();
    auto maps = read_maps(t->pid);
    ASSERT_TRUE(maps.ok());
    bool mapped = false;
    for (const MemoryArea& a : *maps) mapped |= a.start <= addr && addr < a.end;
    EXPECT_TRUE(mapped);

    const std::string text = "hello from frost\n";
    ASSERT_TRUE(rs->write(addr, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}).ok());
    auto n = rs->call(SYS_write, 1, long(addr), long(text.size()));
    ASSERT_TRUE(n.ok()) << n.error().to_string();
    EXPECT_EQ(*n, long(text.size()));
    EXPECT_EQ(t->read_line(), "hello from frost");

    ASSERT_TRUE(area->unmap().ok());
    maps = read_maps(t->pid);
    ASSERT_TRUE(maps.ok());
    for (const MemoryArea& a : *maps) EXPECT_FALSE(a.start <= addr && addr < a.end);
    ASSERT_TRUE(p->resume().ok());
  }
  expect_running_untraced(t->pid);
  EXPECT_EQ(t->command("marker"), "marker frost-marker");
  expect_check_ok(*t);
}

// A thread stopped inside read() on an empty pipe still returns the bytes it
// was waiting for after calls were run in it: the kernel rewinds it onto its
// read() once its registers are back.
TEST(RemoteSyscall, BlockedReadResumesAfterRemoteCalls) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  pid_t reader = tid_named(t->pid, "reader");
  {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    for (pid_t tid : {reader, t->pid}) {
      auto regs = get_registers(tid);
      ASSERT_TRUE(regs.ok());
      ASSERT_EQ(syscall_restart(*regs), SyscallRestart::kReexecute);
      auto rs = RemoteSyscall::attach(t->pid, tid);
      ASSERT_TRUE(rs.ok()) << rs.error().to_string();
      auto area = rs->map_anonymous(8192);
      ASSERT_TRUE(area.ok()) << area.error().to_string();
      auto r = rs->call(SYS_getpid);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      EXPECT_TRUE(same_registers(*regs, *get_registers(tid)));
    }
    ASSERT_TRUE(p->resume().ok());
  }
  t->feed_reader("after the call");
  EXPECT_EQ(t->read_line(), "read 14 after the call");
  EXPECT_EQ(t->command("marker"), "marker frost-marker");  // the main thread's read() too
  expect_running_untraced(t->pid);
  expect_check_ok(*t);
}

// clock_nanosleep interrupted by the seize continues through
// restart_syscall: the sleeper never sees EINTR.
TEST(RemoteSyscall, SleeperKeepsSleeping) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  pid_t sleeper = tid_named(t->pid, "sleeper");
  for (int i = 0; i < 10; ++i) {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    auto rs = RemoteSyscall::attach(t->pid, sleeper);
    ASSERT_TRUE(rs.ok());
    ASSERT_TRUE(rs->call(SYS_getppid).ok());
    ASSERT_TRUE(p->resume().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string check = t->command("check");
  EXPECT_NE(check.find("sleeper_err=0"), std::string::npos) << check;
  EXPECT_EQ(check.find("sleeper_ok=0 "), std::string::npos) << check;
}

TEST(RemoteSyscall, FailedCallIsAnErrorAndChangesNothing) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    pid_t spin = tid_named(t->pid, "spin2");
    auto before = get_registers(spin);
    ASSERT_TRUE(before.ok());
    auto rs = RemoteSyscall::attach(t->pid, spin);
    ASSERT_TRUE(rs.ok());
    auto r = rs->call(SYS_close, -1);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), ErrorKind::kIo);
    EXPECT_EQ(r.error().err(), EBADF);
    EXPECT_NE(r.error().message().find("close()"), std::string::npos) << r.error().to_string();
    auto m = rs->mmap(0, 4096, PROT_READ, MAP_SHARED, 12345);  // no such fd
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message().find("mmap()"), std::string::npos) << m.error().to_string();
    EXPECT_TRUE(same_registers(*before, *get_registers(spin)));
    ASSERT_TRUE(p->resume().ok());
  }
  expect_running_untraced(t->pid);
  expect_check_ok(*t);
}

// A process stopped by SIGSTOP: calls run in it, and it stays stopped.
TEST(RemoteSyscall, InAJobControlStoppedProcess) {
  auto t = launch_settled();
  ASSERT_TRUE(t);
  ASSERT_EQ(::kill(t->pid, SIGSTOP), 0);
  ASSERT_TRUE(wait_until([&] { return thread_state(t->pid, t->pid) == 'T'; }));
  {
    auto p = SeizedProcess::seize(t->pid);
    ASSERT_TRUE(p.ok()) << p.error().to_string();
    ASSERT_TRUE(p->job_control_stopped());
    for (const SeizedThread& th : p->threads()) {
      auto rs = RemoteSyscall::attach(t->pid, th.tid);
      ASSERT_TRUE(rs.ok());
      auto tid = rs->call(SYS_gettid);
      ASSERT_TRUE(tid.ok()) << tid.error().to_string();
      EXPECT_EQ(*tid, th.tid);
    }
    ASSERT_TRUE(p->resume().ok());
  }
  for (pid_t tid : tids_of(t->pid)) {
    EXPECT_EQ(thread_state(t->pid, tid), 'T') << "thread " << tid;
    EXPECT_EQ(tracer_of(t->pid, tid), 0);
  }
  ASSERT_EQ(::kill(t->pid, SIGCONT), 0);
  t->feed_reader("go");
  EXPECT_EQ(t->read_line(), "read 2 go");
  expect_running_untraced(t->pid);
  expect_check_ok(*t);
}

}  // namespace
}  // namespace frost::proc
