#include "cli/persist_commands.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <memory>

#include <fmt/format.h>

#include "cli/daemon_route.h"
#include "cli/exit_code.h"
#include "cli/frost_home.h"
#include "cli/progress_line.h"
#include "cli/run_process.h"
#include "cli/text_format.h"
#include "daemon/snapshot_log.h"

namespace frost::cli {
namespace {

using nlohmann::json;

// --json prints the result as it came; people get one line per thing.
void print_json(const json& j) { fmt::print("{}\n", j.dump()); }

std::string describe_snapshot(const json& r) {
  std::string s = fmt::format("snapshot {}: {} pages, {} stored, paused {:.1f} ms", r.value("snapshot", uint64_t(0)),
                              r.value("pages", uint64_t(0)), format_bytes(r.value("bytes_stored", uint64_t(0))),
                              r.value("pause_ms", 0.0));
  if (r.value("parent", uint64_t(0)) != 0) s += fmt::format(" (incremental on {})", r.value("parent", uint64_t(0)));
  if (r.contains("note")) s += "; " + r["note"].get<std::string>();
  return s;
}

std::string every_text(uint64_t ms) {
  if (ms == 0) return "no periodic snapshots";
  if (ms % 1000 == 0) return fmt::format("every {}s", ms / 1000);
  return fmt::format("every {}ms", ms);
}

struct PersistArgs {
  std::string name;
  std::string every = "5s";
  std::string policy = "force";
};

json persist_request(pid_t pid, const PersistArgs& args, uint64_t every_ms, const std::vector<std::string>& command) {
  json req{{"op", "persist"}, {"pid", pid}, {"policy", args.policy}, {"every_ms", every_ms}, {"command", command}};
  if (!args.name.empty()) req["name"] = args.name;
  return req;
}

void print_persisted(const Context& ctx, const json& r) {
  if (ctx.json) return print_json(r);
  fmt::print("{}: pid {} is persistent ({} snapshots {}{})\n  {}\n", r.value("name", ""), r.value("pid", 0),
             r.value("policy", ""), every_text(r.value("every_ms", uint64_t(0))),
             r.value("daemon", false) ? "" : "; frostd is not running, so only when asked", describe_snapshot(r));
}

// --- run / persist -------------------------------------------------------------------

struct RunArgs : PersistArgs {
  std::string output;
  std::vector<std::string> command;
};

std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Result<int> run_run(const Context& ctx, const RunArgs& args) {
  FROST_ASSIGN(uint64_t every_ms, parse_interval_ms(args.every));
  if (args.command.empty()) return Error::invalid("no command given (frost run [options] -- COMMAND ARGS...)");
  std::string home = frost_home();
  FROST_TRY(ensure_home(home));
  std::string name = args.name.empty() ? base_name(args.command[0]) : args.name;
  std::string output = args.output;
  if (output.empty()) {
    std::string dir = home + "/output";
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Error::io("cannot create " + dir);
    output = dir + "/" + name + ".out";
  }
  FROST_ASSIGN(pid_t pid, start_process(args.command, output));
  PersistArgs named = args;
  named.name = name;
  Result<json> r = execute(persist_request(pid, named, every_ms, args.command));
  if (!r.ok()) {
    // `run` starts a persistent process or nothing.
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return r.error().context(fmt::format("'{}' was started as pid {} and ended again", args.command[0], pid));
  }
  (*r)["output"] = output;
  print_persisted(ctx, *r);
  if (!ctx.json) fmt::print("  output: {}\n", output);
  return kExitOk;
}

Result<int> run_persist(const Context& ctx, pid_t pid, const PersistArgs& args) {
  FROST_ASSIGN(uint64_t every_ms, parse_interval_ms(args.every));
  FROST_ASSIGN(json r, execute(persist_request(pid, args, every_ms, {})));
  print_persisted(ctx, r);
  return kExitOk;
}

void add_persist_options(CLI::App* sub, PersistArgs& args) {
  sub->add_option("--name", args.name, "name of its snapshots (default: the command's name)");
  sub->add_option("--every", args.every, "periodic snapshot interval (5s, 500ms, 2m; off: none)")->capture_default_str();
  sub->add_option("--policy", args.policy, "weak: only while idle; force: pre-copy, then a short stop")
      ->check(CLI::IsMember({"weak", "force"}))
      ->capture_default_str();
}

// --- unpersist / log ---------------------------------------------------------------

Result<int> run_unpersist(const Context& ctx, const std::string& name) {
  FROST_ASSIGN(json r, execute(json{{"op", "unpersist"}, {"name", name}}));
  if (ctx.json) print_json(r);
  else fmt::print("{}: no longer persistent; pid {} runs on untracked, its images stay (frost rm {})\n", name,
                  r.value("pid", 0), name);
  return kExitOk;
}

Result<int> run_log(const Context& ctx, const std::string& name) {
  daemon::SnapshotLog log(frost_home());
  FROST_ASSIGN(std::vector<daemon::LogRecord> records, log.read(name));
  if (records.empty()) return Error::not_found(fmt::format("no log for '{}' (see frost ls)", name));
  if (ctx.json) {
    json out = json::array();
    for (const daemon::LogRecord& r : records) {
      json j{{"time", format_utc_time(r.time_ns)}, {"time_ns", r.time_ns}, {"kind", r.kind}};
      if (r.snapshot != 0) {
        j.update(json{{"snapshot", r.snapshot}, {"parent", r.parent}, {"incremental", r.parent != 0},
                      {"pages", r.pages}, {"bytes", r.bytes}, {"pause_ms", r.pause_ms},
                      {"precopy_rounds", r.precopy_rounds}});
      }
      if (!r.note.empty()) j["note"] = r.note;
      out.push_back(j);
    }
    print_json(json{{"name", name}, {"records", out}});
    return kExitOk;
  }
  Table t({"TIME", "KIND", "SNAPSHOT", "PAGES", "BYTES", "PAUSE", "NOTE"});
  for (const daemon::LogRecord& r : records) {
    if (r.snapshot == 0) {
      t.add({format_local_time(r.time_ns), r.kind, "-", "-", "-", "-", r.note});
      continue;
    }
    std::string snap = r.parent != 0 ? fmt::format("{} (on {})", r.snapshot, r.parent) : fmt::format("{} (full)", r.snapshot);
    t.add({format_local_time(r.time_ns), r.kind, snap, std::to_string(r.pages), format_bytes(r.bytes),
           fmt::format("{:.1f} ms", r.pause_ms), r.note});
  }
  fmt::print("{}", t.render());
  return kExitOk;
}

// --- recover / hibernate / resume --------------------------------------------------

// Prints what a batch did; fails (after printing) when any process failed.
Result<int> report_batch(const Context& ctx, const json& r, const char* done_key, const char* verb) {
  if (ctx.json) {
    print_json(r);
  } else {
    for (const json& p : r.at(done_key)) {
      std::string line = fmt::format("{} {}: pid {}", verb, p.value("name", ""), p.value("pid", 0));
      if (p.contains("snapshot")) line += fmt::format(", snapshot {}", p.value("snapshot", uint64_t(0)));
      if (p.contains("note")) line += "; " + p["note"].get<std::string>();
      fmt::print("{}\n", line);
    }
    if (r.contains("running")) {
      for (const json& n : r["running"]) fmt::print("{}: still running\n", n.get<std::string>());
    }
    for (const json& p : r.at("failed")) {
      print_error(fmt::format("{}: {}", p.value("name", ""), p.value("error", "")));
    }
    if (r.at(done_key).empty() && r.at("failed").empty()) fmt::print("nothing to do\n");
  }
  return r.at("failed").empty() ? kExitOk : kExitFailure;
}

Result<int> run_batch(const Context& ctx, const char* op, const char* done_key, const char* verb) {
  FROST_ASSIGN(json r, execute(json{{"op", op}}));
  return report_batch(ctx, r, done_key, verb);
}

}  // namespace

void add_run_command(CommandSet& set) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* sub = set.add("run", "start a command as a persistent process",
                          [args](const Context& ctx) { return run_run(ctx, *args); });
  add_persist_options(sub, *args);
  sub->add_option("--output", args->output, "file for its stdout and stderr (default: $FROST_HOME/output/NAME.out)");
  sub->add_option("command", args->command, "the command and its arguments (after --)")->required();
}

void add_persist_command(CommandSet& set) {
  auto args = std::make_shared<PersistArgs>();
  auto pid = std::make_shared<pid_t>(0);
  CLI::App* sub = set.add("persist", "make a running process persistent",
                          [args, pid](const Context& ctx) { return run_persist(ctx, *pid, *args); });
  sub->add_option("pid", *pid, "the process")->required()->check(CLI::PositiveNumber);
  add_persist_options(sub, *args);
}

void add_unpersist_command(CommandSet& set) {
  auto name = std::make_shared<std::string>();
  CLI::App* sub = set.add("unpersist", "stop snapshotting a persistent process (it runs on)",
                          [name](const Context& ctx) { return run_unpersist(ctx, *name); });
  sub->add_option("name", *name, "the persistent process")->required();
}

void add_log_command(CommandSet& set) {
  auto name = std::make_shared<std::string>();
  CLI::App* sub = set.add("log", "a persistent process's snapshots: time, kind, pages, bytes, pause; skips with why",
                          [name](const Context& ctx) { return run_log(ctx, *name); });
  sub->add_option("name", *name, "the persistent process")->required();
}

void add_recover_command(CommandSet& set) {
  set.add("recover", "after a crash: melt every persistent process whose process is gone",
          [](const Context& ctx) { return run_batch(ctx, "recover", "recovered", "recovered"); });
}

void add_hibernate_command(CommandSet& set) {
  set.add("hibernate", "freeze every persistent process",
          [](const Context& ctx) { return run_batch(ctx, "hibernate", "frozen", "froze"); });
}

void add_resume_command(CommandSet& set) {
  set.add("resume", "melt every frozen persistent process",
          [](const Context& ctx) { return run_batch(ctx, "resume", "melted", "melted"); });
}

}  // namespace frost::cli
