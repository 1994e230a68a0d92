#include "lazy/userfault.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "common/kernel_compat.h"

namespace frost::lazy {

Status Userfault::handshake(uint64_t features) {
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = features;
  if (::ioctl(fd_.get(), UFFDIO_API, &api) != 0) {
    return Error(ErrorKind::kUnsupported, fmt::format("userfaultfd without features {:#x}", features), errno);
  }
  return Status::Ok();
}

Status Userfault::register_missing(uint64_t start, uint64_t end) {
  uffdio_register reg{};
  reg.range = {start, end - start};
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (::ioctl(fd_.get(), UFFDIO_REGISTER, &reg) != 0) {
    return Error::io(fmt::format("registering {:#x}-{:#x} for missing-page faults", start, end));
  }
  if (!(reg.ioctls & (1ull << _UFFDIO_COPY)) || !(reg.ioctls & (1ull << _UFFDIO_ZEROPAGE))) {
    return Error(ErrorKind::kUnsupported, fmt::format("{:#x}-{:#x} cannot be filled by userfaultfd", start, end));
  }
  return Status::Ok();
}

// The kernel writes the bytes it placed (or -errno) into the struct; the
// ioctl fails with EAGAIN after a partial placement.
Placed Userfault::copy(uint64_t dst, const void* src, uint64_t len, bool dont_wake) {
  uffdio_copy c{};
  c.dst = dst;
  c.src = reinterpret_cast<uint64_t>(src);
  c.len = len;
  c.mode = dont_wake ? UFFDIO_COPY_MODE_DONTWAKE : 0;
  if (::ioctl(fd_.get(), UFFDIO_COPY, &c) == 0) return {len, 0};
  int err = errno;
  if (c.copy > 0) return {uint64_t(c.copy), 0};
  return {0, err};
}

Placed Userfault::zero(uint64_t dst, uint64_t len) {
  uffdio_zeropage z{};
  z.range = {dst, len};
  if (::ioctl(fd_.get(), UFFDIO_ZEROPAGE, &z) == 0) return {len, 0};
  int err = errno;
  if (z.zeropage > 0) return {uint64_t(z.zeropage), 0};
  return {0, err};
}

void Userfault::wake(uint64_t start, uint64_t len) {
  uffdio_range r{start, len};
  (void)::ioctl(fd_.get(), UFFDIO_WAKE, &r);
}

Result<bool> Userfault::read(uffd_msg* msg) {
  for (;;) {
    ssize_t n = ::read(fd_.get(), msg, sizeof *msg);
    if (n == sizeof *msg) return true;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return false;
    return Error::io("reading a userfaultfd message", n < 0 ? errno : EIO);
  }
}

}  // namespace frost::lazy
