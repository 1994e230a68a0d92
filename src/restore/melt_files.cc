#include "restore/melt_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

namespace frost::restore {
namespace {

bool same_file(const image::MemoryAreaImage& a, const struct stat& st) {
  if (a.inode == 0) return true;  // nothing recorded to compare
  uint64_t dev = (uint64_t(major(st.st_dev)) << 32) | minor(st.st_dev);
  return st.st_ino == a.inode && dev == a.dev;
}

Result<UniqueFd> open_mapped_file(const image::MemoryAreaImage& a) {
  bool writable_shared = (a.flags & image::kAreaShared) && (a.prot & PROT_WRITE);
  UniqueFd fd(::open(a.path.c_str(), (writable_shared ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (!fd) return Error::io(fmt::format("opening {}, which the process maps at {:#x}", a.path, a.start));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::io(fmt::format("stat of {}", a.path));
  if (!same_file(a, st)) {
    return Error(ErrorKind::kInvalidArgument,
                 fmt::format("{} was replaced since the freeze (inode {}, now {}): the process maps it at {:#x}",
                             a.path, a.inode, st.st_ino, a.start));
  }
  return fd;
}

}  // namespace

int MeltFiles::add(UniqueFd fd) {
  fds_.push_back(std::move(fd));
  return int(fds_.size() - 1);
}

int MeltFiles::add_terminal(int fd) {
  return add(UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)));
}

Result<MeltFiles> MeltFiles::open(const image::ProcessImage& image) {
  MeltFiles files;
  std::map<std::pair<std::string, bool>, int> by_path;
  for (const image::MemoryAreaImage& a : image.areas) {
    int helper = -1;
    if (a.source == image::ContentSource::kFileMapped) {
      bool writable_shared = (a.flags & image::kAreaShared) && (a.prot & PROT_WRITE);
      auto key = std::make_pair(a.path, writable_shared);
      auto it = by_path.find(key);
      if (it == by_path.end()) {
        FROST_ASSIGN(UniqueFd fd, open_mapped_file(a));
        it = by_path.emplace(key, files.add(std::move(fd))).first;
      }
      helper = it->second;
    } else if (a.source == image::ContentSource::kSharedObject) {
      files.shared_by_inode_[{a.dev, a.inode}] = a.shared_id;
      uint64_t end = a.file_offset + (a.end - a.start);
      uint64_t& size = files.shared_size_[a.shared_id];
      size = std::max(size, end);
      auto it = files.shared_helper_.find(a.shared_id);
      if (it == files.shared_helper_.end()) {
        std::string name = a.kind == image::AreaKind::kMemfd ? a.path : "frost-shmem";
        if (name.ends_with(" (deleted)")) name.resize(name.size() - 10);
        UniqueFd fd(::memfd_create(name.substr(0, 240).c_str(), MFD_CLOEXEC));
        if (!fd) return Error::io("creating a memfd for shared memory");
        it = files.shared_helper_.emplace(a.shared_id, files.add(std::move(fd))).first;
      }
      helper = it->second;
    }
    files.area_helper_.push_back(helper);
  }
  for (auto [id, helper] : files.shared_helper_) {
    if (::ftruncate(files.fds_[helper].get(), off_t(files.shared_size_[id])) != 0) {
      return Error::io("sizing a shared memory object");
    }
  }
  std::string exe = image.exe;
  if (!exe.ends_with(" (deleted)")) {
    UniqueFd fd(::open(exe.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd) files.exe_helper_ = files.add(std::move(fd));
  }
  return files;
}

std::vector<int> MeltFiles::helper_fds() const {
  std::vector<int> out;
  for (const UniqueFd& fd : fds_) out.push_back(fd.get());
  return out;
}

int MeltFiles::area_helper(size_t area_index) const {
  return area_index < area_helper_.size() ? area_helper_[area_index] : -1;
}

int MeltFiles::shared_object_fd(uint64_t shared_id) const {
  auto it = shared_helper_.find(shared_id);
  return it == shared_helper_.end() ? -1 : fds_[it->second].get();
}

int MeltFiles::shared_object_by_inode(uint64_t dev, uint64_t inode) const {
  auto it = shared_by_inode_.find({dev, inode});
  return it == shared_by_inode_.end() ? -1 : shared_object_fd(it->second);
}

uint64_t MeltFiles::shared_object_size(uint64_t shared_id) const {
  auto it = shared_size_.find(shared_id);
  return it == shared_size_.end() ? 0 : it->second;
}

}  // namespace frost::restore
