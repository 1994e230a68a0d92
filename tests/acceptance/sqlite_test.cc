// sqlite3 filling an in-memory database from a script on its stdin, frozen
// part way through the script and melted: the database (only in its memory)
// and its place in the script (stdio buffer and file offset) must survive,
// so the final queries print what the whole script computes.
#include <sys/wait.h>

#include "harness.h"
#include "sqlite_script.h"

namespace frost::acceptance {
namespace {

constexpr int kRows = 300;

class SqliteTest : public AcceptanceTest {};

TEST_F(SqliteTest, InMemoryDatabaseFrozenMidScriptGivesTheFullResult) {
  std::string script = sqlite_fill_script(kRows);
  write_file(dir() / "fill.sql", script);
  const int64_t size = int64_t(script.size());
  // HOME points here so no ~/.sqliterc changes the output format.
  pid_t pid = start({"/usr/bin/sqlite3", ":memory:"}, {dir() / "fill.sql", dir() / "out.txt", dir() / "err.txt"},
                    {"HOME=" + dir().string()});

  // stdio reads the script in blocks: once a third is read, most is still to run.
  int64_t offset = 0;
  ASSERT_TRUE(poll_until([&] {
    offset = fd_offset(pid, 0).value_or(-1);
    return offset < 0 || offset >= size / 3;
  })) << "sqlite3 never read a third of its script";
  ASSERT_GE(offset, 0) << "sqlite3 ended early: " << slurp(dir() / "err.txt");
  ASSERT_LT(offset, size) << "sqlite3 had read the whole script before the freeze";

  freeze(pid, "sqlite");
  EXPECT_EQ(slurp(dir() / "out.txt"), "") << "the queries ran before the freeze";
  melt("sqlite", pid);

  std::optional<int> status = wait_exit(pid);
  ASSERT_TRUE(status.has_value()) << "melted sqlite3 did not finish the script";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_status(*status);
  EXPECT_EQ(slurp(dir() / "out.txt"), sqlite_expected_output(kRows)) << "frozen at script offset " << offset << " of " << size;
  EXPECT_EQ(slurp(dir() / "err.txt"), "");
}

}  // namespace
}  // namespace frost::acceptance
