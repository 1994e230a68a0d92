#include "cli/command.h"

#include <fmt/format.h>

#include "cli/exit_code.h"
#include "cli/frost_home.h"

namespace frost::cli {

std::string Context::store_path() const { return cli::store_path(frost_home()); }

Result<std::unique_ptr<store::Store>> Context::open_store(StoreAccess access) const {
  std::string home = frost_home();
  FROST_TRY(ensure_home(home));
  std::string path = cli::store_path(home);
  store::StoreOptions options;
  auto opened = [&]() {
    if (access == StoreAccess::kRead && options.env->exists(path)) {
      options.read_only = true;
      return store::Store::open(path, options);
    }
    return store::Store::open_or_create(path, options);
  }();
  if (!opened.ok()) return opened.error().context("cannot open store " + path);
  return opened;
}

CLI::App* CommandSet::add(const std::string& name, const std::string& summary, CommandFn run) {
  CLI::App* sub = app_.add_subcommand(name, summary);
  sub->add_flag("--json", context_.json, "print one JSON object on stdout instead of text");
  entries_.push_back({sub, std::move(run)});
  return sub;
}

int CommandSet::dispatch() {
  for (const auto& entry : entries_) {
    if (!entry.sub->parsed()) continue;
    Result<int> status = entry.run(context_);
    if (status.ok()) return *status;
    print_error(status.error().to_string());
    return kExitFailure;
  }
  print_error("no command given (see frost --help)");
  return kExitUsage;
}

void print_error(const std::string& message) {
  std::string line = message;
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  fmt::print(stderr, "frost: {}\n", line);
}

}  // namespace frost::cli
