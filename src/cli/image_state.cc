#include "cli/image_state.h"

#include <fstream>
#include <sstream>

#include "image/image_codec.h"

namespace frost::cli {

ImageState image_state(const store::Store& store, const store::OwnerInfo& owner, const daemon::Registry* registry) {
  ImageState st;
  if (const daemon::PersistentProcess* e = registry != nullptr ? registry->find(owner.name) : nullptr) {
    st.persistent = true;
    st.policy = daemon::policy_name(e->policy);
    st.every_ms = e->every_ms;
    st.pid = e->pid;
    if (e->state == daemon::ProcessState::kFrozen) {
      st.state = "frozen";
    } else {
      st.state = daemon::still_running(e->pid, e->identity) ? "running" : "gone";
    }
    return st;
  }
  if (owner.snapshots.empty()) return st;
  const store::SnapshotInfo& latest = owner.snapshots.back();
  Result<std::vector<uint8_t>> meta = store.read_meta(latest.id);
  if (!meta.ok()) return st;
  Result<image::ProcessImage> img = image::decode(*meta);
  if (!img.ok()) return st;
  st.pid = img->pid;
  // The same pid with the same name is taken for the process itself.
  std::ifstream comm("/proc/" + std::to_string(st.pid) + "/comm");
  std::string name;
  std::getline(comm, name);
  if (comm && name == img->comm) {
    st.state = "running";
  } else {
    st.state = latest.pinned ? "frozen" : "ended";
  }
  return st;
}

}  // namespace frost::cli
