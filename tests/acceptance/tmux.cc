#include "tmux.h"

namespace frost::acceptance {

Tmux::~Tmux() {
  if (started_) (void)run(argv({"kill-server"}), {}, seconds(30));
}

Outcome Tmux::command(const std::vector<std::string>& args) {
  started_ = true;
  return run(argv(args));
}

std::string Tmux::query(const std::vector<std::string>& args) {
  Outcome r = command(args);
  EXPECT_EQ(r.exit_code, 0) << "tmux " << args.front() << ": " << r;
  return r.out.substr(0, r.out.find('\n'));
}

std::string Tmux::screen(const std::string& pane) {
  return command({"capture-pane", "-p", "-J", "-S", "-200", "-t", pane}).out;
}

std::vector<std::string> Tmux::argv(const std::vector<std::string>& args) const {
  // -f /dev/null: no user or system configuration changes the panes.
  std::vector<std::string> a{"/usr/bin/tmux", "-f", "/dev/null", "-S", socket_.string()};
  a.insert(a.end(), args.begin(), args.end());
  return a;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : split_lines(text)) {
    if (l == line) return true;
  }
  return false;
}

std::string last_text_line(const std::string& screen) {
  std::vector<std::string> lines = split_lines(screen);
  while (!lines.empty() && lines.back().find_first_not_of(' ') == std::string::npos) lines.pop_back();
  if (lines.empty()) return "";
  return lines.back().substr(0, lines.back().find_last_not_of(' ') + 1);
}

void TmuxBashTestBase::type_and_wait(const std::string& pane, const std::string& keys, const std::string& marker) {
  ASSERT_EQ(tmux_.command({"send-keys", "-t", pane, "-l", keys}).exit_code, 0);
  ASSERT_EQ(tmux_.command({"send-keys", "-t", pane, "Enter"}).exit_code, 0);
  ASSERT_TRUE(poll_until([&] { return has_line(tmux_.screen(pane), marker); }))
      << "no line '" << marker << "' after typing '" << keys << "'; screen:\n" << tmux_.screen(pane);
}

pid_t TmuxBashTestBase::query_pid(const std::string& target, const std::string& format) {
  return pid_t(std::stol("0" + tmux_.query({"display-message", "-p", "-t", target, format})));
}

pid_t TmuxBashTestBase::start_bash() {
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

void TmuxBashTestBase::wait_for_prompt(const std::string& pane) {
  ASSERT_TRUE(poll_until([&] { return last_text_line(tmux_.screen(pane)) == "$"; })) << tmux_.screen(pane);
}

void TmuxBashTestBase::wait_pane_dead(const std::string& pane) {
  ASSERT_TRUE(poll_until([&] { return tmux_.query({"display-message", "-p", "-t", pane, "#{pane_dead}"}) == "1"; }))
      << "the pane " << pane << " is not dead";
}

void TmuxBashTestBase::kill_server_expect_gone(pid_t bash, pid_t frost_pid) {
  Outcome killed = tmux_.command({"kill-server"});
  EXPECT_EQ(killed.exit_code, 0) << killed;
  EXPECT_TRUE(janitor_.wait_gone(bash, std::chrono::seconds(30))) << "bash " << bash << " outlived the tmux server";
  EXPECT_TRUE(janitor_.wait_gone(frost_pid, std::chrono::seconds(30)))
      << "frost " << frost_pid << " outlived the tmux server";
}

std::pair<std::string, pid_t> TmuxBashTestBase::melt_in_new_window(pid_t bash) {
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

}  // namespace frost::acceptance
