// The process a melt builds: a child of frost created with clone3 at the
// saved PID (set_tid), which prepares what it can do itself and then waits in
// pause() for frost to seize it and drive the rest with remote system calls.
//
// What the stub does itself, before frost touches it: die with frost
// (PR_SET_PDEATHSIG), put the restored fds and frost's helper fds at their
// numbers, chdir, umask, session and process group, rlimits, signal
// dispositions. These are per process and need no memory of the image.
// Everything that does (mappings, threads, registers) comes later.
//
// It is born sharing frost's memory (vfork_clone) and execs a tiny program
// (stub_program.h), so a melt never copies frost's page tables, whatever
// frost holds, and nothing of frost's memory is ever in the new process.
// Before exec it runs on frost's memory while other frost threads may hold
// locks (malloc's), so it makes raw system calls only: everything it needs
// is laid out in the StubPlan before the clone.
#pragma once

#include <sys/types.h>

#include <array>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "image/process_image.h"

namespace frost::restore {

struct StubPlan {
  pid_t pid = 0;                       // the PID to take
  bool new_pidns = false;              // born in a new PID namespace (its parent is outside)
  // fds to install: frost's fd -> the number in the process.
  std::vector<int> fd_from, fd_to;
  std::vector<uint8_t> fd_cloexec;
  // frost's helper fds (mapped files, memfds, exe...), placed from helper_base on.
  std::vector<int> helpers;
  int helper_base = 0;
  std::string cwd;
  uint32_t umask = 022;
  uint32_t personality = 0;
  enum class Session { kKeep, kNewSession, kOwnGroup, kJoinGroup };
  Session session = Session::kKeep;
  pid_t pgid = 0;                      // kJoinGroup
  int foreground_tty = -1;             // a helper index: make the process the terminal's foreground
  bool controlling_tty = false;        // and first its controlling terminal (a new session's, kNewSession)
  std::vector<image::Rlimit> rlimits;
  std::array<image::SigactionImage, image::kSignalCount> sigactions{};
};

// A stub that exists and waits; killed (and reaped) on destruction unless released.
class Stub {
 public:
  Stub() = default;
  Stub(Stub&& o) noexcept : pid_(std::exchange(o.pid_, 0)) {}
  Stub& operator=(Stub&&) = delete;
  ~Stub() { kill(); }
  pid_t pid() const { return pid_; }
  void kill();
  void release() { pid_ = 0; }

  // Creates the stub and waits until it has done its part. kExists names a
  // taken PID; other failures say which step the stub could not do.
  static Result<Stub> spawn(const StubPlan& plan);

 private:
  explicit Stub(pid_t pid) : pid_(pid) {}
  pid_t pid_ = 0;
};

}  // namespace frost::restore
