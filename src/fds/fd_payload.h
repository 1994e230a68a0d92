// The payload the handlers store in FdImage::payload: one message of the
// image wire format (image_wire.h), each handler using the fields it needs.
// Unknown tags are skipped, so a handler may add fields later.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace frost::fds {

struct FdPayload {
  std::string path;              // file, dir, chr, tty
  uint32_t flags = 0;            // open flags (O_ACCMODE, O_APPEND, O_NONBLOCK...)
  uint64_t pos = 0;
  uint64_t dev = 0, inode = 0, rdev = 0;
  uint32_t mode = 0;             // st_mode
  std::vector<uint8_t> content;  // a deleted file's bytes, a pipe's buffered bytes
  uint32_t pipe_size = 0;        // F_GETPIPE_SZ
  bool read_end_held = false, write_end_held = false;  // pipe ends the process holds
  int32_t dup_of = -1;           // "dup": the lower fd sharing this open file

  std::vector<uint8_t> encode() const;
  static Result<FdPayload> decode(std::span<const uint8_t> bytes);
};

}  // namespace frost::fds
