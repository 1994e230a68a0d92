// An interactive bash in a tmux pane, frozen and melted as a shell job into
// another pane: its variables, functions, history and cwd live only in its
// memory, and it must keep reading commands from its new terminal.
#include <regex>

#include "tmux.h"

namespace frost::acceptance {
namespace {

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

class TmuxBashTest : public TmuxBashTestBase {};

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
  ASSERT_NO_FATAL_FAILURE(wait_for_prompt(kFirstPane));

  freeze(bash, "bash", /*our_child=*/false);  // tmux reaps it
  ASSERT_NO_FATAL_FAILURE(wait_pane_dead(kFirstPane));
  auto [pane, frost_pid] = melt_in_new_window(bash);
  ASSERT_FALSE(HasFailure());

  ASSERT_NO_FATAL_FAILURE(type_and_wait(pane, "echo \"$FROSTVAR\"; history | tail -5", "hello42"));
  ASSERT_NO_FATAL_FAILURE(type_and_wait(pane, "greet 2; echo cwd-$(pwd -P)", "cwd-" + work.string()));
  ASSERT_NO_FATAL_FAILURE(type_and_wait(pane, "echo done-$((6*7))", "done-42"));
  std::string screen = tmux_.screen(pane);
  EXPECT_TRUE(has_line(screen, "hi-2")) << screen;
  for (const Typed& t : before) EXPECT_TRUE(has_history_entry(screen, t.keys)) << t.keys << " not in:\n" << screen;

  // Ending the server hangs up both terminals: bash and frost must end with it.
  kill_server_expect_gone(bash, frost_pid);
}

}  // namespace
}  // namespace frost::acceptance
