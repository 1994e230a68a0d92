// An interactive bash in a tmux pane, frozen and melted as a shell job into
// another pane: its variables, functions, history and cwd live only in its
// memory, and it must keep reading commands from its new terminal.
#include <regex>

#include "harness.h"

namespace frost::acceptance {
namespace {

// A tmux server on a private socket, ended (by that socket) when the test ends.
class Tmux {
 public:
  explicit Tmux(fs::path socket) : socket_(std::move(socket)) {}
  ~Tmux() {
    if (started_) (void)run(argv({"kill-server"}), {}, seconds(30));
  }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  Outcome command(const std::vector<std::string>& args) {
    started_ = true;
    return run(argv(args));
  }
  // A command's first output line; empty (and a test failure) if it failed.
  std::string query(const std::vector<std::string>& args) {
    Outcome r = command(args);
    EXPECT_EQ(r.exit_code, 0) << "tmux " << args.front() << ": " << r;
    return r.out.substr(0, r.out.find('\n'));
  }
  std::string screen(const std::string& pane) {
    return command({"capture-pane", "-p", "-J", "-S", "-200", "-t", pane}).out;
  }

 private:
  std::vector<std::string> argv(const std::vector<std::string>& args) const {
    // -f /dev/null: no user or system configuration changes the panes.
    std::vector<std::string> a{"/usr/bin/tmux", "-f", "/dev/null", "-S", socket_.string()};
    a.insert(a.end(), args.begin(), args.end());
    return a;
  }
  fs::path socket_;
  bool started_ = false;
};

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : split_lines(text)) {
    if (l == line) return true;
  }
  return false;
}

// The screen's last line with text, without trailing blanks (the prompt "$ " reads "$").
std::string last_text_line(const std::string& screen) {
  std::vector<std::string> lines = split_lines(screen);
  while (!lines.empty() && lines.back().find_first_not_of(' ') == std::string::npos) lines.pop_back();
  if (lines.empty()) return "";
  return lines.back().substr(0, lines.back().find_last_not_of(' ') + 1);
}

// A `history` line: "  N  COMMAND".
bool has_history_entry(const std::string& text, const std::string& command) {
  for (const std::string& l : split_lines(text)) {
    std::smatch m;
    if (std::regex_match(l, m, std::regex(R"(\s*[0-9]+\s+(.*))")) && m[1] == command) return true;
  }
  return false;
}

// A command typed before the freeze: it leaves state that only bash's memory
// holds (a variable, a function, the cwd) and an entry in its history.
struct Typed {
  std::string keys;
  std::string output;  // a line it prints
};

class TmuxBashTest : public AcceptanceTest {
 protected:
  // Types a line into pane, then waits until `marker` is a line of its own there.
  void type_and_wait(const std::string& pane, const std::string& keys, const std::string& marker) {
    ASSERT_EQ(tmux_.command({"send-keys", "-t", pane, "-l", keys}).exit_code, 0);
    ASSERT_EQ(tmux_.command({"send-keys", "-t", pane, "Enter"}).exit_code, 0);
    ASSERT_TRUE(poll_until([&] { return has_line(tmux_.screen(pane), marker); }))
        << "no line '" << marker << "' after typing '" << keys << "'; screen:\n" << tmux_.screen(pane);
  }

  pid_t query_pid(const std::string& target, const std::string& format) {
    return pid_t(std::stol("0" + tmux_.query({"display-message", "-p", "-t", target, format})));
  }

  // A session whose one pane runs bash (no rc files, a private history file,
  // a plain prompt for matching); returns bash's pid.
  pid_t start_bash() {
    Outcome started = tmux_.command({"new-session", "-d", "-x", "200", "-y", "50", "-s", "acc", "/usr/bin/env",
                                     "HISTFILE=" + (dir() / "history").string(), "PS1=$ ", "/bin/bash", "--norc",
                                     "--noprofile", "-i"});
    EXPECT_EQ(started.exit_code, 0) << started;
    // When the frozen bash ends, its pane must stay, and with it the session and the server.
    EXPECT_EQ(tmux_.command({"set-option", "-g", "remain-on-exit", "on"}).exit_code, 0);
    janitor_.track(query_pid("acc", "#{pid}"));  // the server, adopted by us
    pid_t bash = query_pid(kFirstPane, "#{pane_pid}");
    if (bash > 0) janitor_.track(bash);
    return bash;
  }

  // frost melt --shell-job in a new window; returns its pane id and frost's pid
  // once bash runs again there (by name: frost's stub is not bash yet), untraced.
  std::pair<std::string, pid_t> melt_in_new_window(pid_t bash) {
    Outcome window = tmux_.command({"new-window", "-P", "-F", "#{pane_id} #{pane_pid}", "-t", "acc", "/usr/bin/env",
                                    frost_home_env(), FROST_CLI_PATH, "melt", "bash", "--shell-job"});
    EXPECT_EQ(window.exit_code, 0) << window;
    std::string pane = window.out.substr(0, window.out.find(' '));
    pid_t frost_pid = pid_t(std::stol("0" + window.out.substr(window.out.find(' ') + 1)));
    if (frost_pid > 0) janitor_.track(frost_pid);
    bool melted = poll_until([&] {
      std::optional<ProcStat> st = read_proc_stat(bash);
      return st && st->comm == "bash" && st->ppid == frost_pid && tracer_of(bash) == 0;
    });
    EXPECT_TRUE(melted) << "bash " << bash << " never ran under frost melt " << frost_pid << "; pane:\n"
                        << tmux_.screen(pane);
    janitor_.track(bash);
    return {pane, frost_pid};
  }

  static constexpr const char* kFirstPane = "acc:0.0";
  Tmux tmux_{dir() / "sock"};  // destroyed before the janitor: kill-server first
};

TEST_F(TmuxBashTest, InteractiveBashMeltedAsShellJobKeepsItsState) {
  fs::path work = fs::canonical(dir()) / "workdir-7f3a";
  fs::create_directories(work);
  const std::vector<Typed> before = {
      {"FROSTVAR=hello42; echo set-$FROSTVAR", "set-hello42"},
      {"greet() { echo \"hi-$1\"; }; greet 1", "hi-1"},
      {"cd " + work.string() + " && echo in-$((2+3))", "in-5"},
  };
  pid_t bash = start_bash();
  ASSERT_FALSE(HasFailure());
  for (const Typed& t : before) ASSERT_NO_FATAL_FAILURE(type_and_wait(kFirstPane, t.keys, t.output));
  // The prompt after the last command: bash is back in readline, waiting.
  ASSERT_TRUE(poll_until([&] { return last_text_line(tmux_.screen(kFirstPane)) == "$"; }))
      << tmux_.screen(kFirstPane);

  freeze(bash, "bash", /*our_child=*/false);  // tmux reaps it
  ASSERT_TRUE(poll_until([&] { return tmux_.query({"display-message", "-p", "-t", kFirstPane, "#{pane_dead}"}) == "1"; }))
      << "the frozen bash's pane is not dead";
  auto [pane, frost_pid] = melt_in_new_window(bash);
  ASSERT_FALSE(HasFailure());

  ASSERT_NO_FATAL_FAILURE(type_and_wait(pane, "echo \"$FROSTVAR\"; history | tail -5", "hello42"));
  ASSERT_NO_FATAL_FAILURE(type_and_wait(pane, "greet 2; echo cwd-$(pwd -P)", "cwd-" + work.string()));
  ASSERT_NO_FATAL_FAILURE(type_and_wait(pane, "echo done-$((6*7))", "done-42"));
  std::string screen = tmux_.screen(pane);
  EXPECT_TRUE(has_line(screen, "hi-2")) << screen;
  for (const Typed& t : before) EXPECT_TRUE(has_history_entry(screen, t.keys)) << t.keys << " not in:\n" << screen;

  // Ending the server hangs up both terminals: bash and frost must end with it.
  Outcome killed = tmux_.command({"kill-server"});
  EXPECT_EQ(killed.exit_code, 0) << killed;
  EXPECT_TRUE(janitor_.wait_gone(bash, seconds(30))) << "bash " << bash << " outlived the tmux server";
  EXPECT_TRUE(janitor_.wait_gone(frost_pid, seconds(30))) << "frost " << frost_pid << " outlived the tmux server";
}

}  // namespace
}  // namespace frost::acceptance
