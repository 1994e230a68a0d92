#include "fds/fd_table.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "fds/fd_payload.h"
#include "fds/handlers.h"

namespace frost::fds {
namespace {

constexpr std::string_view kDupKind = "dup";

const FdHandler* const* handlers() {
  static const FdHandler* const table[] = {
      &memfd_handler(), &file_handler(), &deleted_file_handler(), &dir_handler(), &char_device_handler(),
      &tty_handler(),  &pipe_handler(),         nullptr,
  };
  return table;
}

Error unsupported_fd(const OpenFd& fd) {
  return Error(ErrorKind::kUnsupported,
               fmt::format("fd {} is {}: frost cannot freeze this kind of file descriptor", fd.fd,
                           describe(fd)));
}

// The lowest fd before index i that shares fds[i]'s open file, or -1.
int shared_with(pid_t pid, const std::vector<OpenFd>& fds, size_t i) {
  for (size_t j = 0; j < i; ++j) {
    if (fds[j].st.st_ino != fds[i].st.st_ino || fds[j].st.st_dev != fds[i].st.st_dev) continue;
    if (::syscall(SYS_kcmp, pid, pid, KCMP_FILE, fds[j].fd, fds[i].fd) == 0) return fds[j].fd;
  }
  return -1;
}

}  // namespace

const FdHandler* handler_for(const OpenFd& fd) {
  for (const FdHandler* const* h = handlers(); *h != nullptr; ++h) {
    if ((*h)->matches(fd)) return *h;
  }
  return nullptr;
}

const FdHandler* handler_named(std::string_view kind) {
  for (const FdHandler* const* h = handlers(); *h != nullptr; ++h) {
    if ((*h)->kind() == kind) return *h;
  }
  return nullptr;
}

Status check_fds(pid_t pid) {
  Result<std::vector<OpenFd>> listed = list_open_fds(pid);
  if (!listed.ok() && listed.error().err() == EACCES) {
    return Error(ErrorKind::kIo, fmt::format("process {} may not be traced by this user (its fds are not readable)", pid), EACCES);
  }
  FROST_ASSIGN(std::vector<OpenFd> fds, std::move(listed));
  DumpContext ctx{pid, &fds};
  for (const OpenFd& fd : fds) {
    const FdHandler* h = handler_for(fd);
    if (h == nullptr) return unsupported_fd(fd);
    FROST_TRY(h->check(fd, ctx));
  }
  return Status::Ok();
}

Result<std::vector<image::FdImage>> dump_fds(pid_t pid) {
  FROST_ASSIGN(std::vector<OpenFd> fds, list_open_fds(pid));
  DumpContext ctx{pid, &fds};
  std::vector<image::FdImage> out;
  for (size_t i = 0; i < fds.size(); ++i) {
    const OpenFd& fd = fds[i];
    image::FdImage img;
    img.fd = fd.fd;
    img.flags = fd.cloexec ? FD_CLOEXEC : 0;
    if (int first = shared_with(pid, fds, i); first >= 0) {
      FdPayload p;
      p.dup_of = first;
      img.kind = kDupKind;
      img.payload = p.encode();
      out.push_back(std::move(img));
      continue;
    }
    const FdHandler* h = handler_for(fd);
    if (h == nullptr) return unsupported_fd(fd);
    FROST_TRY(h->check(fd, ctx));
    Result<std::vector<uint8_t>> payload = h->dump(fd, ctx);
    if (!payload.ok()) return payload.error().context(fmt::format("fd {}", fd.fd));
    img.kind = std::string(h->kind());
    img.payload = std::move(payload).value();
    out.push_back(std::move(img));
  }
  return out;
}

Result<std::vector<RestoredFd>> restore_fds(const std::vector<image::FdImage>& fds,
                                            const RestoreOptions& options) {
  RestoreContext ctx;
  ctx.options = options;
  std::vector<RestoredFd> out;
  for (const image::FdImage& img : fds) {
    RestoredFd r;
    r.target = img.fd;
    r.cloexec = (img.flags & FD_CLOEXEC) != 0;
    if (img.kind == kDupKind) {
      FROST_ASSIGN(FdPayload p, FdPayload::decode(img.payload));
      auto it = std::find_if(out.begin(), out.end(), [&](const RestoredFd& o) { return o.target == p.dup_of; });
      if (it == out.end()) return Error::corruption(fmt::format("fd {} shares fd {}, which the image lacks", img.fd, p.dup_of));
      r.fd.reset(::fcntl(it->fd.get(), F_DUPFD_CLOEXEC, 0));
      if (!r.fd) return Error::io(fmt::format("duplicating fd {}", p.dup_of));
    } else {
      const FdHandler* h = handler_named(img.kind);
      if (h == nullptr) {
        return Error(ErrorKind::kUnsupported, fmt::format("fd {} is of a kind this frost does not know ({})", img.fd, img.kind));
      }
      Result<UniqueFd> fd = h->restore(img, ctx);
      if (!fd.ok()) return fd.error().context(fmt::format("fd {}", img.fd));
      r.fd = std::move(fd).value();
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace frost::fds
