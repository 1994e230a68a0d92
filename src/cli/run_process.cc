#include "cli/run_process.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace frost::cli {

Result<pid_t> start_process(const std::vector<std::string>& argv, const std::string& output) {
  if (argv.empty()) return Error::invalid("no command given (frost run [options] -- COMMAND ARGS...)");
  UniqueFd out(::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!out) return Error::io("cannot open the output file " + output);
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null) return Error::io("cannot open /dev/null");
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return Error::io("pipe");
  UniqueFd report_r(pipefd[0]), report_w(pipefd[1]);
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return Error::io("fork");
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    ::setsid();
    ::dup2(null.get(), 0);
    ::dup2(out.get(), 1);
    ::dup2(out.get(), 2);
    int w = report_w.get();
    // Everything else goes, but the report pipe (close-on-exec) stays until exec.
    if (w > 3) ::syscall(SYS_close_range, 3, w - 1, 0);
    ::syscall(SYS_close_range, w + 1, ~0u, 0);
    ::execvp(cargv[0], cargv.data());
    int err = errno;
    (void)!::write(w, &err, sizeof err);
    ::_exit(127);
  }
  report_w.reset();
  int err = 0;
  ssize_t n;
  do {
    n = ::read(report_r.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n == ssize_t(sizeof err)) {
    ::waitpid(pid, nullptr, 0);
    return Error(ErrorKind::kNotFound, fmt::format("cannot run '{}': {}", argv[0], std::strerror(err)));
  }
  return pid;
}

Result<uint64_t> parse_interval_ms(const std::string& text) {
  if (text == "off" || text == "0") return uint64_t(0);
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string unit(end, text.data() + text.size());
  uint64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m" || unit == "min") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  if (ec != std::errc() || scale == 0 || value < 0) {
    return Error::invalid(fmt::format("'{}' is not an interval (e.g. 5s, 500ms, 2m)", text));
  }
  return uint64_t(value * double(scale));
}

}  // namespace frost::cli
