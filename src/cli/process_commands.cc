#include "cli/process_commands.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/exit_code.h"
#include "cli/frost_home.h"
#include "cli/daemon_route.h"
#include "cli/json_writer.h"
#include "cli/progress_line.h"
#include "common/unique_fd.h"
#include "daemon/registry.h"
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

// --- freeze / snapshot ------------------------------------------------------------

struct CaptureArgs {
  std::string target;  // PID, or the name of a persistent process or image
  std::string name;
  std::string kind = "force";  // snapshot: weak or force
};

Result<int> run_capture(const Context& ctx, const CaptureArgs& args, dump::CaptureMode mode) {
  const bool freeze = mode == dump::CaptureMode::kFreeze;
  const char* verb = freeze ? "freezing" : "snapshotting";
  nlohmann::json req{{"op", freeze ? "freeze" : "snapshot"}, {"target", args.target}, {"kind", args.kind}};
  if (!args.name.empty()) req["name"] = args.name;
  ProgressLine progress(fmt::format("{} {}", verb, args.target));
  Result<nlohmann::json> r = execute(req, progress.callback());
  progress.done();
  if (!r.ok()) {
    std::string what = as_pid(args.target) ? fmt::format("process {}", args.target) : fmt::format("'{}'", args.target);
    return r.error().context(fmt::format("{} {}", verb, what));
  }
  const nlohmann::json& j = *r;
  if (ctx.json) {
    fmt::print("{}\n", j.dump());
  } else {
    int threads = j.value("threads", 0);
    std::string line = fmt::format("{} {}: pid {}, snapshot {}, {} thread{}, {} pages, {} stored, {:.1f} ms",
                                   freeze ? "froze" : "snapshot of", j.value("name", ""), j.value("pid", 0),
                                   j.value("snapshot", uint64_t(0)), threads, threads == 1 ? "" : "s",
                                   j.value("pages", uint64_t(0)), human_bytes(j.value("bytes_stored", uint64_t(0))),
                                   j.value("seconds", 0.0) * 1000);
    if (j.value("parent", uint64_t(0)) != 0) {
      line += fmt::format(" (incremental on {}, paused {:.1f} ms)", j.value("parent", uint64_t(0)), j.value("pause_ms", 0.0));
    }
    fmt::print("{}\n", line);
  }
  return kExitOk;
}

// --- melt ---------------------------------------------------------------------------

struct MeltArgs {
  std::string name;
  uint64_t snapshot = 0;
  bool shell_job = false;
  bool eager = false;
  bool pidns = false;
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

// What a melt printed, whichever process made it.
struct MeltReport {
  pid_t pid = 0;
  uint64_t snapshot = 0;
  int threads = 0;
  uint64_t pages = 0;
  uint64_t pending = 0;  // lazy: pages the page server still brings in
  double seconds = 0;
  pid_t pager_pid = 0;   // lazy: the process serving them
};

MeltReport report_of(const restore::MeltResult& r) {
  return {r.pid, r.snapshot, r.threads, r.pages, r.pager ? r.pager->pages_pending() : 0, r.seconds, 0};
}

void print_melt(const Context& ctx, const MeltArgs& args, const MeltReport& r, bool lazy) {
  if (ctx.json) {
    JsonWriter j;
    j.begin_object()
        .field("name", args.name)
        .field("pid", int64_t(r.pid))
        .field("snapshot", r.snapshot)
        .field("threads", int64_t(r.threads))
        .field("pages", r.pages)
        .field("seconds", r.seconds)
        .field("lazy", lazy);
    if (lazy) j.field("pages_pending", r.pending).field("pager_pid", int64_t(r.pager_pid));
    j.end_object();
    fmt::print("{}\n", j.str());
  } else if (!args.shell_job) {
    fmt::print("melted {}: pid {}, snapshot {}, {} thread{}, {} pages, {:.1f} ms", args.name, r.pid, r.snapshot,
               r.threads, r.threads == 1 ? "" : "s", r.pages, r.seconds * 1000);
    if (lazy && r.pending > 0) {
      fmt::print("; running, {} pages ({}) being paged in by pid {}", r.pending, human_bytes(r.pending * 4096),
                 r.pager_pid);
    }
    fmt::print("\n");
  }
  std::fflush(stdout);
}

// A melted image is a snapshot like any other again: retention may trim it.
void unpin_melted(const Context& ctx, std::unique_ptr<store::Store>& store, store::SnapshotId id) {
  store.reset();
  if (auto writable = ctx.open_store(StoreAccess::kWrite); writable.ok()) (void)(*writable)->unpin(id);
}

Result<restore::MeltResult> melt_from_store(const Context& ctx, const MeltArgs& args, restore::MeltOptions options,
                                            std::unique_ptr<store::Store>* store) {
  // Read-only: a melt that fails, even on a damaged store, changes nothing.
  FROST_ASSIGN(*store, ctx.open_store(StoreAccess::kRead));
  if (args.snapshot != 0) options.snapshot = args.snapshot;
  return restore::melt(**store, args.name, options);
}

// A melt made here, not by frostd: the registry (frostd's, or the file when
// none runs) learns which process now runs a persistent image, or a later
// `frost recover` would take the old one for gone and melt a second copy.
// The melt stands whatever happens: a failure here is a warning.
void record_melt(const MeltArgs& args, pid_t pid, pid_t ns_pid, uint64_t snapshot, const char* how) {
  // Most images are not persistent processes: then the store is not opened again.
  Result<daemon::Registry> registry = daemon::Registry::load(frost_home());
  if (registry.ok() && registry->find(args.name) == nullptr) return;
  nlohmann::json req{{"op", "adopt"}, {"name", args.name}, {"pid", pid}, {"snapshot", snapshot}, {"how", how}};
  if (ns_pid != 0) req["ns_pid"] = ns_pid;
  Result<nlohmann::json> r = execute(req);
  if (!r.ok()) print_error("warning: melted, but the registry still names the old process: " + r.error().to_string());
}

// --- the background page server of a lazy melt ---

// The page server's first words to the CLI, through a pipe: the melt's
// result or its error.
struct MeltMessage {
  int32_t ok = 0;
  int32_t kind = 0, err = 0;
  pid_t pid = 0, ns_pid = 0;  // ns_pid: inside a new PID namespace, else 0
  int32_t threads = 0;
  uint64_t snapshot = 0, pages = 0, pending = 0;
  double seconds = 0;
  char message[2048] = {};
};

void send_message(int fd, const MeltMessage& m) {
  const char* p = reinterpret_cast<const char*>(&m);
  size_t left = sizeof m;
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= size_t(n);
  }
}

Result<MeltMessage> receive_message(int fd) {
  MeltMessage m;
  char* p = reinterpret_cast<char*>(&m);
  size_t got = 0;
  while (got < sizeof m) {
    ssize_t n = ::read(fd, p + got, sizeof m - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::io("the page server ended before it reported the melt", EIO);
    got += size_t(n);
  }
  m.message[sizeof m.message - 1] = 0;
  return m;
}

// The page server's whole life: melt, report, serve, let go. Its thread
// made the process, which dies with it (see lazy/page_server.h).
[[noreturn]] void page_server_main(const Context& ctx, const MeltArgs& args, int report_fd) {
  ::setsid();
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
  }
  ::signal(SIGPIPE, SIG_IGN);  // the CLI may be gone; the report is then lost, not the process
  restore::MeltOptions options;
  options.lazy = true;
  options.pidns = args.pidns;
  std::unique_ptr<store::Store> store;
  Result<restore::MeltResult> r = melt_from_store(ctx, args, options, &store);
  MeltMessage m;
  if (!r.ok()) {
    m.kind = int32_t(r.error().kind());
    m.err = r.error().err();
    std::snprintf(m.message, sizeof m.message, "%s", r.error().message().c_str());
    send_message(report_fd, m);
    ::_exit(kExitFailure);
  }
  m.ok = 1;
  m.pid = r->pid;
  m.ns_pid = r->ns_init != 0 ? r->ns_pid : 0;
  m.threads = r->threads;
  m.snapshot = r->snapshot;
  m.pages = r->pages;
  m.pending = r->pager ? r->pager->pages_pending() : 0;
  m.seconds = r->seconds;
  send_message(report_fd, m);
  ::close(report_fd);
  Status served = r->pager ? r->pager->run() : Status::Ok();
  r->pager.reset();
  unpin_melted(ctx, store, r->snapshot);
  // A process that was ended by SIGKILL (a freeze) is reaped here, by its
  // parent, so that its PID is free for the next melt (init may take
  // seconds). Any other exit status is left for whoever adopts it.
  siginfo_t info{};
  if (::waitid(P_PID, id_t(r->pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == r->pid &&
      info.si_code == CLD_KILLED && info.si_status == SIGKILL) {
    int status;
    (void)::waitpid(r->pid, &status, WNOHANG);
  }
  ::_exit(served.ok() ? kExitOk : kExitFailure);
}

Result<int> run_lazy_melt(const Context& ctx, const MeltArgs& args) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return Error::io("creating a pipe for the page server");
  UniqueFd report_r(report[0]), report_w(report[1]);
  std::fflush(stdout);
  std::fflush(stderr);
  // Before the store is open: the server opens its own, and frost has no threads yet.
  pid_t server = ::fork();
  if (server < 0) return Error::io("starting the page server");
  if (server == 0) {
    report_r.reset();
    page_server_main(ctx, args, report_w.release());
  }
  report_w.reset();
  FROST_ASSIGN(MeltMessage m, receive_message(report_r.get()));
  if (!m.ok) return Error(ErrorKind(m.kind), m.message, m.err);
  MeltReport r{m.pid, m.snapshot, m.threads, m.pages, m.pending, m.seconds, server};
  record_melt(args, m.pid, m.ns_pid, m.snapshot, "lazily, by frost melt");
  print_melt(ctx, args, r, true);
  return kExitOk;
}

// With frostd running, it melts (and serves the pages of) everything but a
// shell job, which needs this terminal and this process as its parent.
Result<int> run_daemon_melt(const Context& ctx, const MeltArgs& args) {
  nlohmann::json req{{"op", "melt"}, {"name", args.name}, {"eager", args.eager}, {"pidns", args.pidns}};
  if (args.snapshot != 0) req["snapshot"] = args.snapshot;
  ProgressLine progress(fmt::format("melting {}", args.name));
  FROST_ASSIGN(nlohmann::json r, execute(req, progress.callback()));
  progress.done();
  if (ctx.json) {
    fmt::print("{}\n", r.dump());
  } else {
    int threads = r.value("threads", 0);
    fmt::print("melted {}: pid {}, snapshot {}, {} thread{}, {} pages, {:.1f} ms{}\n", args.name, r.value("pid", 0),
               r.value("snapshot", uint64_t(0)), threads, threads == 1 ? "" : "s", r.value("pages", uint64_t(0)),
               r.value("seconds", 0.0) * 1000, r.value("lazy", false) ? "; frostd pages its memory in" : "");
  }
  return kExitOk;
}

Result<int> run_melt(const Context& ctx, const MeltArgs& args) {
  if (!args.shell_job && daemon_running()) return run_daemon_melt(ctx, args);
  if (!args.eager && !args.shell_job) return run_lazy_melt(ctx, args);
  restore::MeltOptions options;
  // A shell job is served by frost itself, on this thread, before it waits for the job.
  options.lazy = !args.eager;
  options.pidns = args.pidns;
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
  std::unique_ptr<store::Store> store;
  Result<restore::MeltResult> r = melt_from_store(ctx, args, options, &store);
  progress.done();
  if (!r.ok()) {
    if (modes) ::tcsetattr(STDIN_FILENO, TCSANOW, &*modes);
    return r.error();
  }
  MeltReport report = report_of(*r);
  report.pager_pid = ::getpid();
  record_melt(args, r->pid, r->ns_init != 0 ? r->ns_pid : 0, r->snapshot,
              args.shell_job ? "a shell job of frost melt" : "by frost melt");
  print_melt(ctx, args, report, options.lazy);
  if (r->pager) {
    Status served = r->pager->run();
    if (!served.ok()) print_error(served.error().to_string());
    r->pager.reset();
  }
  unpin_melted(ctx, store, r->snapshot);
  if (args.shell_job) return wait_shell_job(r->pid, modes);
  return kExitOk;
}

// --- rm -------------------------------------------------------------------------------

Result<int> run_rm(const Context& ctx, const std::string& name) {
  FROST_TRY(execute(nlohmann::json{{"op", "rm"}, {"name", name}}));
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
  sub->add_option("target", args->target, "PID, or the name of a persistent process")->required();
  sub->add_option("--name", args->name, "name of its image (default: the process's name)");
}

void add_snapshot_command(CommandSet& set) {
  auto args = std::make_shared<CaptureArgs>();
  CLI::App* sub = set.add("snapshot", "capture a process into the store; it keeps running",
                          [args](const Context& ctx) { return run_capture(ctx, *args, dump::CaptureMode::kSnapshot); });
  sub->add_option("target", args->target, "PID, or the name of a persistent process or running process's images")->required();
  sub->add_option("--name", args->name, "name of its image (default: the process's name)");
  sub->add_flag_callback("--weak", [args] { args->kind = "weak"; }, "only if the process is idle (waits up to 2 s)");
  sub->add_flag_callback("--force", [args] { args->kind = "force"; }, "pre-copy while it runs, then stop it briefly (default)");
}

void add_melt_command(CommandSet& set) {
  auto args = std::make_shared<MeltArgs>();
  CLI::App* sub = set.add("melt", "run a frozen process again, with its PID and thread ids",
                          [args](const Context& ctx) { return run_melt(ctx, *args); });
  sub->add_option("name", args->name, "the image")->required();
  sub->add_option("--snapshot", args->snapshot, "melt this snapshot instead of the newest");
  sub->add_flag("--pidns", args->pidns,
                "melt into a new PID namespace, where it has its saved PID and TIDs even if they are taken here");
  sub->add_flag("--eager", args->eager,
                "copy all memory before the process runs (default: it runs at once, and a background page "
                "server brings its memory in)");
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
