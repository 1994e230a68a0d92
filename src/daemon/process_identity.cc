#include "daemon/process_identity.h"

#include <fstream>

#include "proc/proc_status.h"

namespace frost::daemon {

const std::string& boot_id() {
  static const std::string id = [] {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string s;
    std::getline(in, s);
    return s;
  }();
  return id;
}

Result<ProcessIdentity> identify(pid_t pid) {
  FROST_ASSIGN(proc::ProcStat st, proc::read_stat(pid));
  return ProcessIdentity{st.start_time, boot_id()};
}

bool still_running(pid_t pid, const ProcessIdentity& id) {
  if (pid <= 0 || id.boot_id != boot_id()) return false;
  Result<proc::ProcStat> st = proc::read_stat(pid);
  if (!st.ok()) return false;
  return st->start_time == id.start_ticks && st->state != 'Z' && st->state != 'X';
}

}  // namespace frost::daemon
