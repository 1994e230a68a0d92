#include "cli/daemon_route.h"

#include <unistd.h>

#include "cli/frost_home.h"
#include "daemon/control_socket.h"
#include "daemon/service.h"

namespace frost::cli {

bool daemon_running() { return daemon::ControlClient::connect(frost_home()).has_value(); }

Result<nlohmann::json> execute(const nlohmann::json& request, const ProgressFn& progress) {
  std::string home = frost_home();
  if (std::optional<daemon::ControlClient> client = daemon::ControlClient::connect(home)) {
    return client->call(request, progress);
  }
  FROST_TRY(ensure_home(home));
  std::string path = store_path(home);
  Result<std::unique_ptr<store::Store>> store = store::Store::open_or_create(path, store::StoreOptions{});
  if (!store.ok()) return store.error().context("cannot open store " + path);
  FROST_ASSIGN(daemon::Registry registry, daemon::Registry::load(home));
  daemon::Service service(daemon::ServiceOptions{home, false}, std::move(*store), std::move(registry));
  return service.handle(request, daemon::Caller{::getuid()}, progress);
}

}  // namespace frost::cli
