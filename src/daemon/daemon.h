// frostd's run loop: the control socket, a thread per request, the timer
// thread for periodic snapshots, and a clean stop on SIGTERM/SIGINT.
#pragma once

#include <string>

#include "common/result.h"

namespace frost::daemon {

struct DaemonOptions {
  std::string home;
  bool recover = false;  // melt every registered process that is gone, before serving
};

// Runs until SIGTERM or SIGINT. Fails at once when the store is held by
// another frostd or frost command, or another daemon answers on the socket.
Status run_daemon(const DaemonOptions& options);

// One line on stderr, with a timestamp: frostd's log.
void daemon_log(const std::string& line);

}  // namespace frost::daemon
