// A ProcessImage as text, one fact per line, for `frost inspect` and for
// reading test failures (what crit is to CRIU's images).
#pragma once

#include <string>

#include "image/process_image.h"

namespace frost::image {

std::string to_text(const ProcessImage& image);

const char* area_kind_name(AreaKind kind);
const char* content_source_name(ContentSource source);
const char* syscall_restart_name(SyscallRestart restart);

}  // namespace frost::image
