#include "daemon/daemon_harness.h"

#include <signal.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>

namespace frost::testing {

bool eventually(const std::function<bool()>& pred, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

bool daemon_answers(const fs::path& home) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = (home / "frostd.sock").string();
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

Frostd::Frostd(const fs::path& home, std::vector<std::string> args) : home_(home) {
  pid_ = ::fork();
  if (pid_ == 0) {
    int n = ::open("/dev/null", O_RDWR);
    int e = ::open((home / "frostd.err").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (n < 0 || e < 0 || ::dup2(n, 0) < 0 || ::dup2(n, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(127);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    ::setenv("FROST_HOME", home.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(FROSTD_PATH)};
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(FROSTD_PATH, argv.data());
    ::_exit(127);
  }
  up_ = eventually([&] { return daemon_answers(home_); }, 20000);
}

Frostd::~Frostd() {
  if (pid_ > 0 && stop() < 0) kill_hard();
}

void Frostd::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

int Frostd::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  bool done = eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 20000);
  if (!done) return -1;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Frostd::log() const { return slurp(home_ / "frostd.err"); }

json frost_json(const std::vector<std::string>& args, const fs::path& home) {
  std::vector<std::string> with = args;
  with.insert(with.begin() + 1, "--json");  // before any "-- COMMAND"
  Outcome r = frost(with, home);
  EXPECT_EQ(r.exit_code, 0) << "frost " << args.front() << ": " << r.err;
  try {
    return json::parse(r.out);
  } catch (const json::exception& e) {
    ADD_FAILURE() << "frost " << args.front() << " printed no JSON: " << r.out << r.err;
    return json::object();
  }
}

std::vector<json> log_records(const std::string& name, const fs::path& home) {
  Outcome r = frost({"log", name, "--json"}, home);
  if (r.exit_code != 0) return {};
  json j = json::parse(r.out);
  return j.at("records").get<std::vector<json>>();
}

uint64_t last_logged_commit(const std::string& name, const fs::path& home) {
  uint64_t last = 0;
  for (const json& r : log_records(name, home)) {
    if (r.contains("snapshot")) last = std::max(last, r["snapshot"].get<uint64_t>());
  }
  return last;
}

void Reaper::kill_and_reap(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  // Ours (or an orphan we adopted as subreaper): reap it. Someone else's: it goes by itself.
  eventually([&] {
    pid_t r = ::waitpid(pid, nullptr, WNOHANG | __WALL);
    return r == pid || (r < 0 && errno == ECHILD);
  }, 5000);
}

Reaper::~Reaper() {
  for (pid_t pid : pids_) kill_and_reap(pid);
}

int count_lines(const fs::path& file, const std::string& prefix) {
  std::istringstream in(slurp(file));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) ++n;
  }
  return n;
}

}  // namespace frost::testing
