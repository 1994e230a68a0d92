// Where a request goes: to frostd when it answers on $FROST_HOME/frostd.sock,
// else to the same service run here on the store directly (no timers, full
// snapshots, eager melts). Either way the result has the same shape.
#pragma once

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/result.h"
#include "dump/progress.h"

namespace frost::cli {

Result<nlohmann::json> execute(const nlohmann::json& request, const ProgressFn& progress = {});

// Whether frostd answers now.
bool daemon_running();

}  // namespace frost::cli
