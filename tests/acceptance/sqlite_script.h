// The sqlite3 workload of the acceptance tests: a script that fills an
// in-memory table with slow INSERTs (each row's value is a linear
// congruential generator run 20000 steps in a recursive CTE, ~10 ms of sqlite
// work), then queries it; and what those queries print, computed here
// independently of sqlite.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace frost::acceptance {

std::string sqlite_fill_script(int rows);
std::string sqlite_expected_output(int rows);

// The file offset of pid's fd (its fdinfo "pos:"): how far it has read.
std::optional<int64_t> fd_offset(pid_t pid, int fd);

}  // namespace frost::acceptance
