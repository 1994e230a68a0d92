// Helpers for the CLI's human output: sizes, times, ratios and aligned tables.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace frost::cli {

// "512 B", "4.0 KiB", "1.5 MiB", ...
std::string format_bytes(uint64_t bytes);
// Local time "2025-01-31 14:03:59" from nanoseconds since the epoch (CLOCK_REALTIME).
std::string format_local_time(uint64_t ns);
// UTC "2025-01-31T13:03:59Z", for JSON.
std::string format_utc_time(uint64_t ns);
// "87.5%" from a fraction.
std::string format_percent(double fraction);

// Rows of cells printed in columns, left-aligned, two spaces apart.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Every row as one line, each prefixed by indent.
  std::string render(const std::string& indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace frost::cli
