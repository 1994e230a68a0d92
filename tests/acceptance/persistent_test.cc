// Real programs as persistent processes through a crash: each runs under a
// private frostd that snapshots it every second; then frostd and the program
// are killed (SIGKILL) and the program is recovered from its newest snapshot.
//
// Every test kills frostd first and lets the program work on before killing
// it: that work is in no snapshot, so the recovered program must redo it,
// while everything from before the last snapshot (which lived only in the
// program's memory) must be there. The recover paths differ per test:
// `frost recover` without a daemon (an eager melt), `frostd --recover`, and
// `frost recover` answered by a new frostd (both lazy melts).
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>

#include "frostd.h"
#include "sqlite_script.h"
#include "tmux.h"

namespace frost::acceptance {
namespace {

using nlohmann::json;

// What a process that should have ended is doing: its state, tracer and kernel stack.
std::string describe_process(pid_t pid) {
  const fs::path proc = fs::path("/proc") / std::to_string(pid);
  std::string out;
  for (const std::string& line : split_lines(slurp(proc / "status"))) {
    if (line.starts_with("State:") || line.starts_with("TracerPid:") || line.starts_with("PPid:")) out += line + "\n";
  }
  out += "wchan: " + slurp(proc / "wchan") + "\nstack:\n" + slurp(proc / "stack");
  // A zombie waits for its parent: say what the parent is doing.
  pid_t parent = 0;
  for (const std::string& line : split_lines(slurp(proc / "status"))) {
    if (line.starts_with("PPid:")) parent = pid_t(std::atoi(line.c_str() + 5));
  }
  if (parent > 1) {
    const fs::path pp = fs::path("/proc") / std::to_string(parent);
    out += "parent " + std::to_string(parent) + " (" + slurp(pp / "comm") + "): ";
    for (const std::string& line : split_lines(slurp(pp / "status"))) {
      if (line.starts_with("State:") || line.starts_with("TracerPid:") || line.starts_with("SigBlk:") ||
          line.starts_with("SigPnd:") || line.starts_with("ShdPnd:"))
        out += line + "; ";
    }
    out += "wchan " + slurp(pp / "wchan") + "\nparent stack:\n" + slurp(pp / "stack");
  }
  return out;
}

// What the persistent tests share: a frostd, frost with --json, the log.
template <class Base>
class WithFrostd : public Base {
 protected:
  // frost COMMAND --json ARGS: exit code, and stdout parsed (null if it is not JSON).
  std::pair<Outcome, json> frost_json(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin() + 1, "--json");  // before any "--" that ends frost's options
    std::vector<std::string> argv{FROST_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> all_env{this->frost_home_env()};
    all_env.insert(all_env.end(), env.begin(), env.end());
    Outcome r = run(argv, all_env);
    return {r, json::parse(r.out, nullptr, /*allow_exceptions=*/false)};
  }

  // frost run --name NAME --every 1s --output OUT -- COMMAND: the program's pid.
  pid_t run_persistent(const std::string& name, const fs::path& out, const std::vector<std::string>& command,
                       const std::vector<std::string>& env = {}) {
    std::vector<std::string> args{"run", "--name", name, "--every", "1s", "--output", out.string()};
    args.push_back("--");
    args.insert(args.end(), command.begin(), command.end());
    auto [r, j] = frost_json(args, env);
    EXPECT_EQ(r.exit_code, 0) << "frost run " << name << ": " << r << frostd_.log();
    pid_t pid = j.is_object() ? j.value("pid", pid_t(0)) : 0;
    EXPECT_GT(pid, 0) << r;
    if (pid <= 0) return 0;
    // frost run started it and exited: it is our (adopted) child now.
    this->janitor_.track(pid);
    EXPECT_EQ(read_proc_stat(pid).value_or(ProcStat{}).ppid, ::getpid()) << "pid " << pid << " was not adopted";
    EXPECT_EQ(j.value("every_ms", 0), 1000) << r;
    EXPECT_TRUE(j.value("daemon", false)) << "frost run did not go to frostd: " << r;
    return pid;
  }

  // The records of `frost log NAME --json`, oldest first.
  std::vector<json> log_records(const std::string& name) {
    auto [r, j] = frost_json({"log", name});
    if (r.exit_code != 0 || !j.is_object() || !j.contains("records")) return {};
    return std::vector<json>(j["records"].begin(), j["records"].end());
  }

  // The snapshot records (those with a snapshot id) of NAME's log.
  std::vector<json> snapshots(const std::string& name) {
    std::vector<json> out;
    for (const json& r : log_records(name)) {
      if (r.contains("snapshot")) out.push_back(r);
    }
    return out;
  }

  // Waits until NAME's log holds at least n snapshots.
  ::testing::AssertionResult wait_for_snapshots(const std::string& name, size_t n) {
    if (poll_until([&] { return snapshots(name).size() >= n; })) return ::testing::AssertionSuccess();
    auto [r, j] = frost_json({"log", name});
    return ::testing::AssertionFailure() << "fewer than " << n << " snapshots of " << name << ": " << r
                                         << frostd_.log();
  }

  // Waits for two more snapshots than the log holds now. The first of them
  // was logged after this call began and the periodic snapshots are taken one
  // after another, so the second (and every later one) was taken after
  // whatever the caller observed before calling.
  ::testing::AssertionResult wait_for_two_more_snapshots(const std::string& name) {
    return wait_for_snapshots(name, snapshots(name).size() + 2);
  }

  // The periodic snapshots: the first one (frost run/persist, a full copy)
  // and at least two more, all "force" (the default policy), with ascending
  // ids; frostd's are incremental on the one before, unless the log says why
  // not ("full copy: ..."). Returns the newest snapshot's id.
  uint64_t check_periodic_snapshots(const std::string& name) {
    std::vector<json> snaps = snapshots(name);
    EXPECT_GE(snaps.size(), 3u);
    uint64_t last = 0;
    for (const json& s : snaps) {
      EXPECT_EQ(s.value("kind", ""), "force") << s;
      EXPECT_GT(s.value("snapshot", uint64_t(0)), last) << s;
      if (last == 0) {
        EXPECT_FALSE(s.value("incremental", true)) << s;
      } else if (!s.value("note", "").starts_with("full copy: ")) {
        EXPECT_EQ(s.value("parent", uint64_t(0)), last) << s;
      }
      last = s.value("snapshot", uint64_t(0));
    }
    return last;
  }

  // The "recover" record after the newest snapshot must say it melted `snapshot` as pid.
  void check_recover_record(const std::string& name, uint64_t snapshot, pid_t pid) {
    std::vector<json> records = log_records(name);
    auto it = std::find_if(records.begin(), records.end(), [](const json& r) { return r.value("kind", "") == "recover"; });
    ASSERT_NE(it, records.end()) << "no recover record in the log of " << name;
    std::string note = it->value("note", "");
    EXPECT_TRUE(note.starts_with("melted from snapshot " + std::to_string(snapshot) + " as pid " + std::to_string(pid)))
        << note;
    for (auto before = records.begin(); before != it; ++before) {
      EXPECT_LE(before->value("snapshot", uint64_t(0)), snapshot) << "a snapshot newer than the recovered one";
    }
  }

  // SIGKILL pid (our adopted child) and reap it: the crash of the program.
  void crash(pid_t pid) {
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    std::optional<int> status = wait_exit(pid);
    ASSERT_TRUE(status.has_value()) << "pid " << pid << " outlived SIGKILL: " << describe_process(pid);
    ASSERT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << describe_status(*status);
  }

  // The element of a recover answer's "recovered" list for name.
  json recovered_entry(const json& answer, const std::string& name) {
    if (!answer.is_object() || !answer.contains("recovered")) return json();
    for (const json& p : answer["recovered"]) {
      if (p.value("name", "") == name) return p;
    }
    return json();
  }

  // Declared after the base's janitor and directory: stopped before they go.
  Frostd frostd_{this->home(), this->dir()};
};

class PersistentTest : public WithFrostd<AcceptanceTest> {};

// --- python3 ------------------------------------------------------------------------

// python3 computing under frostd; crashed; `frost recover` without a daemon
// (an eager melt, the process adopted by us); then a new frostd snapshots it
// again. Its output (appended) is the crash's output, then from the newest
// snapshot's point on what an uninterrupted run prints: with the redone lines
// taken out, byte for byte the reference run's.
TEST_F(PersistentTest, PythonRecoveredWithoutDaemonContinuesToIdenticalOutput) {
  constexpr int kSteps = 400;
  const fs::path script = fs::path(FROST_ACCEPTANCE_DIR) / "progress.py";
  const std::vector<std::string> python{"/usr/bin/python3", "-I", script.string(), std::to_string(kSteps)};
  pid_t reference = start(python, {"/dev/null", dir() / "reference.out", dir() / "reference.err"});
  ASSERT_TRUE(frostd_.start());
  const fs::path out = dir() / "py.out";
  pid_t pid = run_persistent("py", out, python);
  ASSERT_GT(pid, 0);

  ASSERT_TRUE(poll_until([&] { return count_lines(slurp(out)) >= 30; })) << slurp(out);
  const size_t lines_before = count_lines(slurp(out));
  ASSERT_TRUE(wait_for_two_more_snapshots("py"));
  ASSERT_TRUE(frostd_.crash());
  const size_t lines_at_frostd_crash = count_lines(slurp(out));
  ASSERT_TRUE(poll_until([&] { return count_lines(slurp(out)) >= lines_at_frostd_crash + 10; })) << slurp(out);
  ASSERT_NO_FATAL_FAILURE(crash(pid));
  const std::string at_crash = slurp(out);
  const size_t lines_at_crash = count_lines(at_crash);
  ASSERT_LT(lines_at_crash, size_t(kSteps)) << "crashed too late to test anything";
  const uint64_t newest = check_periodic_snapshots("py");

  auto [r, answer] = frost_json({"recover"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json entry = recovered_entry(answer, "py");
  ASSERT_TRUE(entry.is_object()) << r;
  EXPECT_EQ(entry.value("pid", 0), pid) << r;
  EXPECT_EQ(entry.value("snapshot", uint64_t(0)), newest) << r;
  EXPECT_FALSE(entry.value("lazy", true)) << "no frostd runs, so the melt is eager: " << r;
  janitor_.track(pid);
  EXPECT_EQ(read_proc_stat(pid).value_or(ProcStat{}).ppid, ::getpid()) << "the recovered python was not adopted";
  ASSERT_NO_FATAL_FAILURE(check_recover_record("py", newest, pid));

  // A new frostd takes the recovered process on: periodic snapshots again.
  ASSERT_TRUE(frostd_.start());
  ASSERT_TRUE(wait_for_snapshots("py", snapshots("py").size() + 1));
  EXPECT_GT(snapshots("py").back().value("snapshot", uint64_t(0)), newest);

  std::optional<int> status = wait_exit(pid);
  ASSERT_TRUE(status.has_value()) << "the recovered python did not finish";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_status(*status);
  EXPECT_TRUE(frostd_.stop());
  status = wait_exit(reference);
  ASSERT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << slurp(dir() / "reference.err");

  const std::string want = slurp(dir() / "reference.out");
  const std::vector<std::string> want_lines = split_lines(want);
  ASSERT_EQ(want_lines.size(), size_t(kSteps + 1));
  const std::string got = slurp(out);
  ASSERT_TRUE(got.starts_with(at_crash)) << "the output before the crash changed";
  const std::string redone = got.substr(at_crash.size());
  // The recovered process goes on from the step after its snapshot's last line.
  size_t resumed_at = 0;
  ASSERT_EQ(std::sscanf(redone.c_str(), "step %zu ", &resumed_at), 1) << redone.substr(0, 200);
  EXPECT_GE(resumed_at, lines_before) << "recovered from a snapshot older than the last ones";
  EXPECT_LE(resumed_at, lines_at_frostd_crash) << "recovered a state no snapshot can hold";
  EXPECT_LT(resumed_at, lines_at_crash) << "the work after the last snapshot was not redone";
  std::string kept;
  for (size_t i = 0; i < resumed_at; ++i) kept += want_lines[i] + "\n";
  EXPECT_EQ(kept + redone, want) << "resumed at step " << resumed_at << ", crashed after " << lines_at_crash;
  EXPECT_TRUE(want.starts_with(at_crash)) << "the output before the crash is not the reference's";
}

// --- sqlite3 ------------------------------------------------------------------------

// sqlite3 filling an in-memory database from a script under frostd; crashed
// once a tenth of the script was read and two snapshots were taken after
// that; `frostd --recover` melts it lazily. The rows inserted before the
// snapshot exist only in its memory, the rest it inserts again from the
// script offset of the snapshot: the final queries print the whole script's
// result.
TEST_F(PersistentTest, SqliteInMemoryDatabaseRecoveredByFrostdAnswersTheQueries) {
  constexpr int kRows = 1000;
  const std::string script = sqlite_fill_script(kRows);
  const fs::path script_path = dir() / "fill.sql";
  write_file(script_path, script);
  const int64_t size = int64_t(script.size());
  ASSERT_TRUE(frostd_.start());
  const fs::path out = dir() / "sqlite.out";
  // sqlite3 reads the script itself (stdin is /dev/null), on fd 3. HOME
  // points here so no ~/.sqliterc changes the output format.
  pid_t pid = run_persistent("sqlite", out, {"/usr/bin/sqlite3", ":memory:", ".read " + script_path.string()},
                             {"HOME=" + dir().string()});
  ASSERT_GT(pid, 0);
  ASSERT_EQ(fs::read_symlink(fs::path("/proc") / std::to_string(pid) / "fd" / "3"), script_path);

  int64_t offset = 0;
  ASSERT_TRUE(poll_until([&] {
    offset = fd_offset(pid, 3).value_or(-1);
    return offset < 0 || offset >= size / 10;
  })) << "sqlite3 never read a tenth of its script";
  ASSERT_GE(offset, 0) << "sqlite3 ended early: " << slurp(out);
  ASSERT_TRUE(wait_for_two_more_snapshots("sqlite"));
  ASSERT_TRUE(frostd_.crash());
  const int64_t offset_at_frostd_crash = fd_offset(pid, 3).value_or(-1);
  // It reads on: rows the last snapshot does not hold.
  int64_t offset_at_crash = 0;
  ASSERT_TRUE(poll_until([&] {
    offset_at_crash = fd_offset(pid, 3).value_or(size);
    return offset_at_crash > offset_at_frostd_crash;
  }));
  ASSERT_NO_FATAL_FAILURE(crash(pid));
  ASSERT_EQ(slurp(out), "") << "the queries ran before the crash";
  const uint64_t newest = check_periodic_snapshots("sqlite");

  ASSERT_TRUE(frostd_.start({"--recover"}));
  EXPECT_NE(frostd_.log().find("recovered 'sqlite' as pid " + std::to_string(pid) + " from snapshot " +
                               std::to_string(newest)),
            std::string::npos)
      << frostd_.log();
  ASSERT_NO_FATAL_FAILURE(check_recover_record("sqlite", newest, pid));
  janitor_.track(pid);  // frostd's child now: it dies with frostd's page server
  // It reads the script on from where the snapshot was: after a tenth (those
  // rows are in its memory only) and before the blocks it read after the
  // snapshot (those rows it inserts again). It has a block's rows (~100 ms)
  // to run before it reads on.
  const int64_t restored_offset = fd_offset(pid, 3).value_or(-1);
  EXPECT_GE(restored_offset, size / 10);
  EXPECT_LT(restored_offset, offset_at_crash);

  const std::string want = sqlite_expected_output(kRows);
  ASSERT_TRUE(poll_until([&] { return slurp(out).size() >= want.size(); }))
      << "the recovered sqlite3 did not finish the script: " << slurp(out) << frostd_.log();
  EXPECT_TRUE(janitor_.wait_gone(pid, kConditionTimeout)) << "sqlite3 did not end after its script";
  EXPECT_EQ(slurp(out), want) << "crashed at script offset " << offset_at_crash << " of " << size
                              << ", recovered at " << restored_offset;
  EXPECT_TRUE(frostd_.stop());
}

// --- st_mt_avx ----------------------------------------------------------------------

// Eight threads with live AVX state, snapshotted every second; crashed; a
// new frostd answers `frost recover` (a lazy melt) and snapshots it again;
// then SIGUSR1: it checks its threads' work exactly and says PASS.
TEST_F(PersistentTest, MultiThreadedAvxRecoveredThroughFrostdPasses) {
  ASSERT_TRUE(frostd_.start());
  const fs::path out = dir() / "mt_avx.out";
  pid_t pid = run_persistent("mt_avx", out, {FROST_ST_MT_AVX_PATH});
  ASSERT_GT(pid, 0);
  const std::string ready = "READY " + std::to_string(pid) + "\n";
  ASSERT_TRUE(poll_until([&] { return slurp(out) == ready; })) << "no READY line: " << slurp(out);
  ASSERT_TRUE(wait_for_two_more_snapshots("mt_avx"));
  const auto threads = std::distance(fs::directory_iterator(fs::path("/proc") / std::to_string(pid) / "task"),
                                     fs::directory_iterator());
  ASSERT_TRUE(frostd_.crash());
  std::this_thread::sleep_for(milliseconds(300));  // work in no snapshot
  ASSERT_NO_FATAL_FAILURE(crash(pid));
  const uint64_t newest = check_periodic_snapshots("mt_avx");

  ASSERT_TRUE(frostd_.start());
  auto [r, answer] = frost_json({"recover"});
  ASSERT_EQ(r.exit_code, 0) << r << frostd_.log();
  json entry = recovered_entry(answer, "mt_avx");
  ASSERT_TRUE(entry.is_object()) << r;
  EXPECT_EQ(entry.value("pid", 0), pid) << r;
  EXPECT_EQ(entry.value("snapshot", uint64_t(0)), newest) << r;
  EXPECT_EQ(entry.value("threads", 0), threads) << r;
  janitor_.track(pid);
  ASSERT_NO_FATAL_FAILURE(check_recover_record("mt_avx", newest, pid));
  // Persistent again: frostd snapshots the recovered process (once its pages are in).
  ASSERT_TRUE(wait_for_snapshots("mt_avx", snapshots("mt_avx").size() + 1));

  ASSERT_EQ(::kill(pid, SIGUSR1), 0);
  const std::string want = ready + "PASS mt_avx\n";
  ASSERT_TRUE(poll_until([&] { return slurp(out).size() >= want.size(); })) << slurp(out) << frostd_.log();
  EXPECT_EQ(slurp(out), want);
  EXPECT_TRUE(janitor_.wait_gone(pid, kConditionTimeout)) << "mt_avx did not end after PASS";
  EXPECT_TRUE(frostd_.stop());
}

// --- reproducer: frost run under frostd races with the program's start -----------

// With frostd running, `frost run`'s first snapshot (a force snapshot: the
// tracker is armed by a remote call, then pre-copy rounds while the program
// runs) meets a program that has just started: fds it closes while they are
// listed, areas it unmaps while a round reads them. This once failed 21 of
// 629 runs ("/proc/P/fd/3 does not exist", "Input/output error"); each run
// here must succeed.
TEST_F(PersistentTest, FrostRunUnderFrostdSnapshotsAProgramJustStarted) {
  ASSERT_TRUE(frostd_.start());
  for (int i = 0; i < 60 && !HasFailure(); ++i) {
    pid_t pid = run_persistent("sleep-" + std::to_string(i), dir() / "sleep.out", {"/bin/sleep", "100"});
    if (pid > 0) {
      ASSERT_NO_FATAL_FAILURE(crash(pid));
    }
  }
  EXPECT_TRUE(frostd_.stop());
}

// --- bash in tmux -------------------------------------------------------------------

class PersistentBashTest : public WithFrostd<TmuxBashTestBase> {
 protected:
  // A bash with some state (a variable, a function, a cwd) made persistent
  // and snapshotted; then frostd and bash crash (SIGKILL), after a variable
  // was set that no snapshot saw. Returns bash's pid and the newest snapshot.
  std::pair<pid_t, uint64_t> crash_persistent_bash(const fs::path& work) {
    fs::create_directories(work);
    EXPECT_TRUE(frostd_.start());
    pid_t bash = start_bash();
    if (HasFailure()) return {0, 0};
    for (auto [keys, marker] : std::vector<std::pair<std::string, std::string>>{
             {"FROSTVAR=hello42; echo set-$FROSTVAR", "set-hello42"},
             {"greet() { echo \"hi-$1\"; }; greet 1", "hi-1"},
             {"cd " + work.string() + " && echo in-$((2+3))", "in-5"}}) {
      type_and_wait(kFirstPane, keys, marker);
    }
    wait_for_prompt(kFirstPane);
    auto [persisted, p] = frost_json({"persist", std::to_string(bash), "--name", "bash", "--every", "1s"});
    EXPECT_EQ(persisted.exit_code, 0) << persisted << frostd_.log();
    EXPECT_TRUE(wait_for_two_more_snapshots("bash"));
    EXPECT_TRUE(frostd_.crash());
    type_and_wait(kFirstPane, "AFTERVAR=lost; echo after-$AFTERVAR", "after-lost");
    if (HasFailure()) return {0, 0};
    EXPECT_EQ(::kill(bash, SIGKILL), 0);
    if (!janitor_.wait_gone(bash, seconds(10))) {
      // Now and then (1 run in 3 when two other tests run alongside, also at
      // the commit before issue 4's third session) the tmux server never
      // reaps the killed bash: a zombie, its parent asleep in poll with no
      // signal pending, and a SIGCHLD sent by hand makes it reap at once. Its
      // SIGCHLD went missing; why is not known (docs/PERSISTENCE.md, limits).
      // Nudge it, and say so, rather than fail on what tmux does.
      pid_t server = 0;
      for (const std::string& line : split_lines(slurp(fs::path("/proc") / std::to_string(bash) / "status")))
        if (line.starts_with("PPid:")) server = pid_t(std::atoi(line.c_str() + 5));
      std::printf("NOTE: bash %d still unreaped 10 s after SIGKILL (%s); SIGCHLD sent to its parent %d\n", bash,
                  describe_process(bash).c_str(), server);
      if (server > 1) ::kill(server, SIGCHLD);
    }
    EXPECT_TRUE(janitor_.wait_gone(bash, kConditionTimeout)) << "bash outlived SIGKILL: " << describe_process(bash);
    wait_pane_dead(kFirstPane);
    return {bash, check_periodic_snapshots("bash")};
  }

  // What bash must show after coming back in pane: the state its newest
  // snapshot saw, and not the variable set after it.
  void expect_state_of_the_snapshot(const std::string& pane, const fs::path& work) {
    type_and_wait(pane, "echo \"var-$FROSTVAR\"; greet 2", "hi-2");
    type_and_wait(pane, "echo \"after-[${AFTERVAR-unset}]\"; echo cwd-$(pwd -P)", "cwd-" + work.string());
    std::string screen = tmux_.screen(pane);
    EXPECT_TRUE(has_line(screen, "var-hello42")) << screen;
    EXPECT_TRUE(has_line(screen, "after-[unset]")) << "a variable set after the last snapshot survived:\n" << screen;
  }
};

// An interactive bash in a tmux pane made persistent (frost persist of its
// pid) and snapshotted every second; crashed. `frost recover` cannot bring
// it back: its fds 0-2 are a terminal, which only `frost melt --shell-job`
// gives a process (frost recover has no terminal to give); recover says so,
// and the log records it. `frost melt bash --shell-job` in a new window melts
// its newest snapshot: variables, functions and cwd set before it are there,
// a variable set after it is not; the registry names the melted bash, so a
// second recover finds it running.
TEST_F(PersistentBashTest, InteractiveBashCrashedIsMeltedAsShellJobWithItsState) {
  fs::path work = fs::canonical(dir()) / "workdir-persist";
  auto [bash, newest] = crash_persistent_bash(work);
  ASSERT_FALSE(HasFailure());

  auto [r, answer] = frost_json({"recover"});
  EXPECT_NE(r.exit_code, 0) << "frost recover melted a shell without a terminal: " << r;
  ASSERT_TRUE(answer.is_object() && answer.contains("failed")) << r;
  ASSERT_EQ(answer["failed"].size(), 1u) << r;
  EXPECT_EQ(answer["failed"][0].value("name", ""), "bash") << r;
  EXPECT_NE(answer["failed"][0].value("error", "").find("--shell-job"), std::string::npos) << r;
  std::vector<json> records = log_records("bash");
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back().value("kind", ""), "failed") << records.back();
  EXPECT_TRUE(records.back().value("note", "").starts_with("recover: ")) << records.back();

  auto [pane, frost_pid] = melt_in_new_window(bash);
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(expect_state_of_the_snapshot(pane, work));
  EXPECT_NE(newest, 0u);

  // The registry knows the shell job: recover finds it running and does
  // not melt a second copy.
  EXPECT_TRUE(poll_until([&] {
    std::vector<json> now = log_records("bash");
    return !now.empty() && now.back().value("kind", "") == "melt";
  })) << "frost melt --shell-job never told the registry";
  auto [again, second] = frost_json({"recover"});
  EXPECT_EQ(again.exit_code, 0) << again;
  ASSERT_TRUE(second.is_object() && second.contains("running")) << again;
  EXPECT_EQ(second["running"], json::array({"bash"})) << again;
  EXPECT_TRUE(second["recovered"].empty()) << again;
  records = log_records("bash");
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back().value("kind", ""), "melt") << records.back();
  EXPECT_NE(records.back().value("note", "").find("shell job"), std::string::npos) << records.back();

  kill_server_expect_gone(bash, frost_pid);
}

// The same crash, and then a new frostd: `frost recover` melts bash onto a
// new terminal that frostd holds (its pane died with it), and says so in the
// log; `frost attach bash` in a new window connects to it, with the state
// of the newest snapshot. Ctrl-] detaches and bash runs on; attaching again
// finds it where it was.
TEST_F(PersistentBashTest, InteractiveBashCrashedIsRecoveredOnANewTerminalAndAttached) {
  fs::path work = fs::canonical(dir()) / "workdir-attach";
  auto [bash, newest] = crash_persistent_bash(work);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(frostd_.start());

  auto [r, answer] = frost_json({"recover"});
  ASSERT_EQ(r.exit_code, 0) << r << frostd_.log();
  ASSERT_TRUE(answer.is_object() && answer.contains("recovered")) << r;
  ASSERT_EQ(answer["recovered"].size(), 1u) << r;
  EXPECT_EQ(answer["recovered"][0].value("pid", 0), bash) << r;
  EXPECT_TRUE(answer["recovered"][0].value("terminal", false)) << r;
  janitor_.track(bash);
  std::vector<json> records = log_records("bash");
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back().value("kind", ""), "recover") << records.back();
  EXPECT_NE(records.back().value("note", "").find("frost attach bash"), std::string::npos) << records.back();
  // Its terminal is frostd's pty, a session of its own.
  std::optional<ProcStat> st = read_proc_stat(bash);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->ppid, frostd_.pid());
  std::string tty = fs::read_symlink(fs::path("/proc") / std::to_string(bash) / "fd" / "0").string();
  EXPECT_TRUE(tty.starts_with("/dev/pts/")) << tty;

  auto attach = [&]() {
    Outcome window = tmux_.command({"new-window", "-P", "-F", "#{pane_id} #{pane_pid}", "-t", "acc", "/usr/bin/env",
                                    frost_home_env(), FROST_CLI_PATH, "attach", "bash"});
    EXPECT_EQ(window.exit_code, 0) << window;
    std::string pane = window.out.substr(0, window.out.find(' '));
    pid_t frost_pid = pid_t(std::stol("0" + window.out.substr(window.out.find(' ') + 1)));
    if (frost_pid > 0) janitor_.track(frost_pid);
    EXPECT_TRUE(poll_until([&] { return tmux_.screen(pane).find("attached to bash") != std::string::npos; }))
        << tmux_.screen(pane);
    return std::pair{pane, frost_pid};
  };
  auto [pane, frost_pid] = attach();
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(expect_state_of_the_snapshot(pane, work));
  EXPECT_NE(newest, 0u);
  ASSERT_NO_FATAL_FAILURE(type_and_wait(pane, "LATER=kept; echo later-$LATER", "later-kept"));

  Outcome detach = tmux_.command({"send-keys", "-t", pane, "C-]"});
  ASSERT_EQ(detach.exit_code, 0) << detach;
  EXPECT_TRUE(janitor_.wait_gone(frost_pid, kConditionTimeout)) << "frost attach did not end on Ctrl-]";
  std::optional<ProcStat> after = read_proc_stat(bash);
  EXPECT_TRUE(after && after->state != 'Z' && after->state != 'T' && after->state != 't' && tracer_of(bash) == 0)
      << "bash did not run on after the detach: " << describe_process(bash);

  auto [again, again_pid] = attach();
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(type_and_wait(again, "echo again-$LATER-$FROSTVAR", "again-kept-hello42"));
  // bash ends (exit): its terminal closes, and so does frost attach.
  tmux_.command({"send-keys", "-t", again, "exit", "Enter"});
  EXPECT_TRUE(janitor_.wait_gone(again_pid, kConditionTimeout)) << "frost attach outlived bash";
  EXPECT_TRUE(janitor_.wait_gone(bash, kConditionTimeout)) << describe_process(bash);
  EXPECT_TRUE(frostd_.stop());
}

}  // namespace
}  // namespace frost::acceptance
