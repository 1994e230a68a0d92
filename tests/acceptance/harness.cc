#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace frost::acceptance {

// --- files and waiting ---------------------------------------------------------

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "frost-accept-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
}

size_t count_lines(std::string_view text) { return size_t(std::count(text.begin(), text.end(), '\n')); }

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool poll_until(const std::function<bool()>& done, milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// --- starting processes --------------------------------------------------------

namespace {

// Everything the child needs, built before fork so the child only makes system calls.
struct ExecPlan {
  std::vector<std::string> argv_storage, env_storage;
  std::vector<char*> argv, envp;

  ExecPlan(const std::vector<std::string>& args, const std::vector<std::string>& env) : argv_storage(args) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view kv(*e);
      bool overridden = false;
      for (const std::string& o : env) overridden |= kv.starts_with(o.substr(0, o.find('=') + 1));
      if (!overridden) env_storage.emplace_back(kv);
    }
    env_storage.insert(env_storage.end(), env.begin(), env.end());
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
};

bool redirect(const fs::path& path, int flags, int target) {
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) return false;
  if (fd != target && (::dup2(fd, target) < 0 || ::close(fd) < 0)) return false;
  return true;
}

[[noreturn]] void exec_child(const ExecPlan& plan, const Stdio& stdio) {
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  const int out_flags = O_WRONLY | O_CREAT | O_TRUNC;  // as a shell's `>` opens it
  if (!redirect(stdio.in, O_RDONLY, 0) || !redirect(stdio.out, out_flags, 1) ||
      !redirect(stdio.err, out_flags, 2)) {
    ::_exit(126);
  }
  ::close_range(3, ~0u, 0);
  ::execve(plan.argv[0], plan.argv.data(), plan.envp.data());
  ::_exit(127);
}

}  // namespace

pid_t spawn(const std::vector<std::string>& argv, const Stdio& stdio, const std::vector<std::string>& env) {
  ExecPlan plan(argv, env);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) exec_child(plan, stdio);
  return pid;
}

// --- looking at processes ------------------------------------------------------

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  std::string s = slurp(fs::path("/proc") / std::to_string(pid) / "stat");
  // comm may hold spaces and parentheses: the fields start after the last ')'.
  size_t close = s.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  size_t open = s.find('(');
  if (open == std::string::npos || open > close) return std::nullopt;
  std::istringstream in(s.substr(close + 2));
  ProcStat st;
  st.comm = s.substr(open + 1, close - open - 1);
  std::string skip;
  in >> st.state >> st.ppid;
  for (int field = 5; field < 22; ++field) in >> skip;  // pgrp .. itrealvalue
  in >> st.start_time;
  if (!in) return std::nullopt;
  return st;
}

pid_t tracer_of(pid_t pid) {
  std::string s = slurp(fs::path("/proc") / std::to_string(pid) / "status");
  size_t at = s.find("TracerPid:");
  if (at == std::string::npos) return -1;
  return pid_t(std::stol(s.substr(at + 10)));
}

std::optional<int> wait_exit(pid_t pid, milliseconds timeout) {
  int status = 0;
  bool not_ours = false;
  bool reaped = poll_until(
      [&] {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        not_ours = r < 0 && errno == ECHILD;
        return r == pid || not_ours;
      },
      timeout);
  if (!reaped || not_ours) return std::nullopt;
  return status;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + ::strsignal(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

void become_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    throw std::runtime_error(std::string("PR_SET_CHILD_SUBREAPER: ") + std::strerror(errno));
  }
}

// --- the janitor -----------------------------------------------------------------

void ProcessJanitor::track(pid_t pid) {
  std::optional<ProcStat> st = read_proc_stat(pid);
  if (!st) return;  // already gone: nothing to clean up
  std::erase_if(tracked_, [pid](const Tracked& t) { return t.pid == pid; });
  tracked_.push_back({pid, st->start_time});
}

bool ProcessJanitor::gone(const Tracked& t) const {
  ::waitpid(t.pid, nullptr, WNOHANG);  // reaps it if it is our zombie; harmless otherwise
  std::optional<ProcStat> st = read_proc_stat(t.pid);
  return !st || st->start_time != t.start_time;
}

bool ProcessJanitor::wait_gone(pid_t pid, milliseconds timeout) {
  for (const Tracked& t : tracked_) {
    if (t.pid == pid) return poll_until([&] { return gone(t); }, timeout);
  }
  return read_proc_stat(pid) == std::nullopt;
}

ProcessJanitor::~ProcessJanitor() {
  for (const Tracked& t : tracked_) {
    if (!gone(t)) ::kill(t.pid, SIGKILL);
  }
  // A killed process that is not our child is reaped by its own parent.
  for (const Tracked& t : tracked_) poll_until([&] { return gone(t); }, seconds(10));
}

// --- running commands --------------------------------------------------------------

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "exit " << o.exit_code << "\n--- stdout:\n" << o.out << "--- stderr:\n" << o.err;
}

Outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& env, milliseconds timeout) {
  TempDir scratch;
  Stdio stdio{"/dev/null", scratch.path() / "out", scratch.path() / "err"};
  pid_t pid = spawn(argv, stdio, env);
  std::optional<int> status = wait_exit(pid, timeout);
  Outcome r;
  if (!status) {
    ::kill(pid, SIGKILL);
    status = wait_exit(pid, seconds(10));
    r.err = "[acceptance harness: killed after the timeout]\n";
  }
  if (status && WIFEXITED(*status)) r.exit_code = WEXITSTATUS(*status);
  r.out = slurp(stdio.out);
  r.err += slurp(stdio.err);
  return r;
}

std::optional<int64_t> json_int(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\"\\s*:\\s*(-?[0-9]+)"))) return std::nullopt;
  return std::stoll(m[1].str());
}

// --- the fixture -------------------------------------------------------------------

void AcceptanceTest::SetUp() {
  become_subreaper();
  fs::create_directories(home());
}

pid_t AcceptanceTest::start(const std::vector<std::string>& argv, const Stdio& stdio,
                            const std::vector<std::string>& env) {
  pid_t pid = spawn(argv, stdio, env);
  janitor_.track(pid);
  return pid;
}

Outcome AcceptanceTest::frost(const std::vector<std::string>& args) {
  std::vector<std::string> argv{FROST_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {frost_home_env()});
}

int64_t AcceptanceTest::freeze(pid_t pid, const std::string& name, bool our_child) {
  Outcome r = frost({"freeze", std::to_string(pid), "--name", name, "--json"});
  EXPECT_EQ(r.exit_code, 0) << "frost freeze " << pid << ": " << r;
  EXPECT_EQ(json_int(r.out, "pid"), pid) << r;
  if (!our_child) return json_int(r.out, "snapshot").value_or(-1);
  std::optional<int> status = wait_exit(pid);
  EXPECT_TRUE(status.has_value()) << "pid " << pid << " still not ended after frost freeze";
  if (status) {
    EXPECT_TRUE(WIFSIGNALED(*status)) << "frozen process ended with " << describe_status(*status);
  }
  return json_int(r.out, "snapshot").value_or(-1);
}

void AcceptanceTest::melt(const std::string& name, pid_t pid) {
  Outcome r = frost({"melt", name, "--json"});
  ASSERT_EQ(r.exit_code, 0) << "frost melt " << name << ": " << r;
  EXPECT_EQ(json_int(r.out, "pid"), pid) << r;
  janitor_.track(pid);
  // A lazy melt: its page server (adopted by us once `frost melt` exited)
  // is the process's parent until every page is in; then the process is ours.
  if (std::optional<int64_t> pager = json_int(r.out, "pager_pid"); pager && *pager > 0) {
    std::optional<int> served = wait_exit(pid_t(*pager));
    ASSERT_TRUE(served.has_value()) << "the page server " << *pager << " of " << name << " did not finish";
    EXPECT_TRUE(WIFEXITED(*served) && WEXITSTATUS(*served) == 0)
        << "page server of " << name << ": " << describe_status(*served);
  }
  // `frost melt` has exited: its child, the melted process, is now ours.
  std::optional<ProcStat> st = read_proc_stat(pid);
  ASSERT_TRUE(st.has_value()) << "melted pid " << pid << " does not exist";
  EXPECT_EQ(st->ppid, ::getpid()) << "melted pid " << pid << " was not adopted by the test";
}

}  // namespace frost::acceptance
