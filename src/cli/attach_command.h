// `frost attach NAME`: connects this terminal to the one frostd holds for a
// process it melted after its own terminal was gone (a shell in a tmux pane
// or an ssh login that died with the machine). Like a detached screen or
// tmux session: keys go to the process, its output comes here, the window
// size follows this terminal's; Ctrl-] detaches and the process runs on.
#pragma once

#include "cli/command.h"

namespace frost::cli {

void add_attach_command(CommandSet& set);

}  // namespace frost::cli
