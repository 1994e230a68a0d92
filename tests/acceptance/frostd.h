// The built `frostd` serving a test's FROST_HOME: started as our child (its
// stderr, the daemon's log, into a file), ready once it answers a ping on its
// socket, and ended by its PID: crashed (SIGKILL) or stopped (SIGTERM).
// Never left running: the destructor kills what is still there.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "harness.h"

namespace frost::acceptance {

class Frostd {
 public:
  // log_dir gets one frostd-N.err per start.
  Frostd(fs::path home, fs::path log_dir) : home_(std::move(home)), log_dir_(std::move(log_dir)) {}
  ~Frostd();
  Frostd(const Frostd&) = delete;
  Frostd& operator=(const Frostd&) = delete;

  // Starts frostd ARGS and waits until it answers on $FROST_HOME/frostd.sock.
  ::testing::AssertionResult start(const std::vector<std::string>& args = {});
  // SIGKILL, as a crash: the socket file stays behind, the store is left as it was.
  ::testing::AssertionResult crash();
  // SIGTERM: frostd must stop cleanly (exit 0).
  ::testing::AssertionResult stop();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Everything every frostd started here wrote on stderr.
  std::string log() const;

 private:
  fs::path log_path(int n) const { return log_dir_ / ("frostd-" + std::to_string(n) + ".err"); }
  ::testing::AssertionResult end(int sig, bool expect_clean);

  fs::path home_, log_dir_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

}  // namespace frost::acceptance
