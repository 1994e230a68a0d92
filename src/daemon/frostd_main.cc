// frostd: the checkpoint daemon (src/daemon/daemon.h).
#include <CLI/CLI.hpp>

#include "cli/frost_home.h"
#include "daemon/daemon.h"

int main(int argc, char** argv) {
  CLI::App app("frostd: keeps persistent processes' snapshots in $FROST_HOME/store and answers frost on $FROST_HOME/frostd.sock",
               "frostd");
  frost::daemon::DaemonOptions options;
  app.add_flag("--recover", options.recover, "first melt every persistent process whose process is gone");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  options.home = frost::cli::frost_home();
  frost::Status st = frost::daemon::run_daemon(options);
  if (!st.ok()) {
    frost::daemon::daemon_log(st.error().to_string());
    return 2;
  }
  return 0;
}
