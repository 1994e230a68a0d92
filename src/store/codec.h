// Per-block compression. A block is stored compressed only when that saves at
// least kMinSaving bytes; otherwise raw, so reads of incompressible data stay cheap.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "store/format.h"

namespace frost::store {

inline constexpr size_t kMinSaving = 256;

// Compresses src into out with codec. Returns the codec actually used
// (kNone when compression did not pay; out then holds nothing).
Codec compress_block(Codec codec, int zstd_level, std::span<const uint8_t> src, std::vector<uint8_t>& out);

// Decompresses src into dst, which must be exactly the original size.
Status decompress_block(Codec codec, std::span<const uint8_t> src, std::span<uint8_t> dst);

bool is_zero(std::span<const uint8_t> data);

const char* codec_name(Codec c);

}  // namespace frost::store
