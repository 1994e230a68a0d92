#include "fds/fd_payload.h"

#include "image/image_wire.h"

namespace frost::fds {
namespace {
enum Tag : uint32_t {
  kPath = 1, kFlags = 2, kPos = 3, kDev = 4, kInode = 5, kRdev = 6, kMode = 7,
  kContent = 8, kPipeSize = 9, kReadHeld = 10, kWriteHeld = 11, kDupOf = 12,
};
}  // namespace

std::vector<uint8_t> FdPayload::encode() const {
  image::wire::Writer w;
  w.str_nz(kPath, path);
  w.u64_nz(kFlags, flags);
  w.u64_nz(kPos, pos);
  w.u64_nz(kDev, dev);
  w.u64_nz(kInode, inode);
  w.u64_nz(kRdev, rdev);
  w.u64_nz(kMode, mode);
  w.bytes_nz(kContent, content);
  w.u64_nz(kPipeSize, pipe_size);
  w.u64_nz(kReadHeld, read_end_held);
  w.u64_nz(kWriteHeld, write_end_held);
  if (dup_of >= 0) w.s64(kDupOf, dup_of);
  return w.take();
}

Result<FdPayload> FdPayload::decode(std::span<const uint8_t> bytes) {
  FdPayload p;
  image::wire::Reader r(bytes);
  while (!r.done()) {
    FROST_ASSIGN(image::wire::Field f, r.next());
    auto u = [&](auto& out) -> Status {
      FROST_ASSIGN(uint64_t v, image::wire::as_u64(f));
      out = static_cast<std::remove_reference_t<decltype(out)>>(v);
      return Status::Ok();
    };
    switch (f.tag) {
      case kPath: p.path = image::wire::as_string(f); break;
      case kFlags: FROST_TRY(u(p.flags)); break;
      case kPos: FROST_TRY(u(p.pos)); break;
      case kDev: FROST_TRY(u(p.dev)); break;
      case kInode: FROST_TRY(u(p.inode)); break;
      case kRdev: FROST_TRY(u(p.rdev)); break;
      case kMode: FROST_TRY(u(p.mode)); break;
      case kContent: p.content = image::wire::as_bytes(f); break;
      case kPipeSize: FROST_TRY(u(p.pipe_size)); break;
      case kReadHeld: FROST_TRY(u(p.read_end_held)); break;
      case kWriteHeld: FROST_TRY(u(p.write_end_held)); break;
      case kDupOf: {
        FROST_ASSIGN(int64_t v, image::wire::as_s64(f));
        p.dup_of = static_cast<int32_t>(v);
        break;
      }
      default: break;
    }
  }
  return p;
}

}  // namespace frost::fds
