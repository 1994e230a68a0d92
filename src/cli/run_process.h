// `frost run`'s first half: starting the command as a process of its own
// (its own session, stdin from /dev/null, stdout and stderr to a file, no
// other fds) and knowing whether exec worked before anything is registered.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"

namespace frost::cli {

// The process runs `argv` (found on PATH) once this returns. A command that
// cannot be executed is an error naming it, and leaves no process behind.
Result<pid_t> start_process(const std::vector<std::string>& argv, const std::string& output);

// "5s", "500ms", "2m", "1h", or a plain number of seconds; "0" or "off": never.
Result<uint64_t> parse_interval_ms(const std::string& text);

}  // namespace frost::cli
