// A pseudo-terminal for a melted process whose terminal is gone: after a
// crash its session's terminal (a tmux pane, an ssh login) died with it.
// frostd keeps the master side, so the process runs as if nobody were
// typing, until `frost attach` connects a user's terminal to it.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace frost::restore {

struct NewTerminal {
  UniqueFd master, slave;
  std::string path;  // /dev/pts/N
};

// A new pty pair; the slave is owned by `owner` (the process's user), as a
// login's terminal is, not by frost. Both ends are close-on-exec in frost.
Result<NewTerminal> open_new_terminal(uid_t owner);

}  // namespace frost::restore
