// Subcommands that look after the store itself: fsck, gc, stats, ls.
#pragma once

#include "cli/command.h"

namespace frost::cli {

void add_fsck_command(CommandSet& set);
void add_gc_command(CommandSet& set);
void add_stats_command(CommandSet& set);
void add_ls_command(CommandSet& set);

}  // namespace frost::cli
