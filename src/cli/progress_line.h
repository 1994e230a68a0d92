// The progress line of a long freeze or melt: silent for the first second,
// then one line on stderr rewritten in place ("\r") when stderr is a
// terminal, or a new line every few seconds when it is not.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "dump/progress.h"

namespace frost::cli {

class ProgressLine {
 public:
  explicit ProgressLine(std::string verb);
  ~ProgressLine() { done(); }
  // The callback to hand to capture() / melt().
  ProgressFn callback();
  // Ends the line if one was printed.
  void done();

 private:
  void update(uint64_t done, uint64_t total);
  using Clock = std::chrono::steady_clock;
  std::string verb_;
  Clock::time_point start_, last_;
  bool tty_ = false, shown_ = false;
};

}  // namespace frost::cli
