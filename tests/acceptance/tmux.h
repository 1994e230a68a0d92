// An interactive bash in a pane of a private tmux server, for the tests that
// freeze or crash a shell and melt it into another pane: typing into panes,
// reading their screens, and `frost melt --shell-job` in a new window.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "harness.h"

namespace frost::acceptance {

// A tmux server on a private socket, ended (by that socket) when the test ends.
class Tmux {
 public:
  explicit Tmux(fs::path socket) : socket_(std::move(socket)) {}
  ~Tmux();
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  Outcome command(const std::vector<std::string>& args);
  // A command's first output line; empty (and a test failure) if it failed.
  std::string query(const std::vector<std::string>& args);
  std::string screen(const std::string& pane);

 private:
  std::vector<std::string> argv(const std::vector<std::string>& args) const;
  fs::path socket_;
  bool started_ = false;
};

bool has_line(const std::string& text, const std::string& line);
// The screen's last line with text, without trailing blanks (the prompt "$ " reads "$").
std::string last_text_line(const std::string& screen);

class TmuxBashTestBase : public AcceptanceTest {
 protected:
  // Types a line into pane, then waits until `marker` is a line of its own there.
  void type_and_wait(const std::string& pane, const std::string& keys, const std::string& marker);
  pid_t query_pid(const std::string& target, const std::string& format);
  // A session whose one pane (kFirstPane) runs bash (no rc files, a private
  // history file, a plain prompt for matching); returns bash's pid.
  pid_t start_bash();
  // Waits until bash is back at its prompt, waiting for a command line.
  void wait_for_prompt(const std::string& pane);
  // Waits until the pane's process has ended (remain-on-exit keeps the pane).
  void wait_pane_dead(const std::string& pane);
  // frost melt --shell-job in a new window; returns its pane id and frost's pid
  // once bash runs again there (by name: frost's stub is not bash yet), untraced.
  std::pair<std::string, pid_t> melt_in_new_window(pid_t bash);
  // Ends the tmux server, which hangs up both terminals: bash and the frost
  // that melted it (melt_in_new_window) must end with it.
  void kill_server_expect_gone(pid_t bash, pid_t frost_pid);

  static constexpr const char* kFirstPane = "acc:0.0";
  Tmux tmux_{dir() / "sock"};  // destroyed before the janitor: kill-server first
};

}  // namespace frost::acceptance
