// frostd's control socket: a unix stream socket at $FROST_HOME/frostd.sock
// (mode 0600, in the 0700 home). One request per connection, one JSON
// object per line:
//
//   client -> {"op": "snapshot", "target": "calc", "kind": "force"}
//   daemon -> {"progress": {"done": 123, "total": 456}}      (zero or more)
//   daemon -> {"ok": true, "result": {...}}  or  {"ok": false, "error": "...", "kind": "busy"}
//
// {"op": "attach"}'s answer carries a terminal's master fd (SCM_RIGHTS).
//
// Any language can script the daemon this way (e.g. `socat`, Python).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"
#include "dump/progress.h"

namespace frost::daemon {

std::string socket_path(const std::string& home);

// Writes one line (the text plus '\n'), passing pass_fd along (SCM_RIGHTS)
// when it is not -1: how `frost attach` gets a terminal frostd holds.
Status send_line(int fd, const std::string& text, int pass_fd = -1);
// Reads one line, without the '\n'; kNotFound at a clean end of stream. A
// passed fd goes to *received (close-on-exec), or is closed without one.
Result<std::string> read_line(int fd, std::string& buffer, UniqueFd* received = nullptr);

// The uid of the process at the other end (SO_PEERCRED).
Result<uid_t> peer_uid(int fd);

// Binds the socket. A socket file nobody answers on (a frostd that died) is
// replaced; one a live daemon answers on is an error.
Result<UniqueFd> listen_control(const std::string& home);

// The CLI's side.
class ControlClient {
 public:
  // nullopt when no daemon answers (no socket, or a stale one).
  static std::optional<ControlClient> connect(const std::string& home);
  // Sends the request and waits for the final answer; progress lines go to
  // progress, an fd passed with the answer to *received.
  Result<nlohmann::json> call(const nlohmann::json& request, const ProgressFn& progress = {},
                              UniqueFd* received = nullptr);

 private:
  explicit ControlClient(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// The error an {"ok": false} answer carries.
Error error_from_reply(const nlohmann::json& reply);
// The {"ok": false} answer for an error.
nlohmann::json reply_for_error(const Error& error);

}  // namespace frost::daemon
