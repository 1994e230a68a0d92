// Subcommands that act on processes: freeze, snapshot, melt, rm.
#pragma once

#include "cli/command.h"

namespace frost::cli {

void add_freeze_command(CommandSet& set);
void add_snapshot_command(CommandSet& set);
void add_melt_command(CommandSet& set);
void add_rm_command(CommandSet& set);

}  // namespace frost::cli
