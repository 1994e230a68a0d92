// Freeze -> melt -> self-check on every program of tests/programs: each one
// verifies, after the melt, the state it set up before the freeze.
#include <signal.h>

#include <gtest/gtest.h>

#include "harness.h"

namespace frost::testing {
namespace {

std::string program_path(const std::string& name) { return std::string(FROST_PROGRAMS_DIR) + "/st_" + name; }

// Runs one program through `rounds` freeze/melt cycles, then lets it check itself.
void freeze_melt_check(const std::string& name, int rounds = 1) {
  TempDir home, work;
  Program p(program_path(name), work.path() / "out");
  ASSERT_TRUE(p.wait_ready()) << p.output();
  for (int i = 0; i < rounds; ++i) {
    Outcome f = frost({"freeze", std::to_string(p.pid()), "--name", name}, home.path());
    ASSERT_EQ(f.exit_code, 0) << "round " << i << ": " << f.err;
    EXPECT_NE(f.out.find("froze " + name + ": pid " + std::to_string(p.pid())), std::string::npos) << f.out;
    p.reap_frozen();
    ASSERT_EQ(process_state(p.pid()), 0) << "the frozen process is still there";
    Outcome m = frost({"melt", name}, home.path());
    ASSERT_EQ(m.exit_code, 0) << "round " << i << ": " << m.err;
    ASSERT_TRUE(running_untouched(p.pid())) << "state " << process_state(p.pid());
  }
  ASSERT_EQ(::kill(p.pid(), SIGUSR1), 0);
  int status = p.wait_exit();
  std::string out = p.output();
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("PASS " + name), std::string::npos) << out;
}

class SelfCheckingProgram : public ::testing::TestWithParam<std::string> {};

TEST_P(SelfCheckingProgram, SurvivesFreezeAndMelt) { freeze_melt_check(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Programs, SelfCheckingProgram,
                         ::testing::Values("threads_regs", "memory", "signals", "procattrs", "fds",
                                           "blocked_read", "blocked_nanosleep", "mt_avx"),
                         [](const auto& info) { return info.param; });

TEST(FreezeMelt, TwentyRoundsInARow) { freeze_melt_check("threads_regs", 20); }

// `frost snapshot` leaves the process running, and a later melt of that
// snapshot (after the process ended) brings back its state at the snapshot.
TEST(FreezeMelt, SnapshotKeepsTheProcessRunning) {
  TempDir home, work;
  Program p(program_path("signals"), work.path() / "out");
  ASSERT_TRUE(p.wait_ready());
  Outcome s = frost({"snapshot", std::to_string(p.pid()), "--name", "sig"}, home.path());
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_TRUE(running_untouched(p.pid()));
  // By name too: the image records the pid.
  Outcome again = frost({"snapshot", "sig"}, home.path());
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(running_untouched(p.pid()));
  ASSERT_EQ(::kill(p.pid(), SIGUSR1), 0);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

}  // namespace
}  // namespace frost::testing
