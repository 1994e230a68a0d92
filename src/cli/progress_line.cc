#include "cli/progress_line.h"

#include <unistd.h>

#include <fmt/format.h>

namespace frost::cli {

ProgressLine::ProgressLine(std::string verb)
    : verb_(std::move(verb)), start_(Clock::now()), last_(start_), tty_(::isatty(STDERR_FILENO) == 1) {}

ProgressFn ProgressLine::callback() {
  return [this](uint64_t done, uint64_t total) { update(done, total); };
}

void ProgressLine::update(uint64_t done, uint64_t total) {
  Clock::time_point now = Clock::now();
  if (total == 0 || now - start_ < std::chrono::seconds(1)) return;
  if (now - last_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(5000)) && shown_) return;
  last_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  double mib = double(done) / (1 << 20);
  int pct = total > 0 ? int(100.0 * double(done) / double(total)) : 0;
  std::string line = fmt::format("{}: {:.0f} MiB of {:.0f} MiB ({}%), {:.0f} MiB/s", verb_, mib,
                                 double(total) / (1 << 20), std::min(pct, 100), mib / secs);
  if (tty_) {
    fmt::print(stderr, "\r{}\033[K", line);
  } else {
    fmt::print(stderr, "{}\n", line);
  }
  std::fflush(stderr);
  shown_ = true;
}

void ProgressLine::done() {
  if (shown_ && tty_) fmt::print(stderr, "\n");
  shown_ = false;
}

}  // namespace frost::cli
