#include "cli/process_commands.h"

#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <charconv>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/exit_code.h"
#include "cli/json_writer.h"
#include "cli/progress_line.h"
#include "dump/capture.h"
#include "image/image_codec.h"
#include "restore/melt.h"

namespace frost::cli {
namespace {

std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", double(b) / (1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.1f} MiB", double(b) / (1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", double(b) / (1ull << 10));
  return fmt::format("{} B", b);
}

std::optional<pid_t> as_pid(const std::string& s) {
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), pid);
  if (ec != std::errc() || end != s.data() + s.size() || pid <= 0) return std::nullopt;
  return pid;
}

// The pid a name's newest image was taken from.
Result<pid_t> pid_of_name(const store::Store& store, const std::string& name) {
  Result<store::SnapshotId> id = store.latest(name);
  if (!id.ok()) return Error::not_found(fmt::format("no process or image named '{}'", name));
  FROST_ASSIGN(std::vector<uint8_t> meta, store.read_meta(*id));
  FROST_ASSIGN(image::ProcessImage img, image::decode(meta));
  return img.pid;
}

// --- freeze / snapshot ------------------------------------------------------------

struct CaptureArgs {
  std::string target;  // PID (or NAME for snapshot)
  std::string name;
};

Result<int> run_capture(const Context& ctx, const CaptureArgs& args, dump::CaptureMode mode) {
  FROST_ASSIGN(auto store, ctx.open_store(StoreAccess::kWrite));
  std::optional<pid_t> pid = as_pid(args.target);
  std::string name = args.name;
  if (!pid) {
    if (mode == dump::CaptureMode::kFreeze) return Error::invalid(fmt::format("'{}' is not a process id", args.target));
    FROST_ASSIGN(pid_t p, pid_of_name(*store, args.target));
    pid = p;
    if (name.empty()) name = args.target;
  }
  const char* verb = mode == dump::CaptureMode::kFreeze ? "freezing" : "snapshotting";
  ProgressLine progress(fmt::format("{} {}", verb, *pid));
  dump::CaptureOptions options{name, mode, progress.callback()};
  Result<dump::CaptureResult> r = dump::capture(*pid, *store, options);
  progress.done();
  if (!r.ok()) return r.error().context(fmt::format("{} process {}", verb, *pid));
  if (ctx.json) {
    JsonWriter j;
    j.begin_object()
        .field("name", r->name)
        .field("pid", int64_t(r->pid))
        .field("snapshot", r->snapshot)
        .field("threads", int64_t(r->threads))
        .field("pages", r->pages)
        .field("bytes_stored", r->bytes_stored)
        .field("seconds", r->seconds)
        .field("frozen", mode == dump::CaptureMode::kFreeze)
        .end_object();
    fmt::print("{}\n", j.str());
  } else {
    fmt::print("{} {}: pid {}, snapshot {}, {} thread{}, {} pages, {} stored, {:.1f} ms\n",
               mode == dump::CaptureMode::kFreeze ? "froze" : "snapshot of", r->name, r->pid, r->snapshot,
               r->threads, r->threads == 1 ? "" : "s", r->pages, human_bytes(r->bytes_stored), r->seconds * 1000);
  }
  return kExitOk;
}

// --- melt ---------------------------------------------------------------------------

struct MeltArgs {
  std::string name;
  uint64_t snapshot = 0;
  bool shell_job = false;
};

// A shell job runs in the foreground of frost's terminal until it ends; then
// the terminal is frost's again and frost exits as the job did.
int wait_shell_job(pid_t pid, const std::optional<struct termios>& modes) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  signal(SIGTTOU, SIG_IGN);
  ::tcsetpgrp(STDIN_FILENO, ::getpgrp());
  if (modes) ::tcsetattr(STDIN_FILENO, TCSADRAIN, &*modes);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kExitFailure;
}

Result<int> run_melt(const Context& ctx, const MeltArgs& args) {
  // Read-only: a melt that fails, even on a damaged store, changes nothing.
  FROST_ASSIGN(auto store, ctx.open_store(StoreAccess::kRead));
  restore::MeltOptions options;
  if (args.snapshot != 0) options.snapshot = args.snapshot;
  // The job gets the terminal modes it had; ours come back when it ends.
  std::optional<struct termios> modes;
  if (args.shell_job) {
    if (::isatty(STDIN_FILENO) != 1) return Error::invalid("--shell-job needs a terminal on standard input");
    options.shell_job_tty = STDIN_FILENO;
    struct termios t {};
    if (::tcgetattr(STDIN_FILENO, &t) == 0) modes = t;
  }
  ProgressLine progress(fmt::format("melting {}", args.name));
  options.progress = progress.callback();
  Result<restore::MeltResult> r = restore::melt(*store, args.name, options);
  progress.done();
  if (!r.ok()) {
    if (modes) ::tcsetattr(STDIN_FILENO, TCSANOW, &*modes);
    return r.error();
  }
  // A melted image is a snapshot like any other again: retention may trim it.
  store.reset();
  if (auto writable = ctx.open_store(StoreAccess::kWrite); writable.ok()) (void)(*writable)->unpin(r->snapshot);
  if (ctx.json) {
    JsonWriter j;
    j.begin_object()
        .field("name", args.name)
        .field("pid", int64_t(r->pid))
        .field("snapshot", r->snapshot)
        .field("threads", int64_t(r->threads))
        .field("pages", r->pages)
        .field("seconds", r->seconds)
        .end_object();
    fmt::print("{}\n", j.str());
  } else if (!args.shell_job) {
    fmt::print("melted {}: pid {}, snapshot {}, {} thread{}, {} pages, {:.1f} ms\n", args.name, r->pid,
               r->snapshot, r->threads, r->threads == 1 ? "" : "s", r->pages, r->seconds * 1000);
  }
  std::fflush(stdout);
  if (args.shell_job) return wait_shell_job(r->pid, modes);
  return kExitOk;
}

// --- rm -------------------------------------------------------------------------------

Result<int> run_rm(const Context& ctx, const std::string& name) {
  FROST_ASSIGN(auto store, ctx.open_store(StoreAccess::kWrite));
  Result<store::SnapshotId> id = store->latest(name);
  if (!id.ok()) return Error::not_found(fmt::format("no image named '{}'", name));
  FROST_TRY(store->remove_owner(name));
  if (ctx.json) {
    JsonWriter j;
    j.begin_object().field("removed", name).end_object();
    fmt::print("{}\n", j.str());
  } else {
    fmt::print("removed {}\n", name);
  }
  return kExitOk;
}

}  // namespace

void add_freeze_command(CommandSet& set) {
  auto args = std::make_shared<CaptureArgs>();
  CLI::App* sub = set.add("freeze", "capture a process into the store, then end it",
                          [args](const Context& ctx) { return run_capture(ctx, *args, dump::CaptureMode::kFreeze); });
  sub->add_option("pid", args->target, "the process")->required();
  sub->add_option("--name", args->name, "name of its image (default: the process's name)");
}

void add_snapshot_command(CommandSet& set) {
  auto args = std::make_shared<CaptureArgs>();
  CLI::App* sub = set.add("snapshot", "capture a process into the store; it keeps running",
                          [args](const Context& ctx) { return run_capture(ctx, *args, dump::CaptureMode::kSnapshot); });
  sub->add_option("target", args->target, "PID, or the name of a running process's images")->required();
  sub->add_option("--name", args->name, "name of its image (default: the process's name)");
}

void add_melt_command(CommandSet& set) {
  auto args = std::make_shared<MeltArgs>();
  CLI::App* sub = set.add("melt", "run a frozen process again, with its PID and thread ids",
                          [args](const Context& ctx) { return run_melt(ctx, *args); });
  sub->add_option("name", args->name, "the image")->required();
  sub->add_option("--snapshot", args->snapshot, "melt this snapshot instead of the newest");
  sub->add_flag("--shell-job", args->shell_job,
                "attach its terminal fds to this terminal and run it in the foreground until it exits");
}

void add_rm_command(CommandSet& set) {
  auto name = std::make_shared<std::string>();
  CLI::App* sub = set.add("rm", "remove every snapshot of an image",
                          [name](const Context& ctx) { return run_rm(ctx, *name); });
  sub->add_option("name", *name, "the image")->required();
}

}  // namespace frost::cli
