// Bad input to freeze and melt: each is one clear line and a non-zero exit;
// no process is left stopped, traced or killed; the store is unchanged.
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "harness.h"

namespace frost::testing {
namespace {

std::string program_path(const std::string& name) { return std::string(FROST_PROGRAMS_DIR) + "/st_" + name; }

std::string listing(const fs::path& home) { return frost({"ls", "--json"}, home).out; }

// A digest of the store file's bytes (0 when there is none).
size_t store_bytes(const fs::path& home) { return std::hash<std::string>{}(slurp(home / "store")); }

// Where the last non-zero byte of a file is (the end of what was written).
uint64_t written_extent(const fs::path& file) {
  std::string bytes = slurp(file);
  size_t last = bytes.find_last_not_of('\0');
  return last == std::string::npos ? 0 : last + 1;
}

// SIGUSR1, then the program must still pass its own check: it was left untouched.
void expect_still_passes(Program& p, const std::string& name) {
  ASSERT_EQ(::kill(p.pid(), SIGUSR1), 0);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_NE(p.output().find("PASS " + name), std::string::npos) << p.output();
}

TEST(FreezeBadInput, NoSuchProcess) {
  TempDir home;
  pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ::waitpid(gone, nullptr, 0);
  expect_one_line_error(frost({"freeze", std::to_string(gone)}, home.path()), "does not exist");
  EXPECT_EQ(listing(home.path()).find("\"name\""), std::string::npos);
}

TEST(FreezeBadInput, NotAProcessId) {
  TempDir home;
  Outcome r = frost({"freeze", "calc"}, home.path());
  expect_one_line_error(r, "not a process id");
}

TEST(FreezeBadInput, KernelThread) {
  TempDir home;
  ASSERT_EQ(slurp("/proc/2/comm"), "kthreadd\n");
  expect_one_line_error(frost({"freeze", "2"}, home.path()), "kernel thread");
}

TEST(FreezeBadInput, FrostItself) {
  TempDir home;
  // The shell's pid becomes frost's with exec.
  Outcome r = run_binary("/bin/sh", {"-c", std::string("exec ") + FROST_CLI_PATH + " freeze $$"}, home.path());
  expect_one_line_error(r, "frost itself");
}

TEST(FreezeBadInput, Zombie) {
  TempDir home;
  pid_t z = ::fork();
  if (z == 0) ::_exit(0);
  ASSERT_TRUE([&] {
    for (int i = 0; i < 2000 && process_state(z) != 'Z'; ++i) ::usleep(1000);
    return process_state(z) == 'Z';
  }());
  expect_one_line_error(frost({"freeze", std::to_string(z)}, home.path()), "zombie");
  EXPECT_EQ(process_state(z), 'Z');
  ::waitpid(z, nullptr, 0);
}

TEST(FreezeBadInput, AlreadyTraced) {
  TempDir home, work;
  Program p(program_path("blocked_read"), work.path() / "out");
  ASSERT_TRUE(p.wait_ready());
  ASSERT_EQ(::ptrace(PTRACE_SEIZE, p.pid(), nullptr, nullptr), 0);
  expect_one_line_error(frost({"freeze", std::to_string(p.pid())}, home.path()), "already traced");
  EXPECT_EQ(tracer_of(p.pid()), ::getpid());
  // Detaching needs the tracee stopped.
  ASSERT_EQ(::ptrace(PTRACE_INTERRUPT, p.pid(), nullptr, nullptr), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(p.pid(), &status, __WALL), p.pid());
  ASSERT_EQ(::ptrace(PTRACE_DETACH, p.pid(), nullptr, nullptr), 0);
  EXPECT_TRUE(running_untouched(p.pid()));
  expect_still_passes(p, "blocked_read");
  EXPECT_EQ(listing(home.path()).find("\"name\""), std::string::npos);
}

TEST(FreezeBadInput, MayNotTrace) {
  TempDir home, work;
  Program p(program_path("blocked_read"), work.path() / "out");
  ASSERT_TRUE(p.wait_ready());
  // frost as an unprivileged user may not trace a root process.
  fs::permissions(home.path(), fs::perms::all);
  std::string cmd = std::string("exec setpriv --reuid=65534 --regid=65534 --clear-groups ") + FROST_CLI_PATH +
                    " freeze " + std::to_string(p.pid());
  Outcome r = run_binary("/bin/sh", {"-c", cmd}, home.path() / "nobody");
  expect_one_line_error(r, "may not be traced");
  EXPECT_TRUE(running_untouched(p.pid()));
  expect_still_passes(p, "blocked_read");
}

TEST(FreezeBadInput, UnsupportedFdLeavesTheProcessRunning) {
  TempDir home, work;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Program p(program_path("blocked_read"), work.path() / "out", {sv[0]});
  ::close(sv[0]);
  ::close(sv[1]);
  ASSERT_TRUE(p.wait_ready());
  Outcome r = frost({"freeze", std::to_string(p.pid())}, home.path());
  expect_one_line_error(r, "fd 3 is a socket");
  EXPECT_TRUE(running_untouched(p.pid()));
  expect_still_passes(p, "blocked_read");
  EXPECT_EQ(listing(home.path()).find("\"name\""), std::string::npos);
}

TEST(MeltBadInput, MissingName) {
  TempDir home;
  expect_one_line_error(frost({"melt", "nothing-here"}, home.path()), "no image named 'nothing-here'");
}

// A frozen program's image, its PID free again.
struct Frozen {
  TempDir home, work;
  std::unique_ptr<Program> program;
  pid_t pid = 0;
  std::vector<pid_t> other_tids;  // its threads but the leader, as frozen
  explicit Frozen(const std::string& name) {
    program = std::make_unique<Program>(program_path(name), work.path() / "out");
    EXPECT_TRUE(program->wait_ready());
    pid = program->pid();
    for (const auto& e : fs::directory_iterator(fs::path("/proc") / std::to_string(pid) / "task")) {
      pid_t tid = pid_t(std::stoi(e.path().filename().string()));
      if (tid != pid) other_tids.push_back(tid);
    }
    Outcome f = frost({"freeze", std::to_string(pid), "--name", "img"}, home.path());
    EXPECT_EQ(f.exit_code, 0) << f.err;
    program->reap_frozen();
  }
};

TEST(MeltBadInput, CorruptSnapshot) {
  Frozen frozen("blocked_read");
  fs::path store = frozen.home.path() / "store";
  flip_bytes(store, 1 << 20, 4096);  // every page-sized block past the first MiB
  size_t before = store_bytes(frozen.home.path());
  Outcome r = frost({"melt", "img"}, frozen.home.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.err.starts_with("frost: ")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(process_state(frozen.pid), 0) << "a half-melted process was left behind";
  EXPECT_EQ(store_bytes(frozen.home.path()), before);
}

TEST(MeltBadInput, TruncatedSnapshot) {
  Frozen frozen("blocked_read");
  fs::path store = frozen.home.path() / "store";
  fs::resize_file(store, written_extent(store) / 2);
  size_t before = store_bytes(frozen.home.path());
  Outcome r = frost({"melt", "img"}, frozen.home.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.err.starts_with("frost: ")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(process_state(frozen.pid), 0);
  EXPECT_EQ(store_bytes(frozen.home.path()), before);
}

TEST(MeltBadInput, PidTaken) {
  Frozen frozen("blocked_read");
  pid_t squatter = squat(frozen.pid);
  ASSERT_EQ(squatter, frozen.pid);
  size_t before = store_bytes(frozen.home.path());
  Outcome r = frost({"melt", "img"}, frozen.home.path());
  expect_one_line_error(r, "PID " + std::to_string(frozen.pid) + " is taken");
  EXPECT_EQ(store_bytes(frozen.home.path()), before);
  EXPECT_TRUE(running_untouched(squatter));
  ::kill(squatter, SIGKILL);
  ::waitpid(squatter, nullptr, 0);
  // Free again: now it melts, and is whole.
  Outcome m = frost({"melt", "img"}, frozen.home.path());
  ASSERT_EQ(m.exit_code, 0) << m.err;
  ASSERT_EQ(::kill(frozen.pid, SIGUSR1), 0);
  EXPECT_EQ(frozen.program->wait_exit(), 0) << frozen.program->output();
}

TEST(MeltBadInput, ThreadIdTaken) {
  Frozen frozen("threads_regs");
  // The image's second thread id.
  std::string img = frost({"ls", "--json"}, frozen.home.path()).out;
  ASSERT_NE(img.find("\"img\""), std::string::npos);
  // One of the image's other thread ids (not pid + 1: under load another
  // process may have taken that one before the program's first thread).
  ASSERT_FALSE(frozen.other_tids.empty());
  pid_t tid = frozen.other_tids.front();
  pid_t squatter = squat(tid);
  if (squatter != tid) GTEST_FAIL() << "could not take tid " << tid;
  Outcome r = frost({"melt", "img"}, frozen.home.path());
  expect_one_line_error(r, std::to_string(tid) + " is taken");
  EXPECT_EQ(process_state(frozen.pid), 0) << "a half-melted process was left behind";
  ::kill(squatter, SIGKILL);
  ::waitpid(squatter, nullptr, 0);
}

}  // namespace
}  // namespace frost::testing
