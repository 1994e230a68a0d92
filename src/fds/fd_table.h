// The fd layer: a process's whole fd table through the handler table.
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "fds/fd_handler.h"
#include "image/process_image.h"

namespace frost::fds {

// Before anything is stopped: fails naming the first fd frost cannot freeze
// (its number and kind), so the process is never held for a freeze that
// cannot succeed.
Status check_fds(pid_t pid);

// Every fd of the stopped process, ascending. An fd that shares its open
// file with a lower one (dup, fork) is stored as kind "dup" naming that fd,
// so the restored fds share offset and flags again.
Result<std::vector<image::FdImage>> dump_fds(pid_t pid);

struct RestoredFd {
  int target = -1;   // the fd number in the restored process
  UniqueFd fd;       // open here, in frost
  bool cloexec = false;
};

// Opens, in frost, one fd per saved fd (a "dup" shares the file of the fd it
// names). Fails naming the first fd that cannot be restored.
Result<std::vector<RestoredFd>> restore_fds(const std::vector<image::FdImage>& fds,
                                            const RestoreOptions& options);

}  // namespace frost::fds
