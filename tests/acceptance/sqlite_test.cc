// sqlite3 filling an in-memory database from a script on its stdin, frozen
// part way through the script and melted: the database (only in its memory)
// and its place in the script (stdio buffer and file offset) must survive,
// so the final queries print what the whole script computes.
#include <sys/wait.h>

#include <cstdint>
#include <fstream>
#include <sstream>

#include "harness.h"

namespace frost::acceptance {
namespace {

constexpr int kRows = 300;
// Each row's value is a linear congruential generator run this many steps in
// a recursive CTE: ~10 ms of sqlite work per INSERT, so the script takes seconds.
constexpr int kRounds = 20000;

std::string lcg_sql(int row) {
  return "(WITH RECURSIVE c(n, a) AS (SELECT 0, " + std::to_string(row) +
         " UNION ALL SELECT n + 1, (a * 1103515245 + 12345) % 2147483648 FROM c WHERE n < " +
         std::to_string(kRounds) + ") SELECT a FROM c WHERE n = " + std::to_string(kRounds) + ")";
}

std::string fill_script() {
  std::ostringstream s;
  s << "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);\n";
  for (int row = 1; row <= kRows; ++row) s << "INSERT INTO t VALUES(" << row << ", " << lcg_sql(row) << ");\n";
  s << "SELECT count(*), sum(v), sum(v % 1000 * id) FROM t;\n";
  s << "SELECT 'min', min(v), 'max', max(v) FROM t;\n";
  return s.str();
}

// What the script's queries print, computed here independently of sqlite.
std::string expected_output() {
  int64_t sum = 0, weighted = 0, lo = INT64_MAX, hi = INT64_MIN;
  for (int64_t row = 1; row <= kRows; ++row) {
    int64_t a = row;
    for (int i = 0; i < kRounds; ++i) a = (a * 1103515245 + 12345) % 2147483648;
    sum += a;
    weighted += a % 1000 * row;
    lo = std::min(lo, a);
    hi = std::max(hi, a);
  }
  std::ostringstream s;
  s << kRows << "|" << sum << "|" << weighted << "\n" << "min|" << lo << "|max|" << hi << "\n";
  return s.str();
}

// How far sqlite3 has read its script: the file offset of its stdin.
std::optional<int64_t> stdin_offset(pid_t pid) {
  std::ifstream in(fs::path("/proc") / std::to_string(pid) / "fdinfo" / "0");
  std::string key;
  int64_t value = 0;
  while (in >> key >> value) {
    if (key == "pos:") return value;
  }
  return std::nullopt;
}

class SqliteTest : public AcceptanceTest {};

TEST_F(SqliteTest, InMemoryDatabaseFrozenMidScriptGivesTheFullResult) {
  std::string script = fill_script();
  write_file(dir() / "fill.sql", script);
  const int64_t size = int64_t(script.size());
  // HOME points here so no ~/.sqliterc changes the output format.
  pid_t pid = start({"/usr/bin/sqlite3", ":memory:"}, {dir() / "fill.sql", dir() / "out.txt", dir() / "err.txt"},
                    {"HOME=" + dir().string()});

  // stdio reads the script in blocks: once a third is read, most is still to run.
  int64_t offset = 0;
  ASSERT_TRUE(poll_until([&] {
    offset = stdin_offset(pid).value_or(-1);
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
  EXPECT_EQ(slurp(dir() / "out.txt"), expected_output()) << "frozen at script offset " << offset << " of " << size;
  EXPECT_EQ(slurp(dir() / "err.txt"), "");
}

}  // namespace
}  // namespace frost::acceptance
