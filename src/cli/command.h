// How subcommands plug into `frost`. A command is a function taking a Context
// and returning an exit status (or an Error, which becomes one line on stderr
// and kExitFailure). Adding one is a register function that calls
// CommandSet::add, plus one line in main.cc calling it:
//
//   void add_gc_command(CommandSet& set) {
//     auto* sub = set.add("gc", "run the cleaner now", run_gc);
//     sub->add_flag(...);   // the command's own options, if any
//   }
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/store.h"

namespace frost::cli {

// Whether a command only reads the store (it may run next to a writer) or changes it.
enum class StoreAccess { kRead, kWrite };

class Context {
 public:
  // True when --json was given: one JSON object on stdout, nothing else there.
  bool json = false;

  // Opens $FROST_HOME/store, creating the directory (0700) and the store (0600)
  // on first use. kRead opens an existing store read-only: no recovery writes,
  // no lock, so it works while another process writes.
  Result<std::unique_ptr<store::Store>> open_store(StoreAccess access) const;
  // The store file this context opens.
  std::string store_path() const;
};

using CommandFn = std::function<Result<int>(const Context&)>;

class CommandSet {
 public:
  explicit CommandSet(CLI::App& app) : app_(app) {}

  // Declares a subcommand with a --json flag; returns it so the caller can add
  // options bound to variables that outlive the parse (e.g. a shared_ptr
  // captured by run).
  CLI::App* add(const std::string& name, const std::string& summary, CommandFn run);

  // Runs the subcommand the parsed command line selected; kExitUsage if none.
  int dispatch();

 private:
  struct Entry {
    CLI::App* sub;
    CommandFn run;
  };
  CLI::App& app_;
  std::vector<Entry> entries_;
  Context context_;
};

// Prints "frost: <message>" on stderr as one line (newlines are flattened).
void print_error(const std::string& message);

}  // namespace frost::cli
