#include "sqlite_script.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace frost::acceptance {
namespace {

constexpr int kRounds = 20000;

std::string lcg_sql(int row) {
  return "(WITH RECURSIVE c(n, a) AS (SELECT 0, " + std::to_string(row) +
         " UNION ALL SELECT n + 1, (a * 1103515245 + 12345) % 2147483648 FROM c WHERE n < " +
         std::to_string(kRounds) + ") SELECT a FROM c WHERE n = " + std::to_string(kRounds) + ")";
}

}  // namespace

std::string sqlite_fill_script(int rows) {
  std::ostringstream s;
  s << "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);\n";
  for (int row = 1; row <= rows; ++row) s << "INSERT INTO t VALUES(" << row << ", " << lcg_sql(row) << ");\n";
  s << "SELECT count(*), sum(v), sum(v % 1000 * id) FROM t;\n";
  s << "SELECT 'min', min(v), 'max', max(v) FROM t;\n";
  return s.str();
}

std::string sqlite_expected_output(int rows) {
  int64_t sum = 0, weighted = 0, lo = INT64_MAX, hi = INT64_MIN;
  for (int64_t row = 1; row <= rows; ++row) {
    int64_t a = row;
    for (int i = 0; i < kRounds; ++i) a = (a * 1103515245 + 12345) % 2147483648;
    sum += a;
    weighted += a % 1000 * row;
    lo = std::min(lo, a);
    hi = std::max(hi, a);
  }
  std::ostringstream s;
  s << rows << "|" << sum << "|" << weighted << "\n" << "min|" << lo << "|max|" << hi << "\n";
  return s.str();
}

std::optional<int64_t> fd_offset(pid_t pid, int fd) {
  std::ifstream in(std::filesystem::path("/proc") / std::to_string(pid) / "fdinfo" / std::to_string(fd));
  std::string key;
  int64_t value = 0;
  while (in >> key >> value) {
    if (key == "pos:") return value;
  }
  return std::nullopt;
}

}  // namespace frost::acceptance
