// Incremental snapshots with dirty tracking (dump/dirty_tracker.h): after a
// full capture that arms the tracker, the next ones copy only the pages the
// process wrote, and a melt of the last one brings back all of its memory.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "dump/capture.h"
#include "dump/dirty_tracker.h"
#include "harness.h"
#include "restore/melt.h"
#include "store/store.h"

namespace frost::testing {
namespace {

bool wait_for_line(Program& p, const std::string& line) {
  for (int i = 0; i < 4000; ++i) {
    if (p.output().find(line + "\n") != std::string::npos) return true;
    ::usleep(5000);
  }
  return false;
}

// The dirty_pages program, a store, and a tracker that follows it.
class Incremental : public ::testing::Test {
 protected:
  void SetUp() override {
    p = std::make_unique<Program>(std::string(FROST_PROGRAMS_DIR) + "/st_dirty_pages", work.path() / "out");
    ASSERT_TRUE(p->wait_ready()) << p->output();
    auto s = store::Store::open_or_create((home.path() / "store").string(), store::StoreOptions{});
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    store = std::move(s).value();
    opt.name = "dp";
    opt.tracker = &tracker;
  }

  // Sends sig and waits for the line the program answers with.
  void ask(int sig, const std::string& answer) {
    ASSERT_EQ(::kill(p->pid(), sig), 0);
    ASSERT_TRUE(wait_for_line(*p, answer)) << p->output();
  }

  Result<dump::CaptureResult> capture() { return dump::capture(p->pid(), *store, opt); }

  // Melts the newest snapshot; the melted process (our child) checks all its pages.
  void melt_and_check(store::SnapshotId expect) {
    auto melted = restore::melt(*store, "dp", restore::MeltOptions{});
    ASSERT_TRUE(melted.ok()) << melted.error().to_string();
    EXPECT_EQ(melted->snapshot, expect);
    ASSERT_EQ(::kill(p->pid(), SIGUSR1), 0);
    EXPECT_EQ(p->wait_exit(), 0) << p->output();
    EXPECT_NE(p->output().find("PASS dirty_pages"), std::string::npos) << p->output();
  }

  TempDir home, work;
  std::unique_ptr<Program> p;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<dump::DirtyTracker> tracker;
  dump::CaptureOptions opt;
};

TEST_F(Incremental, CopiesOnlyWrittenPagesAndMeltsWhole) {
  auto full = capture();
  ASSERT_TRUE(full.ok()) << full.error().to_string();
  EXPECT_EQ(full->parent, 0u);
  EXPECT_GE(full->pages, 4096u);
  ASSERT_NE(tracker, nullptr);
  EXPECT_TRUE(running_untouched(p->pid()));

  // Round 1 rewrites 43 of the 4096 pages; the process touches a few more of its own.
  ask(SIGUSR2, "WROTE 1");
  auto inc = capture();
  ASSERT_TRUE(inc.ok()) << inc.error().to_string();
  std::printf("full: %lu pages, %lu bytes; incremental: %lu pages, %lu bytes\n", (unsigned long)full->pages,
              (unsigned long)full->bytes_stored, (unsigned long)inc->pages, (unsigned long)inc->bytes_stored);
  EXPECT_EQ(inc->parent, full->snapshot);
  EXPECT_GE(inc->pages, 42u);
  EXPECT_LT(inc->pages, 200u) << "an incremental capture copied far more than was written";
  EXPECT_LT(inc->bytes_stored * 10, full->bytes_stored);
  EXPECT_TRUE(running_untouched(p->pid()));

  // Round 2, then an incremental freeze.
  ask(SIGUSR2, "WROTE 2");
  opt.mode = dump::CaptureMode::kFreeze;
  auto frozen = capture();
  ASSERT_TRUE(frozen.ok()) << frozen.error().to_string();
  EXPECT_EQ(frozen->parent, inc->snapshot);
  EXPECT_LT(frozen->pages, 200u);
  p->reap_frozen();
  melt_and_check(frozen->snapshot);
}

// Between snapshots the process drops pages (MADV_DONTNEED), unmaps the end of
// its buffer and maps a new area: the incremental snapshot must zero the
// first, drop the second and copy the third whole.
TEST_F(Incremental, FollowsUnmapRemapAndDontneed) {
  ASSERT_TRUE(capture().ok());
  ask(SIGWINCH, "RESHAPED");
  auto inc = capture();
  ASSERT_TRUE(inc.ok()) << inc.error().to_string();
  EXPECT_NE(inc->parent, 0u);
  EXPECT_GE(inc->pages, 256u);  // the new area, whole
  EXPECT_LT(inc->pages, 400u);

  ask(SIGUSR2, "WROTE 1");
  opt.mode = dump::CaptureMode::kFreeze;
  auto frozen = capture();
  ASSERT_TRUE(frozen.ok()) << frozen.error().to_string();
  EXPECT_LT(frozen->pages, 200u);
  p->reap_frozen();
  melt_and_check(frozen->snapshot);
}

// The buffer is mapped again in place between a snapshot and a freeze: maps
// shows the same line, so the freeze takes the area's flags from the last
// capture (no smaps while stopped), but the new mapping is not registered.
// Its write scan fails, and the freeze must copy it whole.
TEST_F(Incremental, AreaMappedAgainInPlaceIsCopiedWhole) {
  ASSERT_TRUE(capture().ok());
  ask(SIGUSR2, "WROTE 1");
  auto inc = capture();
  ASSERT_TRUE(inc.ok()) << inc.error().to_string();
  EXPECT_LT(inc->pages, 200u);
  ask(SIGURG, "REMAPPED");
  ask(SIGUSR2, "WROTE 2");
  opt.mode = dump::CaptureMode::kFreeze;
  auto frozen = capture();
  ASSERT_TRUE(frozen.ok()) << frozen.error().to_string();
  EXPECT_EQ(frozen->parent, inc->snapshot);
  EXPECT_GE(frozen->pages, 4096u) << "the new mapping was not copied whole";
  p->reap_frozen();
  melt_and_check(frozen->snapshot);
}

// The buffer is mapped again in place, empty, between two snapshots: the
// new mapping is copied whole, and the pages it does not have must not be
// inherited from the snapshot before (they read as zero now).
TEST_F(Incremental, AreaMappedAgainEmptyDropsTheOldPages) {
  ASSERT_TRUE(capture().ok());
  ask(SIGUSR2, "WROTE 1");
  ASSERT_TRUE(capture().ok());
  ask(SIGTTIN, "EMPTIED");
  ask(SIGUSR2, "WROTE 2");  // about 1% of the pages again
  auto inc = capture();
  ASSERT_TRUE(inc.ok()) << inc.error().to_string();
  EXPECT_LT(inc->pages, 200u);
  ask(SIGUSR2, "WROTE 3");
  opt.mode = dump::CaptureMode::kFreeze;
  auto frozen = capture();
  ASSERT_TRUE(frozen.ok()) << frozen.error().to_string();
  p->reap_frozen();
  melt_and_check(frozen->snapshot);
}

// The same with pre-copy rounds: a round copies the new mapping whole.
TEST_F(Incremental, AreaMappedAgainEmptyDuringPrecopy) {
  opt.precopy = true;
  ASSERT_TRUE(capture().ok());
  ask(SIGUSR2, "WROTE 1");
  ASSERT_TRUE(capture().ok());
  ask(SIGTTIN, "EMPTIED");
  ask(SIGUSR2, "WROTE 2");
  auto inc = capture();
  ASSERT_TRUE(inc.ok()) << inc.error().to_string();
  opt.precopy = false;
  opt.mode = dump::CaptureMode::kFreeze;
  auto frozen = capture();
  ASSERT_TRUE(frozen.ok()) << frozen.error().to_string();
  p->reap_frozen();
  melt_and_check(frozen->snapshot);
}

// Force snapshots copy while the process runs and stop it only for the last
// round: the first one arms a tracker and copies everything in a round, the
// next ones only what was written, and a reshaped address space between
// rounds still melts whole.
TEST_F(Incremental, PrecopyRoundsThenShortStop) {
  opt.precopy = true;
  auto first = capture();
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  EXPECT_EQ(first->parent, 0u);
  EXPECT_GE(first->precopy_rounds, 1);
  EXPECT_GE(first->precopy_pages, 4096u);
  EXPECT_TRUE(running_untouched(p->pid()));

  ask(SIGUSR2, "WROTE 1");
  auto second = capture();
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  EXPECT_EQ(second->parent, first->snapshot);
  EXPECT_LT(second->pages, 200u);

  ask(SIGWINCH, "RESHAPED");
  ask(SIGUSR2, "WROTE 2");
  opt.mode = dump::CaptureMode::kFreeze;
  auto frozen = capture();
  ASSERT_TRUE(frozen.ok()) << frozen.error().to_string();
  EXPECT_EQ(frozen->parent, second->snapshot);
  p->reap_frozen();
  melt_and_check(frozen->snapshot);
}

// A capture that fails drops the tracker: its written set may be used up.
TEST_F(Incremental, FailedCaptureDropsTheTracker) {
  ASSERT_TRUE(capture().ok());
  ASSERT_NE(tracker, nullptr);
  store::StoreOptions ro;
  ro.read_only = true;
  auto reader = store::Store::open((home.path() / "store").string(), ro);
  ASSERT_TRUE(reader.ok()) << reader.error().to_string();
  auto failed = dump::capture(p->pid(), **reader, opt);  // a read-only store takes no snapshot
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(tracker, nullptr);
  EXPECT_TRUE(running_untouched(p->pid()));
}

}  // namespace
}  // namespace frost::testing
