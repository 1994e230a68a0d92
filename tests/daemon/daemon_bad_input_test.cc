// Bad input around the daemon: each is one clear line and a non-zero exit,
// and loses nothing (the registry, the store and running processes stay).
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "daemon/daemon_harness.h"

namespace frost::testing {
namespace {

const std::string kRewriter = std::string(FROST_PROGRAMS_DIR) + "/st_rewriter";

void expect_one_line(const Outcome& r, const std::string& part) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(part), std::string::npos) << r.err;
}

TEST(DaemonBadInput, SecondFrostdOnTheSameStoreIsRefused) {
  TempDir home;
  Frostd first(home.path());
  ASSERT_TRUE(first.up()) << first.log();
  Outcome second = run_binary(FROSTD_PATH, {}, home.path());
  EXPECT_EQ(second.exit_code, 2);
  EXPECT_NE(second.err.find("held by another frostd"), std::string::npos) << second.err;
  EXPECT_EQ(std::count(second.err.begin(), second.err.end(), '\n'), 1) << second.err;
  EXPECT_TRUE(daemon_answers(home.path())) << "the first daemon lost its socket";
  EXPECT_EQ(first.stop(), 0);
}

// A socket file left by a frostd that died: the CLI works on the store
// directly, and the next frostd takes the path over.
TEST(DaemonBadInput, StaleSocketIsReplaced) {
  TempDir home;
  ASSERT_EQ(::chmod(home.path().c_str(), 0700), 0);
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = (home.path() / "frostd.sock").string();
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);  // bound, never listening: nobody answers
  }
  Reaper reaper;
  json r = frost_json({"run", "--name", "sl", "--every", "off", "--", "/bin/sleep", "1000"}, home.path());
  reaper.add(r.value("pid", 0));
  EXPECT_FALSE(r.value("daemon", true));
  Frostd d(home.path());
  ASSERT_TRUE(d.up()) << d.log();
  json list = frost_json({"snapshot", "sl"}, home.path());
  EXPECT_EQ(list.value("name", ""), "sl");
}

TEST(DaemonBadInput, RunOfACommandThatDoesNotExist) {
  TempDir home;
  Outcome r = frost({"run", "--name", "ghost", "--", "/no/such/command", "x"}, home.path());
  expect_one_line(r, "cannot run '/no/such/command': No such file or directory");
  std::string reg = slurp(home.path() / "registry.json");
  EXPECT_EQ(reg.find("ghost"), std::string::npos) << reg;
  // With a daemon, the same.
  Frostd d(home.path());
  ASSERT_TRUE(d.up());
  expect_one_line(frost({"run", "--", "no-such-command-on-path"}, home.path()), "cannot run 'no-such-command-on-path'");
}

// The registry names a process whose snapshots are all damaged: recover
// says so for it, melts nothing, and keeps the entry and the store as they were.
TEST(DaemonBadInput, RegistryEntryWhoseSnapshotIsDamaged) {
  TempDir home;
  pid_t pid = 0;
  {
    Reaper reaper;
    json r = frost_json({"run", "--name", "dmg", "--every", "off", "--", kRewriter, "8M", "0.1"}, home.path());
    pid = r.value("pid", 0);
    reaper.add(pid);
  }  // killed: a crash
  fs::path store = home.path() / "store";
  flip_bytes(store, 1 << 20, 4096);  // every block past the first MiB
  std::string registry = slurp(home.path() / "registry.json");
  uint64_t bytes = fs::file_size(store);
  Outcome r = frost({"recover"}, home.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("dmg"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no intact snapshot"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(process_state(pid), 0) << "something was melted from a damaged snapshot";
  EXPECT_EQ(slurp(home.path() / "registry.json"), registry);
  EXPECT_EQ(fs::file_size(store), bytes);
}

// SO_PEERCRED: another user may reach the socket but not act on root's process.
TEST(DaemonBadInput, AnotherUserMayNotActOnRootsProcess) {
  passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  TempDir home;
  Frostd d(home.path());
  ASSERT_TRUE(d.up()) << d.log();
  Reaper reaper;
  json r = frost_json({"run", "--name", "mine", "--every", "off", "--", "/bin/sleep", "1000"}, home.path());
  pid_t pid = r.value("pid", 0);
  reaper.add(pid);
  // Open the way to the socket for the test only.
  ASSERT_EQ(::chmod(home.path().c_str(), 0711), 0);
  ASSERT_EQ(::chmod((home.path() / "frostd.sock").c_str(), 0666), 0);
  TempDir scratch;
  ASSERT_EQ(::chmod(scratch.path().c_str(), 0777), 0);
  pid_t child = ::fork();
  if (child == 0) {
    int e = ::open((scratch.path() / "err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (e < 0 || ::dup2(e, 2) < 0 || ::setgid(nobody->pw_gid) != 0 || ::setuid(nobody->pw_uid) != 0) ::_exit(100);
    ::setenv("FROST_HOME", home.path().c_str(), 1);
    ::execl(FROST_CLI_PATH, FROST_CLI_PATH, "freeze", "mine", nullptr);
    ::_exit(101);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  std::string err = slurp(scratch.path() / "err");
  EXPECT_NE(err.find("permission denied"), std::string::npos) << err;
  EXPECT_TRUE(running_untouched(pid));
}

}  // namespace
}  // namespace frost::testing
