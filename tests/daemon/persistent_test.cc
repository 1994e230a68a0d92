// Persistent processes under frostd: periodic incremental snapshots, freeze
// and lazy melt, the weak and force policies.
#include <signal.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "daemon/daemon_harness.h"

namespace frost::testing {
namespace {

const std::string kRewriter = std::string(FROST_PROGRAMS_DIR) + "/st_rewriter";

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// `frost run` of a command; its pid, added to the reaper.
pid_t run_persistent(const fs::path& home, Reaper& reaper, const std::vector<std::string>& options,
                     const std::vector<std::string>& command) {
  std::vector<std::string> args{"run"};
  args.insert(args.end(), options.begin(), options.end());
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  json r = frost_json(args, home);
  pid_t pid = r.value("pid", 0);
  reaper.add(pid);
  return pid;
}

// Sends SIGUSR1 to a rewriter and waits for its next PASS line.
bool rewriter_verifies(pid_t pid, const fs::path& out) {
  int before = count_lines(out, "PASS verified");
  if (::kill(pid, SIGUSR1) != 0) return false;
  return eventually([&] { return count_lines(out, "PASS verified") > before; }, 20000) &&
         count_lines(out, "FAIL") == 0;
}

TEST(Persistent, RewriterSnapshotsIncrementallyFreezesAndMeltsLazily) {
  TempDir home;
  Frostd d(home.path());
  ASSERT_TRUE(d.up()) << d.log();
  Reaper reaper;
  // 32 MiB, 2% of its pages rewritten per second: about 164 pages a second.
  pid_t pid = run_persistent(home.path(), reaper, {"--name", "rw", "--every", "1s"}, {kRewriter, "32M", "0.02"});
  ASSERT_GT(pid, 0);
  fs::path out = home.path() / "output" / "rw.out";
  ASSERT_TRUE(eventually([&] { return count_lines(out, "READY") == 1; })) << slurp(out);
  sleep_ms(3500);

  std::vector<json> log = log_records("rw", home.path());
  std::vector<json> periodic;
  for (const json& r : log) {
    if (r["kind"] == "force" && r.value("incremental", false)) periodic.push_back(r);
  }
  ASSERT_GE(periodic.size(), 2u) << json(log).dump(1);
  EXPECT_EQ(log.front().value("incremental", true), false) << "the first snapshot is full";
  for (size_t i = 1; i < periodic.size(); ++i) {  // the first may still see the start-up fill
    const json& r = periodic[i];
    uint64_t pages = r["pages"], bytes = r["bytes"];
    EXPECT_GE(pages, 50u) << r.dump();
    EXPECT_LE(pages, 1000u) << "not incremental: " << r.dump();
    EXPECT_LE(bytes, pages * 4096 * 3 / 2 + (256u << 10)) << "bytes far beyond the pages written: " << r.dump();
    EXPECT_GT(r.value("pause_ms", 0.0), 0.0);
  }

  json frozen = frost_json({"freeze", "rw"}, home.path());
  EXPECT_NE(frozen.value("parent", uint64_t(0)), 0u) << "a persistent process's freeze is incremental";
  EXPECT_LT(frozen.value("pages", uint64_t(1) << 40), 2000u) << frozen.dump();
  Reaper::kill_and_reap(pid);  // the frozen process's zombie, so its PID is free

  json melted = frost_json({"melt", "rw"}, home.path());
  EXPECT_EQ(melted.value("pid", 0), pid);
  EXPECT_TRUE(melted.value("lazy", false)) << melted.dump();
  EXPECT_TRUE(rewriter_verifies(pid, out)) << slurp(out);
  // It goes on working: more rewrites after the check.
  sleep_ms(300);
  EXPECT_TRUE(rewriter_verifies(pid, out)) << slurp(out);
  EXPECT_TRUE(running_untouched(pid));
  bool melt_logged = false;
  for (const json& r : log_records("rw", home.path())) melt_logged |= r["kind"] == "melt";
  EXPECT_TRUE(melt_logged);
}

// With no frostd, `frost melt` of a persistent process melts it itself and
// tells the registry: `frost ls` shows the new process, and `frost recover`
// finds it running rather than melting a second copy.
TEST(Persistent, MeltWithoutFrostdIsRecordedSoRecoverDoesNotMeltItTwice) {
  TempDir home;
  Reaper reaper;
  pid_t pid = 0;
  fs::path out = home.path() / "output" / "rw.out";
  {
    Frostd d(home.path());
    ASSERT_TRUE(d.up()) << d.log();
    pid = run_persistent(home.path(), reaper, {"--name", "rw", "--every", "1s"}, {kRewriter, "16M", "0.02"});
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(eventually([&] { return count_lines(out, "READY") == 1; })) << slurp(out);
    json frozen = frost_json({"freeze", "rw"}, home.path());
    ASSERT_TRUE(frozen.value("frozen", false)) << frozen.dump();
    Reaper::kill_and_reap(pid);
    ASSERT_EQ(d.stop(), 0) << d.log();
  }
  ASSERT_FALSE(daemon_answers(home.path()));

  json melted = frost_json({"melt", "rw"}, home.path());
  ASSERT_EQ(melted.value("pid", 0), pid) << melted.dump();
  EXPECT_TRUE(rewriter_verifies(pid, out)) << slurp(out);
  json listed = frost_json({"ls", "--json"}, home.path());
  bool shown = false;
  for (const json& p : listed.value("owners", json::array())) {
    if (p.value("name", "") != "rw") continue;
    shown = true;
    EXPECT_EQ(p.value("pid", 0), pid) << p.dump();
    EXPECT_EQ(p.value("state", ""), "running") << p.dump();
    EXPECT_TRUE(p.value("persistent", false)) << p.dump();
    EXPECT_EQ(p.value("every_ms", 0), 1000) << p.dump();
  }
  EXPECT_TRUE(shown) << listed.dump();
  json recovered = frost_json({"recover"}, home.path());
  EXPECT_EQ(recovered.value("running", json::array()), json::array({"rw"})) << recovered.dump();
  EXPECT_TRUE(recovered.value("recovered", json::array({"?"})).empty()) << recovered.dump();
  std::vector<json> log = log_records("rw", home.path());
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back().value("kind", ""), "melt") << log.back().dump();
  EXPECT_NE(log.back().value("note", "").find("as pid " + std::to_string(pid)), std::string::npos) << log.back().dump();
  EXPECT_TRUE(running_untouched(pid));
}

TEST(Persistent, WeakSkipsABusyProcessAndSnapshotsAnIdleOne) {
  TempDir home;
  Frostd d(home.path());
  ASSERT_TRUE(d.up()) << d.log();
  Reaper reaper;
  pid_t busy = run_persistent(home.path(), reaper, {"--name", "busy", "--every", "1s", "--policy", "weak"},
                              {"/bin/sh", "-c", "while :; do :; done"});
  pid_t idle = run_persistent(home.path(), reaper, {"--name", "idle", "--every", "1s", "--policy", "weak"},
                              {"/bin/sleep", "1000"});
  ASSERT_GT(busy, 0);
  ASSERT_GT(idle, 0);
  sleep_ms(4000);

  int skipped = 0, weak_busy = 0;
  for (const json& r : log_records("busy", home.path())) {
    if (r["kind"] == "skipped") {
      ++skipped;
      std::string note = r.value("note", "");
      EXPECT_TRUE(note.find("running") != std::string::npos || note.find("CPU") != std::string::npos) << note;
    }
    if (r["kind"] == "weak") ++weak_busy;
  }
  EXPECT_GE(skipped, 2);
  EXPECT_EQ(weak_busy, 0);
  int weak_idle = 0;
  for (const json& r : log_records("idle", home.path())) weak_idle += r["kind"] == "weak";
  EXPECT_GE(weak_idle, 2);
  EXPECT_TRUE(running_untouched(busy));
  EXPECT_TRUE(running_untouched(idle));
}

TEST(Persistent, ForceSnapshotsPauseABusyProcessBriefly) {
  TempDir home;
  Frostd d(home.path());
  ASSERT_TRUE(d.up()) << d.log();
  Reaper reaper;
  pid_t pid = run_persistent(home.path(), reaper, {"--name", "rw", "--every", "500ms"}, {kRewriter, "16M", "0.05"});
  fs::path out = home.path() / "output" / "rw.out";
  ASSERT_TRUE(eventually([&] { return count_lines(out, "READY") == 1; }));
  ::kill(pid, SIGUSR2);
  sleep_ms(3000);
  ::kill(pid, SIGUSR2);
  ASSERT_TRUE(eventually([&] { return count_lines(out, "STATS") == 2; })) << slurp(out);

  int force = 0;
  for (const json& r : log_records("rw", home.path())) {
    if (r["kind"] != "force") continue;
    ++force;
    double pause = r.value("pause_ms", 0.0);
    EXPECT_GT(pause, 0.0);
    EXPECT_LT(pause, 1000.0) << "a force snapshot held the process for long: " << r.dump();
  }
  EXPECT_GE(force, 4);
  EXPECT_TRUE(running_untouched(pid));
  // It kept working between the two STATS lines.
  std::string text = slurp(out);
  size_t a = text.find("STATS work="), b = text.rfind("STATS work=");
  ASSERT_NE(a, b);
  EXPECT_LT(std::stoull(text.substr(a + 11)), std::stoull(text.substr(b + 11)));
  EXPECT_TRUE(rewriter_verifies(pid, out)) << slurp(out);
}

}  // namespace
}  // namespace frost::testing
