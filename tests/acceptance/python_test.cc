// A python3 computation frozen part way and melted: its output file must end
// up byte for byte what an uninterrupted run writes.
#include <sys/wait.h>

#include "harness.h"

namespace frost::acceptance {
namespace {

constexpr int kSteps = 150;
constexpr size_t kFreezeAfterLines = 30;

class PythonTest : public AcceptanceTest {
 protected:
  pid_t start_python(const std::string& tag) {
    fs::path script = fs::path(FROST_ACCEPTANCE_DIR) / "progress.py";
    return start({"/usr/bin/python3", "-I", script.string(), std::to_string(kSteps)},
                 {"/dev/null", dir() / (tag + ".out"), dir() / (tag + ".err")});
  }

  void expect_clean_exit(pid_t pid, const std::string& tag) {
    std::optional<int> status = wait_exit(pid);
    ASSERT_TRUE(status.has_value()) << tag << " run did not finish";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << tag << " run: " << describe_status(*status) << "\nstderr:\n" << slurp(dir() / (tag + ".err"));
  }
};

TEST_F(PythonTest, FrozenMidComputationFinishesWithIdenticalOutput) {
  // Both runs at once: the output does not depend on timing, and it halves the wait.
  pid_t reference = start_python("reference");
  pid_t subject = start_python("subject");
  fs::path out = dir() / "subject.out";
  ASSERT_TRUE(poll_until([&] { return count_lines(slurp(out)) >= kFreezeAfterLines; }))
      << "the python run never reached " << kFreezeAfterLines << " lines:\n" << slurp(out);

  freeze(subject, "py");
  size_t lines_at_freeze = count_lines(slurp(out));
  ASSERT_LT(lines_at_freeze, size_t(kSteps)) << "froze too late to test anything";
  melt("py", subject);

  expect_clean_exit(subject, "subject");
  expect_clean_exit(reference, "reference");
  std::string want = slurp(dir() / "reference.out");
  ASSERT_EQ(count_lines(want), size_t(kSteps + 1));
  EXPECT_EQ(slurp(out), want) << "frozen after " << lines_at_freeze << " lines";
  EXPECT_EQ(slurp(dir() / "subject.err"), "");
}

}  // namespace
}  // namespace frost::acceptance
