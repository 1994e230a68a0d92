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

std::unique_ptr<store::Store> open_store(const fs::path& dir) {
  auto s = store::Store::open_or_create((dir / "store").string(), store::StoreOptions{});
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return s.ok() ? std::move(s).value() : nullptr;
}

TEST(Incremental, CopiesOnlyWrittenPagesAndMeltsWhole) {
  TempDir home, work;
  Program p(std::string(FROST_PROGRAMS_DIR) + "/st_dirty_pages", work.path() / "out");
  ASSERT_TRUE(p.wait_ready()) << p.output();
  auto store = open_store(home.path());
  ASSERT_NE(store, nullptr);
  std::unique_ptr<dump::DirtyTracker> tracker;
  dump::CaptureOptions opt;
  opt.name = "dp";
  opt.tracker = &tracker;

  auto full = dump::capture(p.pid(), *store, opt);
  ASSERT_TRUE(full.ok()) << full.error().to_string();
  EXPECT_EQ(full->parent, 0u);
  EXPECT_GE(full->pages, 4096u);
  ASSERT_NE(tracker, nullptr);
  EXPECT_TRUE(running_untouched(p.pid()));

  // Round 1 rewrites 43 of the 4096 pages; the process touches a few more of its own.
  ASSERT_EQ(::kill(p.pid(), SIGUSR2), 0);
  ASSERT_TRUE(wait_for_line(p, "WROTE 1")) << p.output();
  auto inc = dump::capture(p.pid(), *store, opt);
  ASSERT_TRUE(inc.ok()) << inc.error().to_string();
  std::printf("full: %lu pages, %lu bytes; incremental: %lu pages, %lu bytes\n", (unsigned long)full->pages,
              (unsigned long)full->bytes_stored, (unsigned long)inc->pages, (unsigned long)inc->bytes_stored);
  EXPECT_EQ(inc->parent, full->snapshot);
  EXPECT_GE(inc->pages, 42u);
  EXPECT_LT(inc->pages, 200u) << "an incremental capture copied far more than was written";
  EXPECT_LT(inc->bytes_stored * 10, full->bytes_stored);
  EXPECT_TRUE(running_untouched(p.pid()));

  // Round 2, then an incremental freeze.
  ASSERT_EQ(::kill(p.pid(), SIGUSR2), 0);
  ASSERT_TRUE(wait_for_line(p, "WROTE 2")) << p.output();
  opt.mode = dump::CaptureMode::kFreeze;
  auto frozen = dump::capture(p.pid(), *store, opt);
  ASSERT_TRUE(frozen.ok()) << frozen.error().to_string();
  EXPECT_EQ(frozen->parent, inc->snapshot);
  EXPECT_LT(frozen->pages, 200u);
  p.reap_frozen();

  auto melted = restore::melt(*store, "dp", restore::MeltOptions{});
  ASSERT_TRUE(melted.ok()) << melted.error().to_string();
  EXPECT_EQ(melted->snapshot, frozen->snapshot);
  // The melted process is our child: it checks all 4096 pages itself.
  ASSERT_EQ(::kill(p.pid(), SIGUSR1), 0);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_NE(p.output().find("PASS dirty_pages"), std::string::npos) << p.output();
}

// Between snapshots the process drops pages (MADV_DONTNEED), unmaps the end of
// its buffer and maps a new area: the incremental snapshot must zero the
// first, drop the second and copy the third whole.
TEST(Incremental, FollowsUnmapRemapAndDontneed) {
  TempDir home, work;
  Program p(std::string(FROST_PROGRAMS_DIR) + "/st_dirty_pages", work.path() / "out");
  ASSERT_TRUE(p.wait_ready()) << p.output();
  auto store = open_store(home.path());
  ASSERT_NE(store, nullptr);
  std::unique_ptr<dump::DirtyTracker> tracker;
  dump::CaptureOptions opt;
  opt.name = "dp";
  opt.tracker = &tracker;
  ASSERT_TRUE(dump::capture(p.pid(), *store, opt).ok());

  ASSERT_EQ(::kill(p.pid(), SIGWINCH), 0);
  ASSERT_TRUE(wait_for_line(p, "RESHAPED")) << p.output();
  auto inc = dump::capture(p.pid(), *store, opt);
  ASSERT_TRUE(inc.ok()) << inc.error().to_string();
  EXPECT_NE(inc->parent, 0u);
  EXPECT_GE(inc->pages, 256u);  // the new area, whole
  EXPECT_LT(inc->pages, 400u);

  ASSERT_EQ(::kill(p.pid(), SIGUSR2), 0);
  ASSERT_TRUE(wait_for_line(p, "WROTE 1")) << p.output();
  opt.mode = dump::CaptureMode::kFreeze;
  auto frozen = dump::capture(p.pid(), *store, opt);
  ASSERT_TRUE(frozen.ok()) << frozen.error().to_string();
  EXPECT_LT(frozen->pages, 200u);
  p.reap_frozen();

  auto melted = restore::melt(*store, "dp", restore::MeltOptions{});
  ASSERT_TRUE(melted.ok()) << melted.error().to_string();
  ASSERT_EQ(::kill(p.pid(), SIGUSR1), 0);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_NE(p.output().find("PASS dirty_pages"), std::string::npos) << p.output();
}

}  // namespace
}  // namespace frost::testing
