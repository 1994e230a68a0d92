// After a reboot a persistent process's PID usually belongs to another
// process: recover then melts it into a new PID namespace in which it has
// its saved PID (and TIDs) again, and later snapshots keep those ids.
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "daemon/daemon_harness.h"

namespace frost::testing {
namespace {

const std::string kRewriter = std::string(FROST_PROGRAMS_DIR) + "/st_rewriter";

pid_t own_pid_inside(pid_t host) {
  std::string status = slurp("/proc/" + std::to_string(host) + "/status");
  size_t at = status.find("NSpid:");
  if (at == std::string::npos) return 0;
  std::string line = status.substr(at, status.find('\n', at) - at);
  return pid_t(std::stol(line.substr(line.find_last_of(" \t") + 1)));
}

TEST(PidNamespace, RecoverGivesATakenPidBackInsideANewNamespace) {
  TempDir home;
  Reaper reaper;
  json run = frost_json({"run", "--name", "ns", "--every", "off", "--", kRewriter, "8M", "0.1"}, home.path());
  pid_t saved = run.value("pid", 0);
  ASSERT_GT(saved, 0);
  fs::path out = home.path() / "output" / "ns.out";
  ASSERT_TRUE(eventually([&] { return count_lines(out, "READY") == 1; }));
  Reaper::kill_and_reap(saved);  // the crash
  pid_t squatter = squat(saved);
  ASSERT_EQ(squatter, saved) << "could not take the PID for the test";
  reaper.add(squatter);

  json r = frost_json({"recover"}, home.path());
  ASSERT_EQ(r["recovered"].size(), 1u) << r.dump();
  const json& p = r["recovered"][0];
  pid_t host = p.value("pid", 0);
  reaper.add(host);
  reaper.add(p.value("ns_init", 0));
  EXPECT_TRUE(p.value("pidns", false)) << p.dump();
  EXPECT_NE(host, saved);
  EXPECT_EQ(p.value("ns_pid", 0), saved);
  EXPECT_EQ(own_pid_inside(host), saved);
  int before = count_lines(out, "PASS verified");
  ASSERT_EQ(::kill(host, SIGUSR1), 0);
  ASSERT_TRUE(eventually([&] { return count_lines(out, "PASS verified") > before; })) << slurp(out);

  // Its next image keeps the ids it sees: a freeze, then a melt into another
  // new namespace (the squatter still holds the PID) gives it the same PID again.
  json frozen = frost_json({"freeze", "ns"}, home.path());
  ASSERT_EQ(frozen.value("snapshot", uint64_t(0)) != 0, true) << frozen.dump();
  Reaper::kill_and_reap(host);
  json melted = frost_json({"melt", "ns", "--pidns", "--eager"}, home.path());
  pid_t host2 = melted.value("pid", 0);
  reaper.add(host2);
  reaper.add(melted.value("ns_init", 0));
  EXPECT_EQ(own_pid_inside(host2), saved);
  before = count_lines(out, "PASS verified");
  ASSERT_EQ(::kill(host2, SIGUSR1), 0);
  ASSERT_TRUE(eventually([&] { return count_lines(out, "PASS verified") > before; })) << slurp(out);
}

}  // namespace
}  // namespace frost::testing
