// Small state files that must be whole after a crash: written to a
// temporary file, synced, renamed over the old one, and the directory synced.
#pragma once

#include <string>

#include "common/result.h"

namespace frost::daemon {

// Replaces path with text (mode 0600) so that a crash leaves either the old
// or the new content, never a mix.
Status write_file_atomically(const std::string& path, const std::string& text);

// The whole file; kNotFound when it does not exist.
Result<std::string> read_small_file(const std::string& path);

}  // namespace frost::daemon
