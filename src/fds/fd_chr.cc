// Character devices without state worth keeping: /dev/null, /dev/zero,
// /dev/full, /dev/random, /dev/urandom. Reopened by path; the device number
// is checked so a path that now names something else is refused.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fmt/format.h>

#include "fds/handlers.h"
#include "fds/reopen.h"

namespace frost::fds {
namespace {

bool is_memory_device(dev_t rdev) {
  // mem driver (major 1): null 3, zero 5, full 7, random 8, urandom 9.
  if (major(rdev) != 1) return false;
  unsigned m = minor(rdev);
  return m == 3 || m == 5 || m == 7 || m == 8 || m == 9;
}

class CharDeviceHandler final : public FdHandler {
 public:
  std::string_view kind() const override { return "chr"; }
  bool matches(const OpenFd& fd) const override {
    return S_ISCHR(fd.st.st_mode) && is_memory_device(fd.st.st_rdev);
  }
  Result<std::vector<uint8_t>> dump(const OpenFd& fd, DumpContext&) const override {
    return path_payload(fd).encode();
  }
  Result<UniqueFd> restore(const image::FdImage& img, RestoreContext&) const override {
    FROST_ASSIGN(FdPayload p, FdPayload::decode(img.payload));
    FROST_ASSIGN(UniqueFd fd, reopen(p.path, p.flags, 0));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != p.rdev) {
      return Error::invalid(fmt::format("{} is no longer character device {}:{}", p.path,
                                        major(p.rdev), minor(p.rdev)));
    }
    return fd;
  }
};

}  // namespace

const FdHandler& char_device_handler() { static const CharDeviceHandler h; return h; }

}  // namespace frost::fds
