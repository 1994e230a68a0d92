// Steps the handlers share: opening a file again as it was open before.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "fds/fd_payload.h"
#include "fds/open_fd.h"

namespace frost::fds {

// The flags to open() with to get back an open file's status flags: the
// saved ones minus creation-time-only flags and O_CLOEXEC (the fd layer sets
// FD_CLOEXEC in the target).
int reopen_flags(uint32_t saved);

// Opens path with the saved flags and seeks to the saved offset.
Result<UniqueFd> reopen(const std::string& path, uint32_t flags, uint64_t pos);

// Path, flags, offset and identity of a live fd, the fields every
// path-based handler stores.
FdPayload path_payload(const OpenFd& fd);

}  // namespace frost::fds
