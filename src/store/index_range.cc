#include "store/index_range.h"

#include <algorithm>

namespace frost::store {
namespace {

// Slots of the node at `level` with base `base` whose keys meet [first, last].
std::pair<int, int> slots_meeting(int level, uint64_t base, uint64_t first, uint64_t last) {
  uint64_t span = slot_span(level);
  int lo = first <= base ? 0 : int(std::min<uint64_t>((first - base) / span, kFanout));
  int hi = int(std::min<uint64_t>((last - base) / span, kFanout - 1));
  return {lo, hi};
}

// Visits the present keys of the subtree in [first, last] in order until fn
// says stop (true); returns whether it did.
Result<bool> walk_range(const NodeSource& src, Tree tree, const IndexEntry& e, int level, uint64_t base, uint64_t first,
                        uint64_t last, const std::function<Result<bool>(uint64_t, const IndexEntry&)>& fn) {
  FROST_ASSIGN(auto node, src.load_node(e, level, tree));
  auto [lo, hi] = slots_meeting(level, base, first, last);
  for (int i = lo; i <= hi; i++) {
    const IndexEntry& c = node->slot[i];
    if (c.empty()) continue;
    uint64_t key = base + uint64_t(i) * slot_span(level);
    FROST_ASSIGN(bool stop, level == 0 ? fn(key, c) : walk_range(src, tree, c, level - 1, key, first, last, fn));
    if (stop) return true;
  }
  return false;
}

}  // namespace

Status index_walk_range(const NodeSource& src, Tree tree, IndexEntry root, uint64_t first, uint64_t last,
                        const std::function<Status(uint64_t key, const IndexEntry& e)>& fn) {
  last = std::min(last, kMaxKey);
  if (root.empty() || first > last) return Status::Ok();
  Result<bool> walked = walk_range(src, tree, root, kRootLevel, 0, first, last,
                                   [&](uint64_t key, const IndexEntry& e) -> Result<bool> {
                                     FROST_TRY(fn(key, e));
                                     return false;
                                   });
  if (!walked.ok()) return walked.error();
  return Status::Ok();
}

Result<std::optional<uint64_t>> index_first_key(const NodeSource& src, Tree tree, IndexEntry root, uint64_t first,
                                                uint64_t last) {
  last = std::min(last, kMaxKey);
  std::optional<uint64_t> found;
  if (root.empty() || first > last) return found;
  FROST_TRY(walk_range(src, tree, root, kRootLevel, 0, first, last, [&](uint64_t key, const IndexEntry&) -> Result<bool> {
    found = key;
    return true;
  }));
  return found;
}

}  // namespace frost::store
