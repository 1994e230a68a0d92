// The `frost` command's exit statuses, also listed in `frost --help`.
#pragma once

namespace frost::cli {

enum ExitCode : int {
  kExitOk = 0,       // done; for fsck: the store is clean
  kExitDamage = 1,   // fsck found damage (the report names it)
  kExitFailure = 2,  // the command failed: the store could not be opened, an I/O error, ...
  kExitUsage = 64,   // bad arguments (EX_USAGE)
};

inline constexpr const char* kExitCodeHelp =
    "Exit status: 0 success (fsck: clean), 1 fsck found damage, 2 failure "
    "(e.g. the store cannot be opened), 64 bad arguments.\n"
    "Errors are one line on stderr: \"frost: <what failed>\".\n"
    "The store is $FROST_HOME/store (FROST_HOME defaults to /var/lib/frost).";

}  // namespace frost::cli
