// One process frozen and melted many times in a row, then asked to check
// itself (tests/programs protocol: READY <pid>, SIGUSR1, PASS <name>): errors
// that one round leaves behind (a lost register, a leaked mapping, a wrong
// offset) add up and show here.
#include <signal.h>
#include <sys/wait.h>

#include <thread>

#include "harness.h"

namespace frost::acceptance {
namespace {

constexpr int kRounds = 20;

struct Program {
  const char* name;  // as in its PASS line
  const char* path;
};

// Names the program in test names and messages (ctest lists GetParam()).
void PrintTo(const Program& p, std::ostream* os) { *os << p.name; }

class RepeatTest : public AcceptanceTest, public ::testing::WithParamInterface<Program> {};

TEST_P(RepeatTest, FrozenAndMeltedTwentyTimesStillPasses) {
  const Program& program = GetParam();
  fs::path out = dir() / "out.txt";
  pid_t pid = start({program.path}, {"/dev/null", out, dir() / "err.txt"});
  std::string ready = "READY " + std::to_string(pid) + "\n";
  ASSERT_TRUE(poll_until([&] { return slurp(out) == ready; })) << "no READY line: " << slurp(out);

  int64_t last_snapshot = 0;
  for (int round = 1; round <= kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // A little run time, varied, so the freezes catch it in different states.
    std::this_thread::sleep_for(milliseconds(10 * (round % 4)));
    int64_t snapshot = freeze(pid, program.name);
    EXPECT_GT(snapshot, last_snapshot);
    last_snapshot = snapshot;
    ASSERT_NO_FATAL_FAILURE(melt(program.name, pid));
    ASSERT_FALSE(HasFailure()) << "stopping after the first failed round";
  }

  ASSERT_EQ(::kill(pid, SIGUSR1), 0);
  std::optional<int> status = wait_exit(pid);
  ASSERT_TRUE(status.has_value()) << "no exit after SIGUSR1; output: " << slurp(out);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_status(*status);
  EXPECT_EQ(slurp(out), ready + "PASS " + program.name + "\n");
  EXPECT_EQ(slurp(dir() / "err.txt"), "");
}

INSTANTIATE_TEST_SUITE_P(Programs, RepeatTest,
                         ::testing::Values(Program{"mt_avx", FROST_ST_MT_AVX_PATH},
                                           Program{"blocked_read", FROST_ST_BLOCKED_READ_PATH}),
                         [](const ::testing::TestParamInfo<Program>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace frost::acceptance
