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

namespace frost::testing {
namespace {

std::string status_line(pid_t pid, const std::string& key) {
  std::string s = slurp("/proc/" + std::to_string(pid) + "/status");
  size_t at = s.find(key + ":");
  if (at == std::string::npos) return "";
  return s.substr(at, s.find('\n', at) - at);
}

// A process of another user comes back as that user: frost (root) drops to
// the image's credentials, never the other way round.
TEST(FreezeMelt, CredentialsOfAnotherUser) {
  TempDir home, work;
  fs::permissions(work.path(), fs::perms::all);
  Program p({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             std::string(FROST_PROGRAMS_DIR) + "/st_blocked_read"},
            work.path() / "out");
  ASSERT_TRUE(p.wait_ready()) << p.output();
  std::string uid = status_line(p.pid(), "Uid"), gid = status_line(p.pid(), "Gid");
  std::string caps = status_line(p.pid(), "CapEff"), groups = status_line(p.pid(), "Groups");
  ASSERT_EQ(frost({"freeze", std::to_string(p.pid()), "--name", "nobody"}, home.path()).exit_code, 0);
  p.reap_frozen();
  Outcome m = frost({"melt", "nobody"}, home.path());
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_EQ(status_line(p.pid(), "Uid"), uid);
  EXPECT_EQ(status_line(p.pid(), "Gid"), gid);
  EXPECT_EQ(status_line(p.pid(), "CapEff"), caps);
  EXPECT_EQ(status_line(p.pid(), "Groups"), groups);
  ASSERT_EQ(::kill(p.pid(), SIGUSR1), 0);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

TEST(FreezeMelt, RmRemovesTheImage) {
  TempDir home, work;
  Program p(program_path("blocked_read"), work.path() / "out");
  ASSERT_TRUE(p.wait_ready());
  ASSERT_EQ(frost({"freeze", std::to_string(p.pid()), "--name", "gone"}, home.path()).exit_code, 0);
  p.reap_frozen();
  EXPECT_NE(frost({"ls"}, home.path()).out.find("gone"), std::string::npos);
  Outcome r = frost({"rm", "gone"}, home.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(frost({"ls"}, home.path()).out.find("gone"), std::string::npos);
  expect_one_line_error(frost({"melt", "gone"}, home.path()), "no image named 'gone'");
  expect_one_line_error(frost({"rm", "gone"}, home.path()), "no image named 'gone'");
}

}  // namespace
}  // namespace frost::testing
