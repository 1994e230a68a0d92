// ProcessImage <-> bytes: the blob a snapshot keeps as its metadata
// (Store::put_meta). Layout in docs/IMAGE.md; field numbers in image_schema.h.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "image/process_image.h"

namespace frost::image {

// Always writes the current format version; never fails.
std::vector<uint8_t> encode(const ProcessImage& image);

// Parses a blob written by any version with the same major. Unknown fields are
// skipped and missing ones keep their defaults. Hostile bytes give kCorruption
// (or kUnsupported for another major version), never a crash, and memory use is
// bounded by a small multiple of the blob's size.
Result<ProcessImage> decode(std::span<const uint8_t> blob);

}  // namespace frost::image
