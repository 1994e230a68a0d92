#include "cli/text_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

namespace frost::cli {

std::string format_bytes(uint64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

namespace {

std::string format_time(uint64_t ns, bool utc, const char* pattern) {
  time_t secs = static_cast<time_t>(ns / 1000000000ull);
  struct tm tm {};
  if ((utc ? gmtime_r(&secs, &tm) : localtime_r(&secs, &tm)) == nullptr) return "?";
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, pattern, &tm);
  return std::string(buf, n);
}

}  // namespace

std::string format_local_time(uint64_t ns) { return format_time(ns, false, "%Y-%m-%d %H:%M:%S"); }

std::string format_utc_time(uint64_t ns) { return format_time(ns, true, "%Y-%m-%dT%H:%M:%SZ"); }

std::string format_percent(double fraction) { return fmt::format("{:.1f}%", fraction * 100); }

std::string Table::render(const std::string& indent) const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size());
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line = indent;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - row[c].size() + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out += line + "\n";
  }
  return out;
}

}  // namespace frost::cli
