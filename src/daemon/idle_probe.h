// The weak policy's question: is the process idle? It is when every thread
// sleeps (state S) and none used CPU time since the previous look, so a
// snapshot cannot cut into work in progress. A thread in D (an I/O or
// device access under way) is not idle.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace frost::daemon {

class IdleProbe {
 public:
  // nullopt when the process was idle between the previous look and this
  // one; otherwise why not ("thread 12 is running"). The first look only
  // records, and reports "first look".
  std::optional<std::string> look(pid_t pid);
  void forget() { cpu_ns_.clear(); }

 private:
  std::map<pid_t, uint64_t> cpu_ns_;  // per thread, at the last look
};

}  // namespace frost::daemon
