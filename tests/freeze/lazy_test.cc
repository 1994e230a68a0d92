// Lazy melt (docs/LAZY_MELT.md): the process runs at once and a page server
// brings its memory in. Each test freezes a self-checking program of
// tests/programs, melts it lazily, and lets it check itself; the lazy_*
// programs prove from the inside that they ran, forked or reshaped their
// memory while pages were still pending (mincore of the buffer's last page),
// so none of these can pass by accident with an eager melt.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <functional>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "dump/capture.h"
#include "harness.h"
#include "restore/melt.h"
#include "store/store.h"

namespace frost::testing {
namespace {

std::string program_path(const std::string& name) { return std::string(FROST_PROGRAMS_DIR) + "/st_" + name; }

// A number field of the melt's one-line JSON answer (-1 when absent).
long long json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\":(-?[0-9]+)"))) return -1;
  return std::stoll(m[1]);
}

bool wait_until(const std::function<bool()>& pred, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

// Whether the process holds a userfaultfd (a lazy melt leaves one in it
// while pages are pending, and takes it away once they are in).
bool holds_userfaultfd(pid_t pid) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    if (fs::read_symlink(e.path(), ec).string().find("userfaultfd") != std::string::npos) return true;
  }
  return false;
}

// Output of the program written after `from` bytes.
std::string output_after(const Program& p, size_t from) {
  std::string out = p.output();
  return from < out.size() ? out.substr(from) : "";
}

// Ends (and reaps) a process by PID when a test stops early.
struct KillAtEnd {
  pid_t pid = 0;
  ~KillAtEnd() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    int status;
    wait_until([&] { return ::waitpid(pid, &status, WNOHANG | __WALL) == pid || process_state(pid) == 0; }, 5000);
  }
};

struct Frozen {
  TempDir home, work;
  std::unique_ptr<Program> program;
};

// Starts a program, waits for READY, freezes it.
void start_and_freeze(Frozen& f, const std::string& name, std::vector<std::string> args = {}) {
  args.insert(args.begin(), program_path(name));
  f.program = std::make_unique<Program>(args, f.work.path() / "out");
  ASSERT_TRUE(f.program->wait_ready()) << f.program->output();
  Outcome fr = frost({"freeze", std::to_string(f.program->pid()), "--name", name}, f.home.path());
  ASSERT_EQ(fr.exit_code, 0) << fr.err;
  f.program->reap_frozen();
  ASSERT_EQ(process_state(f.program->pid()), 0) << "the frozen process is still there";
}

// Sends SIGUSR1 and expects the program's PASS.
void expect_pass(Program& p, const std::string& name) {
  ASSERT_EQ(::kill(p.pid(), SIGUSR1), 0);
  int status = p.wait_exit();
  std::string out = p.output();
  EXPECT_EQ(status, 0) << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);
  EXPECT_NE(out.find("PASS " + name), std::string::npos) << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);
}

struct LazyMelted {
  Outcome outcome;
  pid_t pager = 0;
  long long pending = 0;
};

LazyMelted lazy_melt(const Frozen& f, const std::string& name) {
  LazyMelted m;
  m.outcome = frost_keep_serving({"melt", "--json", name}, f.home.path());
  EXPECT_EQ(m.outcome.exit_code, 0) << m.outcome.err;
  EXPECT_NE(m.outcome.out.find("\"lazy\":true"), std::string::npos) << m.outcome.out;
  m.pager = pager_of(m.outcome);
  m.pending = json_number(m.outcome.out, "pages_pending");
  EXPECT_GT(m.pager, 0) << m.outcome.out;
  return m;
}

// (a) Every self-checking program, lazily melted: the page server brings
// everything in and lets go (the process outlives it: its parent-death
// signal was cleared), and the program finds all of its state.
class LazyMeltProgram : public ::testing::TestWithParam<std::string> {};

TEST_P(LazyMeltProgram, SurvivesFreezeAndLazyMelt) {
  const std::string name = GetParam();
  Frozen f;
  ASSERT_NO_FATAL_FAILURE(start_and_freeze(f, name));
  LazyMelted m = lazy_melt(f, name);
  ASSERT_GT(m.pager, 0);
  EXPECT_GT(m.pending, 0) << "nothing was left to page in: " << m.outcome.out;
  EXPECT_EQ(wait_pager(m.pager), 0);
  ASSERT_TRUE(running_untouched(f.program->pid())) << "state " << process_state(f.program->pid());
  EXPECT_FALSE(holds_userfaultfd(f.program->pid()));
  expect_pass(*f.program, name);
}

// The same programs through `--eager`, which is no longer the default.
TEST_P(LazyMeltProgram, SurvivesFreezeAndEagerMelt) {
  const std::string name = GetParam();
  Frozen f;
  ASSERT_NO_FATAL_FAILURE(start_and_freeze(f, name));
  Outcome m = frost({"melt", "--eager", "--json", name}, f.home.path());
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_NE(m.out.find("\"lazy\":false"), std::string::npos) << m.out;
  ASSERT_TRUE(running_untouched(f.program->pid()));
  expect_pass(*f.program, name);
}

INSTANTIATE_TEST_SUITE_P(Programs, LazyMeltProgram,
                         ::testing::Values("threads_regs", "memory", "signals", "procattrs", "fds", "blocked_read",
                                           "blocked_nanosleep", "mt_avx", "lazy_reshape"),
                         [](const auto& info) { return info.param; });

// (e) The process runs before its pages are in: the heartbeat program
// prints "PENDING" only while the last page of its 256 MiB buffer is not
// resident, and only a running process prints.
TEST(LazyMelt, RunsBeforeItsPagesAreIn) {
  Frozen f;
  ASSERT_NO_FATAL_FAILURE(start_and_freeze(f, "lazy_heartbeat"));
  size_t before = f.program->output().size();
  LazyMelted m = lazy_melt(f, "lazy_heartbeat");
  EXPECT_GT(m.pending, 65000);
  EXPECT_TRUE(holds_userfaultfd(f.program->pid()));
  std::regex pending_beat(R"(BEAT [0-9]+ PENDING ([0-9]+)/65536)");
  std::smatch beat;
  std::string after;
  ASSERT_TRUE(wait_until([&] {
    after = output_after(*f.program, before);
    return std::regex_search(after, beat, pending_beat);
  }, 10000)) << after.substr(0, 2000);
  EXPECT_LT(std::stoul(beat[1]), 65536u);
  EXPECT_EQ(wait_pager(m.pager), 0);
  // Once served, the process beats on with every page resident.
  size_t served = f.program->output().size();
  ASSERT_TRUE(wait_until([&] { return output_after(*f.program, served).find("BEAT") != std::string::npos; }, 5000));
  EXPECT_EQ(output_after(*f.program, served).find("PENDING"), std::string::npos);
  expect_pass(*f.program, "lazy_heartbeat");
}

// The control: an eager melt never lets it see a pending page.
TEST(LazyMelt, EagerMeltShowsNoPendingPage) {
  Frozen f;
  ASSERT_NO_FATAL_FAILURE(start_and_freeze(f, "lazy_heartbeat", {"64"}));
  size_t before = f.program->output().size();
  Outcome m = frost({"melt", "--eager", "lazy_heartbeat"}, f.home.path());
  ASSERT_EQ(m.exit_code, 0) << m.err;
  ASSERT_TRUE(wait_until([&] { return output_after(*f.program, before).find("BEAT") != std::string::npos; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(output_after(*f.program, before).find("PENDING"), std::string::npos);
  expect_pass(*f.program, "lazy_heartbeat");
}

// (b) A fork while pages are pending: the child's address space gets its
// own userfaultfd (UFFD_EVENT_FORK) and pages; both check every page.
TEST(LazyMelt, ForksWhilePagesArePending) {
  Frozen f;
  ASSERT_NO_FATAL_FAILURE(start_and_freeze(f, "lazy_fork"));
  size_t before = f.program->output().size();
  LazyMelted m = lazy_melt(f, "lazy_fork");
  std::string after;
  ASSERT_TRUE(wait_until([&] {
    after = output_after(*f.program, before);
    return after.find("FORKED") != std::string::npos;
  }, 20000)) << after;
  EXPECT_NE(after.find("FORKED PENDING"), std::string::npos) << after;
  EXPECT_NE(after.find("child ok"), std::string::npos) << after;
  EXPECT_EQ(wait_pager(m.pager), 0);
  expect_pass(*f.program, "lazy_fork");
}

// (c) munmap, mremap (moved and grown; MREMAP_DONTUNMAP) and MADV_DONTNEED
// while pages are pending: moved pages follow, dropped ones read as zero.
TEST(LazyMelt, FollowsUnmapRemapAndDontneedWhilePending) {
  Frozen f;
  ASSERT_NO_FATAL_FAILURE(start_and_freeze(f, "lazy_reshape"));
  size_t before = f.program->output().size();
  LazyMelted m = lazy_melt(f, "lazy_reshape");
  std::string after;
  ASSERT_TRUE(wait_until([&] {
    after = output_after(*f.program, before);
    return after.find("RESHAPED") != std::string::npos;
  }, 20000)) << after;
  EXPECT_NE(after.find("RESHAPED PENDING"), std::string::npos) << after;
  EXPECT_EQ(after.find("FAIL"), std::string::npos) << after;
  EXPECT_EQ(wait_pager(m.pager), 0);
  expect_pass(*f.program, "lazy_reshape");
}

// (d) The page server dies while pages are pending: the process must die
// with it (its parent-death signal), not hang and not read zeros; the image
// is untouched and melts again.
TEST(LazyMelt, ProcessDiesWithItsPageServer) {
  Frozen f;
  ASSERT_NO_FATAL_FAILURE(start_and_freeze(f, "lazy_heartbeat"));
  LazyMelted m = lazy_melt(f, "lazy_heartbeat");
  ASSERT_GT(m.pager, 0);
  ASSERT_EQ(::kill(m.pager, SIGKILL), 0);
  EXPECT_EQ(wait_pager(m.pager), 128 + SIGKILL);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(f.program->wait_exit(5000), 128 + SIGKILL) << "the process outlived its page server";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(f.program->output().find("FAIL"), std::string::npos);

  // The same image again; this process is no longer the Program's child.
  LazyMelted second = lazy_melt(f, "lazy_heartbeat");
  ASSERT_GT(second.pager, 0);
  pid_t pid = pid_t(json_number(second.outcome.out, "pid"));
  ASSERT_GT(pid, 0);
  KillAtEnd guard{pid};
  EXPECT_EQ(wait_pager(second.pager), 0);
  ASSERT_TRUE(running_untouched(pid));
  ASSERT_EQ(::kill(pid, SIGUSR1), 0);
  int status = 0;
  ASSERT_TRUE(wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 20000));
  guard.pid = 0;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(f.program->output().find("PASS lazy_heartbeat"), std::string::npos);
}

// The API: melt with MeltOptions::lazy in this process, then run() the
// pager on this thread, as the daemon does.
TEST(LazyMelt, ApiServesEveryPendingPage) {
  Frozen f;
  ASSERT_NO_FATAL_FAILURE(start_and_freeze(f, "lazy_fork"));
  auto s = store::Store::open((f.home.path() / "store").string(), store::StoreOptions{});
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  restore::MeltOptions options;
  options.lazy = true;
  auto melted = restore::melt(**s, "lazy_fork", options);
  ASSERT_TRUE(melted.ok()) << melted.error().to_string();
  ASSERT_NE(melted->pager, nullptr);
  uint64_t pending = melted->pager->pages_pending();
  EXPECT_GE(pending, 16384u);
  Status served = melted->pager->run();
  ASSERT_TRUE(served.ok()) << served.error().to_string();
  EXPECT_GE(melted->pager->pages_faulted() + melted->pager->pages_prefetched(), pending);
  EXPECT_GE(melted->pager->address_spaces(), 2u) << "the fork was not followed";
  std::printf("pending %lu, faulted %lu, prefetched %lu, zero %lu, %lu address spaces, %.1f ms\n",
              (unsigned long)pending, (unsigned long)melted->pager->pages_faulted(),
              (unsigned long)melted->pager->pages_prefetched(), (unsigned long)melted->pager->pages_zeroed(),
              (unsigned long)melted->pager->address_spaces(), melted->pager->seconds() * 1000);
  melted->pager.reset();
  ASSERT_TRUE(running_untouched(f.program->pid()));
  expect_pass(*f.program, "lazy_fork");
}

}  // namespace
}  // namespace frost::testing
