// What /proc says about the open file descriptors of a live process.
//
// Everything here is read without stopping the process: the fd table can
// change underneath, so the dumper reads it again once every thread is held.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace frost::fds {

struct OpenFd {
  int fd = -1;
  std::string link;        // readlink(/proc/PID/fd/N): a path, "pipe:[ino]", "socket:[ino]"...
  uint32_t flags = 0;      // file status flags (O_ACCMODE, O_APPEND...), without O_CLOEXEC
  bool cloexec = false;    // FD_CLOEXEC
  uint64_t pos = 0;        // file offset
  struct stat st {};       // stat() of the open file (through /proc/PID/fd/N)
  bool deleted() const;    // a file unlinked while open
  std::string path() const;  // link without a " (deleted)" suffix
};

// Every open fd of pid, ascending.
Result<std::vector<OpenFd>> list_open_fds(pid_t pid);

// "/proc/PID/fd/N".
std::string fd_proc_path(pid_t pid, int fd);

// A name for the kind of file an fd refers to, for messages: "unix socket",
// "eventfd", "character device 1:3"...
std::string describe(const OpenFd& fd);

}  // namespace frost::fds
