#include "store/codec.h"

#include <lz4.h>
#include <zstd.h>

#include <cstring>

namespace frost::store {

Codec compress_block(Codec codec, int zstd_level, std::span<const uint8_t> src, std::vector<uint8_t>& out) {
  out.clear();
  if (codec == Codec::kNone) return Codec::kNone;
  size_t limit = src.size() - kMinSaving;
  size_t n = 0;
  if (codec == Codec::kLz4) {
    out.resize(LZ4_compressBound(static_cast<int>(src.size())));
    int r = LZ4_compress_default(reinterpret_cast<const char*>(src.data()), reinterpret_cast<char*>(out.data()),
                                 static_cast<int>(src.size()), static_cast<int>(out.size()));
    n = r > 0 ? size_t(r) : 0;
  } else {
    // A thread-local context: creating one per page costs more than compressing it.
    thread_local ZSTD_CCtx* cctx = ZSTD_createCCtx();
    out.resize(ZSTD_compressBound(src.size()));
    size_t r = ZSTD_compressCCtx(cctx, out.data(), out.size(), src.data(), src.size(), zstd_level);
    n = ZSTD_isError(r) ? 0 : r;
  }
  if (n == 0 || n > limit) {
    out.clear();
    return Codec::kNone;
  }
  out.resize(n);
  return codec;
}

Status decompress_block(Codec codec, std::span<const uint8_t> src, std::span<uint8_t> dst) {
  switch (codec) {
    case Codec::kNone:
      if (src.size() != dst.size()) return Error::corruption("raw block has the wrong length");
      std::memcpy(dst.data(), src.data(), src.size());
      return Status::Ok();
    case Codec::kLz4: {
      int r = LZ4_decompress_safe(reinterpret_cast<const char*>(src.data()), reinterpret_cast<char*>(dst.data()),
                                  static_cast<int>(src.size()), static_cast<int>(dst.size()));
      if (r != static_cast<int>(dst.size())) return Error::corruption("lz4 block does not decompress");
      return Status::Ok();
    }
    case Codec::kZstd: {
      thread_local ZSTD_DCtx* dctx = ZSTD_createDCtx();
      size_t r = ZSTD_decompressDCtx(dctx, dst.data(), dst.size(), src.data(), src.size());
      if (ZSTD_isError(r) || r != dst.size()) return Error::corruption("zstd block does not decompress");
      return Status::Ok();
    }
  }
  return Error::corruption("unknown codec " + std::to_string(int(codec)));
}

bool is_zero(std::span<const uint8_t> data) {
  // Word-wise: pages are 4 KiB aligned in practice, and memcmp against a
  // zero page would read twice the memory.
  const uint8_t* p = data.data();
  size_t n = data.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w) return false;
  }
  for (; i < n; i++)
    if (p[i]) return false;
  return true;
}

const char* codec_name(Codec c) {
  switch (c) {
    case Codec::kNone: return "none";
    case Codec::kLz4: return "lz4";
    case Codec::kZstd: return "zstd";
  }
  return "?";
}

}  // namespace frost::store
