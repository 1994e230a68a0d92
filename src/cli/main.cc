// `frost`: parses the command line and runs one subcommand.
#include <CLI/CLI.hpp>

#include "cli/attach_command.h"
#include "cli/command.h"
#include "cli/exit_code.h"
#include "cli/persist_commands.h"
#include "cli/process_commands.h"
#include "cli/store_commands.h"

namespace {

// Every subcommand, one line each, in the order --help lists them.
void register_commands(frost::cli::CommandSet& set) {
  frost::cli::add_freeze_command(set);
  frost::cli::add_snapshot_command(set);
  frost::cli::add_melt_command(set);
  frost::cli::add_rm_command(set);
  frost::cli::add_run_command(set);
  frost::cli::add_persist_command(set);
  frost::cli::add_unpersist_command(set);
  frost::cli::add_log_command(set);
  frost::cli::add_recover_command(set);
  frost::cli::add_attach_command(set);
  frost::cli::add_hibernate_command(set);
  frost::cli::add_resume_command(set);
  frost::cli::add_ls_command(set);
  frost::cli::add_stats_command(set);
  frost::cli::add_fsck_command(set);
  frost::cli::add_gc_command(set);
}

// CLI11 reports a command it does not know as an unexpected extra argument.
std::string describe_parse_error(const CLI::App& app, const CLI::ParseError& e) {
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && app.get_subcommands().empty() &&
      !app.remaining().empty()) {
    return "unknown command '" + app.remaining().front() + "' (see frost --help)";
  }
  std::string where;
  for (const CLI::App* sub : app.get_subcommands()) where = sub->get_name() + ": ";
  return where + e.what() + " (see frost --help)";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace frost::cli;
  CLI::App app("frost: persistent Linux processes, kept in a log-structured store", "frost");
  app.footer(kExitCodeHelp);
  app.require_subcommand(0, 1);
  CommandSet commands(app);
  register_commands(commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    print_error(describe_parse_error(app, e));
    return kExitUsage;
  }
  return commands.dispatch();
}
