// Power cuts: frostd and every persistent process are killed with SIGKILL
// at random moments (often in the middle of a snapshot: they come every
// 200-300 ms). Then `frost recover` (or `frostd --recover`) must bring each
// process back from a snapshot that is whole and not older than the last
// commit the log recorded, and each process checks all of its memory.
//
// FROST_POWERCUT_ROUNDS sets the number of rounds (default 30).
#include <signal.h>
#include <unistd.h>

#include <map>
#include <random>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "daemon/daemon_harness.h"

namespace frost::testing {
namespace {

const std::string kRewriter = std::string(FROST_PROGRAMS_DIR) + "/st_rewriter";

struct Persistent {
  std::string name;
  std::vector<std::string> command;
  std::string every;
};

int rounds() {
  const char* env = std::getenv("FROST_POWERCUT_ROUNDS");
  return env != nullptr && *env != '\0' ? std::max(1, std::atoi(env)) : 30;
}

std::map<std::string, pid_t> registered_pids(const fs::path& home) {
  json reg = json::parse(slurp(home / "registry.json"));
  std::map<std::string, pid_t> out;
  for (const json& p : reg["processes"]) out[p["name"]] = p["pid"];
  return out;
}

// The snapshot the newest "recover" record says the process came from.
uint64_t recovered_from(const std::string& name, const fs::path& home) {
  uint64_t from = 0;
  std::regex re("from snapshot ([0-9]+)");
  for (const json& r : log_records(name, home)) {
    std::smatch m;
    std::string note = r.value("note", "");
    if (r["kind"] == "recover" && std::regex_search(note, m, re)) from = std::stoull(m[1]);
  }
  return from;
}

TEST(PowerCut, EveryProcessComesBackFromItsLastLoggedCommitOrLater) {
  TempDir home;
  const std::vector<Persistent> procs = {
      {"big", {kRewriter, "16M", "0.05"}, "300ms"},
      {"small", {kRewriter, "4M", "0.5"}, "200ms"},
  };
  std::mt19937 rng(std::random_device{}());
  Reaper reaper;
  {
    Frostd d(home.path());
    ASSERT_TRUE(d.up()) << d.log();
    for (const Persistent& p : procs) {
      json r = frost_json({"run", "--name", p.name, "--every", p.every, "--", p.command[0], p.command[1], p.command[2]},
                          home.path());
      reaper.add(r.value("pid", 0));
    }
    d.kill_hard();
  }
  std::map<std::string, uint64_t> last_logged;  // before the last power cut
  const int n = rounds();
  for (int round = 0; round < n; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Alternate the two ways back: the CLI alone (eager melts), and the
    // daemon at start (lazy melts, so the checks below fault pages in).
    bool daemon_recovers = round % 2 == 1;
    std::unique_ptr<Frostd> d;
    if (daemon_recovers) {
      d = std::make_unique<Frostd>(home.path(), std::vector<std::string>{"--recover"});
      ASSERT_TRUE(d->up()) << d->log();
      // Answered only once its own recovery is done: then nothing is left to recover.
      json again = frost_json({"recover"}, home.path());
      ASSERT_TRUE(again["recovered"].empty() && again["failed"].empty()) << again.dump() << d->log();
    } else {
      json r = frost_json({"recover"}, home.path());
      ASSERT_TRUE(r["failed"].empty()) << r.dump();
      d = std::make_unique<Frostd>(home.path());
      ASSERT_TRUE(d->up()) << d->log();
    }
    std::map<std::string, pid_t> pids = registered_pids(home.path());
    for (const Persistent& p : procs) {
      pid_t pid = pids[p.name];
      reaper.add(pid);
      fs::path out = home.path() / "output" / (p.name + ".out");
      ASSERT_TRUE(eventually([&] { return running_untouched(pid); }, 5000)) << p.name << " is not running";
      if (round > 0) {
        uint64_t from = recovered_from(p.name, home.path());
        EXPECT_GE(from, last_logged[p.name]) << p.name << " came back from a snapshot older than its last logged commit";
      }
      int before = count_lines(out, "PASS verified");
      ASSERT_EQ(::kill(pid, SIGUSR1), 0);
      ASSERT_TRUE(eventually([&] { return count_lines(out, "PASS verified") > before; }, 20000))
          << p.name << ": " << slurp(out).substr(0, 2000);
      ASSERT_EQ(count_lines(out, "FAIL"), 0) << slurp(out);
    }
    // Run a while, then the power goes: the daemon first, mid-whatever, then the processes.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 1200)(rng)));
    d->kill_hard();
    for (auto [name, pid] : registered_pids(home.path())) {
      Reaper::kill_and_reap(pid);
      last_logged[name] = last_logged_commit(name, home.path());
    }
  }
}

}  // namespace
}  // namespace frost::testing
