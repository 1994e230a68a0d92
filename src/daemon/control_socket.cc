#include "daemon/control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

namespace frost::daemon {

using nlohmann::json;

std::string socket_path(const std::string& home) { return home + "/frostd.sock"; }

namespace {

Result<sockaddr_un> address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Error::invalid(fmt::format("socket path {} is too long", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// A connected socket, or -1 with errno.
UniqueFd connect_to(const sockaddr_un& addr) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) return UniqueFd();
  return fd;
}

const char* kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kNotFound: return "not_found";
    case ErrorKind::kInvalidArgument: return "invalid";
    case ErrorKind::kBusy: return "busy";
    case ErrorKind::kExists: return "exists";
    case ErrorKind::kCorruption: return "corruption";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kNoSpace: return "no_space";
    default: return "io";
  }
}

ErrorKind kind_of(const std::string& s) {
  if (s == "not_found") return ErrorKind::kNotFound;
  if (s == "invalid") return ErrorKind::kInvalidArgument;
  if (s == "busy") return ErrorKind::kBusy;
  if (s == "exists") return ErrorKind::kExists;
  if (s == "corruption") return ErrorKind::kCorruption;
  if (s == "unsupported") return ErrorKind::kUnsupported;
  if (s == "no_space") return ErrorKind::kNoSpace;
  return ErrorKind::kIo;
}

}  // namespace

Status send_line(int fd, const std::string& text, int pass_fd) {
  std::string line = text + "\n";
  size_t done = 0;
  while (done < line.size()) {
    iovec iov{line.data() + done, line.size() - done};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (pass_fd >= 0 && done == 0) {
      // The fd rides on the line's first byte.
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::io("writing to the control socket");
    done += size_t(n);
  }
  return Status::Ok();
}

Result<std::string> read_line(int fd, std::string& buffer, UniqueFd* received) {
  for (;;) {
    size_t nl = buffer.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      return line;
    }
    if (buffer.size() > (16u << 20)) return Error::invalid("a control message longer than 16 MiB");
    char chunk[65536];
    iovec iov{chunk, sizeof chunk};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    for (cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr; c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int got;
      std::memcpy(&got, CMSG_DATA(c), sizeof got);
      // One fd is kept when asked for; any other is closed, never leaked.
      if (received != nullptr && !*received) {
        *received = UniqueFd(got);
      } else {
        ::close(got);
      }
    }
    if (n < 0) return Error::io("reading from the control socket");
    if (n == 0) return Error::not_found("the other end closed the control socket");
    buffer.append(chunk, size_t(n));
  }
}

Result<uid_t> peer_uid(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return Error::io("SO_PEERCRED");
  return cred.uid;
}

Result<UniqueFd> listen_control(const std::string& home) {
  std::string path = socket_path(home);
  FROST_ASSIGN(sockaddr_un addr, address(path));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error(ErrorKind::kExists, fmt::format("{} exists and is not a socket", path));
    if (connect_to(addr)) return Error(ErrorKind::kBusy, fmt::format("another frostd answers on {}", path));
    // Nobody answers: a daemon died without cleaning up.
    if (::unlink(path.c_str()) != 0) return Error::io("removing the stale socket " + path);
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::io("socket");
  mode_t old = ::umask(0177);  // the socket is born 0600
  int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old);
  if (bound != 0) return Error::io("binding " + path, err);
  if (::listen(fd.get(), 64) != 0) return Error::io("listening on " + path);
  return fd;
}

std::optional<ControlClient> ControlClient::connect(const std::string& home) {
  Result<sockaddr_un> addr = address(socket_path(home));
  if (!addr.ok()) return std::nullopt;
  UniqueFd fd = connect_to(*addr);
  if (!fd) return std::nullopt;
  return ControlClient(std::move(fd));
}

Result<json> ControlClient::call(const json& request, const ProgressFn& progress, UniqueFd* received) {
  FROST_TRY(send_line(fd_.get(), request.dump()));
  std::string buffer;
  for (;;) {
    Result<std::string> line = read_line(fd_.get(), buffer, received);
    if (!line.ok()) return Error::io("frostd went away before answering", 0);
    json reply;
    try {
      reply = json::parse(*line);
    } catch (const json::exception& e) {
      return Error::corruption(fmt::format("frostd sent a malformed answer: {}", e.what()));
    }
    if (reply.contains("progress")) {
      if (progress) progress(reply["progress"].value("done", uint64_t(0)), reply["progress"].value("total", uint64_t(0)));
      continue;
    }
    if (reply.value("ok", false)) return reply.value("result", json::object());
    return error_from_reply(reply);
  }
}

Error error_from_reply(const json& reply) {
  return Error(kind_of(reply.value("kind", std::string("io"))), reply.value("error", std::string("frostd failed")));
}

json reply_for_error(const Error& error) {
  return json{{"ok", false}, {"error", error.to_string()}, {"kind", kind_name(error.kind())}};
}

}  // namespace frost::daemon
