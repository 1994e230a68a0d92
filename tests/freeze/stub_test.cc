// The melt's stub before frost seizes it: born sharing the melting
// process's memory, it execs a program of a few hundred bytes, so nothing of
// the melting process (here: this test, holding 256 MiB) reaches it, and it
// has the fds, close-on-exec flags, signal dispositions, personality, cwd and
// umask of its plan, which exec would otherwise have undone.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/unique_fd.h"
#include "harness.h"
#include "restore/stub.h"

namespace frost::testing {
namespace {

// A PID no process or thread has, well above the ones being handed out.
pid_t free_pid() {
  pid_t last = 0;
  std::ifstream("/proc/sys/kernel/ns_last_pid") >> last;
  pid_t max = 0;
  std::ifstream("/proc/sys/kernel/pid_max") >> max;
  for (pid_t p = std::min(last + 5000, max - 1); p > 300; --p) {
    if (::kill(p, 0) != 0 && errno == ESRCH && !fs::exists(fmt::format("/proc/{}", p))) return p;
  }
  return 0;
}

std::string status_field(pid_t pid, const std::string& key) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      return v.substr(v.find_first_not_of(" \t"));
    }
  }
  return "";
}

uint64_t hex_field(pid_t pid, const std::string& key) { return std::stoull(status_field(pid, key), nullptr, 16); }

// The octal flags of one fd, from fdinfo.
unsigned fd_flags(pid_t pid, int fd) {
  std::ifstream in(fmt::format("/proc/{}/fdinfo/{}", pid, fd));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags:", 0) == 0) return unsigned(std::stoul(line.substr(6), nullptr, 8));
  }
  return ~0u;
}

uint64_t bit(int sig) { return 1ull << (sig - 1); }

class StubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "creating a process at a chosen PID needs root";
    // The melting process is large, as frostd can be.
    big_ = ::mmap(nullptr, kBig, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(big_, MAP_FAILED);
    std::memset(big_, 0x5a, kBig);
  }
  void TearDown() override {
    if (big_ != nullptr && big_ != MAP_FAILED) ::munmap(big_, kBig);
  }
  static constexpr size_t kBig = 256ull << 20;
  void* big_ = nullptr;
};

restore::StubPlan basic_plan(pid_t pid) {
  restore::StubPlan plan;
  plan.pid = pid;
  plan.cwd = "/tmp";
  plan.umask = 027;
  plan.personality = ADDR_NO_RANDOMIZE;
  plan.session = restore::StubPlan::Session::kOwnGroup;
  plan.helper_base = 20;
  image::SigactionImage caught{0x401234, SA_RESTART | SA_SIGINFO | 0x04000000 /*SA_RESTORER*/, 0x405678, bit(SIGINT)};
  plan.sigactions[SIGUSR1 - 1] = caught;
  plan.sigactions[SIGPIPE - 1] = {uint64_t(uintptr_t(SIG_IGN)), 0, 0, 0};
  plan.sigactions[SIGCHLD - 1] = {0, SA_NOCLDSTOP, 0, 0};
  return plan;
}

TEST_F(StubTest, HasItsPlanAndNothingOfTheMeltingProcess) {
  pid_t pid = free_pid();
  ASSERT_GT(pid, 0);
  int p[2];
  ASSERT_EQ(::pipe2(p, 0), 0);
  UniqueFd r(p[0]), w(p[1]);
  UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(null);
  restore::StubPlan plan = basic_plan(pid);
  plan.fd_from = {r.get(), null.get()};
  plan.fd_to = {10, 11};
  plan.fd_cloexec = {1, 0};
  Result<restore::Stub> stub = restore::Stub::spawn(plan);
  ASSERT_TRUE(stub.ok()) << stub.error().message();
  ASSERT_EQ(stub->pid(), pid);

  // Only the program, its stack and the kernel's areas: not this test's binary, libc or buffer.
  std::string maps = slurp(fmt::format("/proc/{}/maps", pid));
  EXPECT_EQ(maps.find("lib"), std::string::npos) << maps;
  EXPECT_EQ(maps.find(fs::read_symlink("/proc/self/exe").string()), std::string::npos) << maps;
  int lines = 0;
  for (char c : maps) lines += c == '\n';
  EXPECT_LE(lines, 6) << maps;
  EXPECT_LT(std::stoul(status_field(pid, "VmRSS")), 1024u) << "kB";  // this test holds 256 MiB

  EXPECT_EQ(fd_flags(pid, 10) & O_CLOEXEC, unsigned(O_CLOEXEC));
  EXPECT_EQ(fd_flags(pid, 11) & O_CLOEXEC, 0u);
  EXPECT_EQ(fd_flags(pid, 11) & O_ACCMODE, unsigned(O_WRONLY));
  // Nothing else is open: not the status pipe, not the program, not this test's fds.
  int fds = 0;
  for (const auto& e : fs::directory_iterator(fmt::format("/proc/{}/fd", pid))) fds += e.path().filename() != "";
  EXPECT_EQ(fds, 3) << "10, 11 and the status pipe above the helpers";
  EXPECT_TRUE(fs::exists(fmt::format("/proc/{}/fd/20", pid)));

  EXPECT_EQ(hex_field(pid, "SigCgt"), bit(SIGUSR1));
  EXPECT_EQ(hex_field(pid, "SigIgn"), bit(SIGPIPE));
  EXPECT_EQ(hex_field(pid, "SigBlk"), ~0ull & ~(bit(SIGKILL) | bit(SIGSTOP)));
  EXPECT_EQ(std::stoul(slurp(fmt::format("/proc/{}/personality", pid)), nullptr, 16), unsigned(ADDR_NO_RANDOMIZE));
  EXPECT_EQ(fs::read_symlink(fmt::format("/proc/{}/cwd", pid)), "/tmp");
  EXPECT_EQ(status_field(pid, "Umask"), "0027");
  EXPECT_EQ(::getpgid(pid), pid);
  // In pause(), waiting to be seized (it reports just before).
  for (int i = 0; i < 200 && process_state(pid) != 'S'; ++i) ::usleep(10000);
  EXPECT_EQ(process_state(pid), 'S');
  stub->kill();
  EXPECT_NE(::kill(pid, 0), 0) << "killed and reaped";
}

TEST_F(StubTest, AStepThatFailsIsNamedAndLeavesNoProcess) {
  pid_t pid = free_pid();
  ASSERT_GT(pid, 0);
  restore::StubPlan plan = basic_plan(pid);
  plan.cwd = "/nonexistent/frost-stub-test";
  Result<restore::Stub> stub = restore::Stub::spawn(plan);
  ASSERT_FALSE(stub.ok());
  EXPECT_NE(stub.error().message().find("changing to the working directory"), std::string::npos)
      << stub.error().message();
  EXPECT_NE(::kill(pid, 0), 0) << "the failed stub was reaped";
}

}  // namespace
}  // namespace frost::testing
