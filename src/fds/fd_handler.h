// One handler per kind of file descriptor, chosen from a table (as CRIU's
// files-reg.c, pipes.c, tty.c each register their operations): adding a kind
// never touches the others.
//
// The fd layer (fd_table.h) calls, for each fd of a process:
//   check()   before the process is stopped: can this fd be frozen at all?
//   dump()    while it is stopped: the handler's payload for the image;
//   restore() in frost, before the new process exists: an fd, opened here,
//             that the restorer installs at the saved number.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "fds/open_fd.h"
#include "image/process_image.h"

namespace frost::fds {

struct DumpContext {
  pid_t pid = 0;
  const std::vector<OpenFd>* fds = nullptr;  // every fd of the process
};

struct RestoreOptions {
  // Terminal fds are attached to this fd (the caller's terminal); without it a
  // terminal fd cannot be restored (frost melt --shell-job).
  int shell_job_tty = -1;
  // The object frost made again for shared memory the process maps, by the
  // saved device ((major << 32) | minor) and inode; -1 when not mapped. An fd
  // of a mapped memfd must open that object, not a copy.
  std::function<int(uint64_t dev, uint64_t inode)> shared_memory;
};

// State a handler keeps across the fds of one restore (e.g. both ends of a pipe).
struct HandlerState {
  virtual ~HandlerState() = default;
};

struct RestoreContext {
  RestoreOptions options;
  std::map<std::string, std::unique_ptr<HandlerState>, std::less<>> state;  // by handler kind
  // Files frost created that the restored process must not find on disk
  // (a deleted file is re-created, opened and unlinked again).
  template <typename T>
  T& state_of(std::string_view kind) {
    auto it = state.find(kind);
    if (it == state.end()) it = state.emplace(std::string(kind), std::make_unique<T>()).first;
    return static_cast<T&>(*it->second);
  }
};

class FdHandler {
 public:
  virtual ~FdHandler() = default;
  // The key stored in FdImage::kind.
  virtual std::string_view kind() const = 0;
  virtual bool matches(const OpenFd& fd) const = 0;
  // Called before the process is stopped; an error names why this fd cannot be frozen.
  virtual Status check(const OpenFd& fd, const DumpContext& ctx) const {
    (void)fd, (void)ctx;
    return Status::Ok();
  }
  virtual Result<std::vector<uint8_t>> dump(const OpenFd& fd, DumpContext& ctx) const = 0;
  virtual Result<UniqueFd> restore(const image::FdImage& fd, RestoreContext& ctx) const = 0;
};

// The handler for a live fd, or nullptr when frost cannot freeze its kind.
const FdHandler* handler_for(const OpenFd& fd);
// The handler that wrote an image's fd, or nullptr for an unknown kind.
const FdHandler* handler_named(std::string_view kind);

}  // namespace frost::fds
