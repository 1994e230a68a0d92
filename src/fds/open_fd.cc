#include "fds/open_fd.h"

#include <signal.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <charconv>
#include <string_view>

#include <fmt/format.h>

#include "proc/proc_status.h"

namespace frost::fds {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

// "pos:\t12\nflags:\t02100002\n..." from /proc/PID/fdinfo/N.
Status parse_fdinfo(std::string_view text, OpenFd& out) {
  bool have_pos = false, have_flags = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    if (key == "pos") {
      have_pos = std::from_chars(value.data(), value.data() + value.size(), out.pos).ec == std::errc();
    } else if (key == "flags") {
      uint32_t f = 0;
      have_flags = std::from_chars(value.data(), value.data() + value.size(), f, 8).ec == std::errc();
      out.cloexec = (f & O_CLOEXEC) != 0;
      out.flags = f & ~uint32_t(O_CLOEXEC);
    }
  }
  if (!have_pos || !have_flags) return Error::invalid(fmt::format("fd {}: fdinfo lacks pos or flags", out.fd));
  return Status::Ok();
}

}  // namespace

bool OpenFd::deleted() const {
  return st.st_nlink == 0 && link.size() > kDeletedSuffix.size() && link.ends_with(kDeletedSuffix);
}

std::string OpenFd::path() const {
  if (link.ends_with(kDeletedSuffix)) return link.substr(0, link.size() - kDeletedSuffix.size());
  return link;
}

std::string fd_proc_path(pid_t pid, int fd) { return fmt::format("/proc/{}/fd/{}", pid, fd); }

Result<std::vector<OpenFd>> list_open_fds(pid_t pid) {
  std::string dir_path = proc::proc_path(pid, "fd");
  DIR* dir = ::opendir(dir_path.c_str());
  if (dir == nullptr) return proc::proc_error(pid, "fd", errno);
  std::vector<int> numbers;
  while (dirent* e = ::readdir(dir)) {
    int n = 0;
    std::string_view name(e->d_name);
    if (std::from_chars(name.data(), name.data() + name.size(), n).ec == std::errc()) numbers.push_back(n);
  }
  ::closedir(dir);
  std::sort(numbers.begin(), numbers.end());

  std::vector<OpenFd> out;
  for (int n : numbers) {
    OpenFd fd;
    fd.fd = n;
    // A running process (a check before it is seized, a program starting
    // up) may close an fd between the listing and these reads: skip it,
    // unless it is the process that went.
    auto process_gone = [pid] { return ::kill(pid, 0) != 0 && errno == ESRCH; };
    Result<std::string> link = proc::read_proc_link(pid, fmt::format("fd/{}", n));
    if (!link.ok()) {
      if (link.error().is(ErrorKind::kNotFound) && process_gone()) return link.error();
      continue;  // closed meanwhile
    }
    fd.link = std::move(link).value();
    Result<std::string> info = proc::read_proc_file(pid, fmt::format("fdinfo/{}", n));
    if (!info.ok()) {
      if (info.error().is(ErrorKind::kNotFound) && process_gone()) return info.error();
      continue;
    }
    FROST_TRY(parse_fdinfo(*info, fd));
    if (::stat(fd_proc_path(pid, n).c_str(), &fd.st) != 0) {
      if (errno == ENOENT) continue;
      return Error::io(fmt::format("stat of fd {} of process {}", n, pid));
    }
    out.push_back(std::move(fd));
  }
  return out;
}

std::string describe(const OpenFd& fd) {
  const std::string& l = fd.link;
  if (l.starts_with("socket:")) return fmt::format("a socket ({})", l);
  if (l.starts_with("anon_inode:")) return fmt::format("an {} ({})", l.substr(11), l);
  if (l.starts_with("pipe:")) return fmt::format("a pipe ({})", l);
  switch (fd.st.st_mode & S_IFMT) {
    case S_IFCHR:
      return fmt::format("character device {}:{} ({})", major(fd.st.st_rdev), minor(fd.st.st_rdev), l);
    case S_IFBLK:
      return fmt::format("block device {}:{} ({})", major(fd.st.st_rdev), minor(fd.st.st_rdev), l);
    case S_IFIFO: return fmt::format("a FIFO ({})", l);
    case S_IFSOCK: return fmt::format("a socket ({})", l);
    case S_IFDIR: return fmt::format("a directory ({})", l);
    case S_IFREG: return fmt::format("a file ({})", l);
    default: return fmt::format("an unknown kind of file ({})", l);
  }
}

}  // namespace frost::fds
