// Whether a frost thread's work may take CPU time from the processes it
// serves. A periodic snapshot is background work: while the process runs,
// frost's threads take only what no one else wants (SCHED_IDLE), so on a
// machine with a spare core the process does not lose its own; the short
// stop itself runs at normal priority, so the pause stays short however
// busy the machine is. Measured in docs/PERFORMANCE.md (persist_bench).
//
// Per thread: a scope changes the calling thread only, and WorkerPool runs
// each batch at its submitter's class.
#pragma once

#include <sched.h>

namespace frost {

enum class CpuClass { kNormal, kBackground };

inline CpuClass current_cpu_class() {
  return ::sched_getscheduler(0) == SCHED_IDLE ? CpuClass::kBackground : CpuClass::kNormal;
}

// The calling thread's class. Leaving SCHED_IDLE needs privilege (or an
// RLIMIT_NICE that allows nice 0): without it the thread stays in the
// background, which costs time, never correctness.
inline bool set_cpu_class(CpuClass c) {
  if (current_cpu_class() == c) return true;
  sched_param none{};
  return ::sched_setscheduler(0, c == CpuClass::kBackground ? SCHED_IDLE : SCHED_OTHER, &none) == 0;
}

// Sets a class for a while; the thread's class at entry comes back at the end.
class CpuClassScope {
 public:
  explicit CpuClassScope(CpuClass c) : entry_(current_cpu_class()) { set_cpu_class(c); }
  ~CpuClassScope() { set_cpu_class(entry_); }
  CpuClassScope(const CpuClassScope&) = delete;
  CpuClassScope& operator=(const CpuClassScope&) = delete;
  void set(CpuClass c) { set_cpu_class(c); }

 private:
  CpuClass entry_;
};

}  // namespace frost
