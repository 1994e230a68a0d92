// Regular files, files deleted while open, and directories.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "fds/fd_handler.h"
#include "fds/reopen.h"
#include "fds/handlers.h"

namespace frost::fds {
namespace {

// A deleted file's bytes go into the image; beyond this the image would
// carry a file, not a process.
constexpr uint64_t kMaxDeletedBytes = 64ull << 20;

// A file or directory that is still there: reopened by path at its offset.
class PathHandler final : public FdHandler {
 public:
  PathHandler(std::string_view kind, mode_t type, int extra_flags)
      : kind_(kind), type_(type), extra_flags_(extra_flags) {}
  std::string_view kind() const override { return kind_; }
  bool matches(const OpenFd& fd) const override { return (fd.st.st_mode & S_IFMT) == type_ && !fd.deleted(); }
  Result<std::vector<uint8_t>> dump(const OpenFd& fd, DumpContext&) const override {
    return path_payload(fd).encode();
  }
  Result<UniqueFd> restore(const image::FdImage& img, RestoreContext&) const override {
    FROST_ASSIGN(FdPayload p, FdPayload::decode(img.payload));
    return reopen(p.path, p.flags | uint32_t(extra_flags_), p.pos);
  }

 private:
  std::string_view kind_;
  mode_t type_;
  int extra_flags_;
};

// The content is stored; at melt the file is created again under its old name
// (or a free name beside it), opened, and unlinked, so the process again holds
// a file nobody else can open.
class DeletedFileHandler final : public FdHandler {
 public:
  std::string_view kind() const override { return "deleted-file"; }
  bool matches(const OpenFd& fd) const override { return S_ISREG(fd.st.st_mode) && fd.deleted(); }
  Status check(const OpenFd& fd, const DumpContext&) const override {
    if (static_cast<uint64_t>(fd.st.st_size) > kMaxDeletedBytes) {
      return Error(ErrorKind::kUnsupported,
                   fmt::format("fd {} is a deleted file of {} bytes (at most {} MiB are stored)", fd.fd,
                               fd.st.st_size, kMaxDeletedBytes >> 20));
    }
    return Status::Ok();
  }
  Result<std::vector<uint8_t>> dump(const OpenFd& fd, DumpContext& ctx) const override {
    FROST_TRY(check(fd, ctx));
    FdPayload p = path_payload(fd);
    std::string src = fd_proc_path(ctx.pid, fd.fd);
    UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return Error::io(fmt::format("opening deleted file of fd {}", fd.fd));
    p.content.resize(static_cast<size_t>(fd.st.st_size));
    size_t done = 0;
    while (done < p.content.size()) {
      ssize_t n = ::pread(in.get(), p.content.data() + done, p.content.size() - done, off_t(done));
      if (n < 0) return Error::io(fmt::format("reading deleted file of fd {}", fd.fd));
      if (n == 0) break;
      done += size_t(n);
    }
    p.content.resize(done);
    return p.encode();
  }
  Result<UniqueFd> restore(const image::FdImage& img, RestoreContext&) const override {
    FROST_ASSIGN(FdPayload p, FdPayload::decode(img.payload));
    std::string name = p.path;
    UniqueFd fd;
    for (int attempt = 0; attempt < 100 && !fd; ++attempt) {
      if (attempt > 0) name = fmt::format("{}.frost-{}-{}", p.path, ::getpid(), attempt);
      fd.reset(::open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, p.mode & 07777));
      if (!fd && errno != EEXIST) return Error::io(fmt::format("re-creating deleted file {}", p.path));
    }
    if (!fd) return Error::io(fmt::format("re-creating deleted file {}", p.path), EEXIST);
    // From here the name must go again, whatever happens.
    bool written = true;
    for (size_t done = 0; done < p.content.size();) {
      ssize_t n = ::write(fd.get(), p.content.data() + done, p.content.size() - done);
      if (n <= 0) { written = false; break; }
      done += size_t(n);
    }
    Result<UniqueFd> out = written ? reopen(name, p.flags, p.pos)
                                   : Result<UniqueFd>(Error::io(fmt::format("writing {}", name)));
    ::unlink(name.c_str());
    return out;
  }
};

}  // namespace

const FdHandler& file_handler() { static const PathHandler h("file", S_IFREG, 0); return h; }
const FdHandler& deleted_file_handler() { static const DeletedFileHandler h; return h; }
const FdHandler& dir_handler() { static const PathHandler h("dir", S_IFDIR, O_DIRECTORY); return h; }

}  // namespace frost::fds
