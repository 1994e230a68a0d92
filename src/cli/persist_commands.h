// Subcommands for persistent processes: run, persist, unpersist, log,
// recover, hibernate, resume. Each sends one request (daemon/service.h) to
// frostd, or runs it here when no daemon answers.
#pragma once

#include "cli/command.h"

namespace frost::cli {

void add_run_command(CommandSet& set);
void add_persist_command(CommandSet& set);
void add_unpersist_command(CommandSet& set);
void add_log_command(CommandSet& set);
void add_recover_command(CommandSet& set);
void add_hibernate_command(CommandSet& set);
void add_resume_command(CommandSet& set);

}  // namespace frost::cli
