// memfds (memfd_create). One the process also maps is the shared object the
// memory dump stores once: the fd opens that object again at melt. One it
// only holds an fd to keeps its bytes in the image, like a deleted file.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

#include "fds/handlers.h"
#include "fds/reopen.h"
#include "proc/proc_maps.h"

namespace frost::fds {
namespace {

constexpr std::string_view kPrefix = "/memfd:";
constexpr uint64_t kMaxUnmappedBytes = 64ull << 20;

uint64_t dev_key(dev_t dev) { return (uint64_t(major(dev)) << 32) | minor(dev); }

Result<bool> mapped_shared(pid_t pid, const OpenFd& fd) {
  FROST_ASSIGN(std::vector<proc::MemoryArea> areas, proc::read_maps(pid));
  for (const proc::MemoryArea& a : areas) {
    if (a.shared && a.inode == fd.st.st_ino && a.dev_major == major(fd.st.st_dev) &&
        a.dev_minor == minor(fd.st.st_dev)) {
      return true;
    }
  }
  return false;
}

class MemfdHandler final : public FdHandler {
 public:
  std::string_view kind() const override { return "memfd"; }
  bool matches(const OpenFd& fd) const override { return S_ISREG(fd.st.st_mode) && fd.link.starts_with(kPrefix); }
  Result<std::vector<uint8_t>> dump(const OpenFd& fd, DumpContext& ctx) const override {
    FdPayload p = path_payload(fd);
    p.path = fd.path().substr(kPrefix.size());
    p.dev = dev_key(fd.st.st_dev);
    FROST_ASSIGN(bool mapped, mapped_shared(ctx.pid, fd));
    if (mapped) return p.encode();
    if (uint64_t(fd.st.st_size) > kMaxUnmappedBytes) {
      return Error(ErrorKind::kUnsupported, fmt::format("fd {} is a memfd of {} bytes that is not mapped (at most {} MiB are stored)",
                                                        fd.fd, fd.st.st_size, kMaxUnmappedBytes >> 20));
    }
    UniqueFd in(::open(fd_proc_path(ctx.pid, fd.fd).c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return Error::io(fmt::format("opening memfd of fd {}", fd.fd));
    p.content.resize(size_t(fd.st.st_size));
    ssize_t n = ::pread(in.get(), p.content.data(), p.content.size(), 0);
    if (n < 0) return Error::io(fmt::format("reading memfd of fd {}", fd.fd));
    p.content.resize(size_t(n));
    p.mode = 1;  // content present
    return p.encode();
  }
  Result<UniqueFd> restore(const image::FdImage& img, RestoreContext& ctx) const override {
    FROST_ASSIGN(FdPayload p, FdPayload::decode(img.payload));
    int object = ctx.options.shared_memory ? ctx.options.shared_memory(p.dev, p.inode) : -1;
    if (object >= 0) return reopen(fmt::format("/proc/self/fd/{}", object), p.flags, p.pos);
    if (p.mode != 1) return Error::corruption(fmt::format("fd {}: memfd '{}' is neither mapped nor stored", img.fd, p.path));
    UniqueFd fd(::memfd_create(p.path.c_str(), MFD_CLOEXEC));
    if (!fd) return Error::io(fmt::format("creating memfd '{}'", p.path));
    for (size_t done = 0; done < p.content.size();) {
      ssize_t n = ::write(fd.get(), p.content.data() + done, p.content.size() - done);
      if (n <= 0) return Error::io(fmt::format("filling memfd '{}'", p.path));
      done += size_t(n);
    }
    return reopen(fmt::format("/proc/self/fd/{}", fd.get()), p.flags, p.pos);
  }
};

}  // namespace

const FdHandler& memfd_handler() { static const MemfdHandler h; return h; }

}  // namespace frost::fds
