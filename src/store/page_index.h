// The per-snapshot page index: a copy-on-write radix tree over 48-bit keys
// (virtual page numbers), kLevels levels of kFanout slots. A snapshot made from
// a parent writes only the nodes on the paths to its changed pages; every other
// subtree is the parent's, shared by location.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <unordered_set>
#include <vector>

#include "common/result.h"
#include "store/format.h"

namespace frost::store {

struct Node {
  uint8_t level = 0;  // 0 = leaf: slots point at pages
  Tree tree = Tree::kPages;
  std::array<IndexEntry, kFanout> slot{};
};

inline constexpr int kRootLevel = kLevels - 1;

// First key covered by the node at `level` that holds `key`.
inline uint64_t node_base(uint64_t key, int level) {
  int shift = kFanoutBits * (level + 1);
  return shift >= 64 ? 0 : key & ~((1ull << shift) - 1);
}
inline int slot_of(uint64_t key, int level) { return int((key >> (kFanoutBits * level)) & (kFanout - 1)); }
// Keys covered by one slot of a node at `level`.
inline uint64_t slot_span(int level) { return 1ull << (kFanoutBits * level); }

std::vector<uint8_t> encode_node(const Node& n);
Result<Node> decode_node(std::span<const uint8_t> bytes, int level, Tree tree);

// Where nodes come from (the store's verified, cached reader).
class NodeSource {
 public:
  virtual ~NodeSource() = default;
  virtual Result<std::shared_ptr<const Node>> load_node(const IndexEntry& e, int level, Tree tree) const = 0;
};

// Where new nodes go (the log). base is the first key the node covers.
class NodeSink {
 public:
  virtual ~NodeSink() = default;
  virtual Result<IndexEntry> write_node(const Node& n, uint64_t base) = 0;
};

// Sorted, disjoint inclusive key ranges.
class RangeSet {
 public:
  void add(uint64_t first, uint64_t last);
  bool contains(uint64_t key) const;
  bool overlaps(uint64_t first, uint64_t last) const;
  bool covers(uint64_t first, uint64_t last) const;
  bool empty() const { return r_.empty(); }

 private:
  std::map<uint64_t, uint64_t> r_;  // first -> last
};

// The entry for key, or an empty entry when the tree has none.
Result<IndexEntry> index_lookup(const NodeSource& src, Tree tree, IndexEntry root, uint64_t key);

// Visits every present key in order. fn returning an error stops the walk.
Status index_walk(const NodeSource& src, Tree tree, IndexEntry root,
                  const std::function<Status(uint64_t key, const IndexEntry& e)>& fn);

// Visits every node (with its level and base) and every page entry reachable
// from root, once per distinct location across calls sharing `seen`.
struct IndexVisitor {
  std::function<Status(const IndexEntry& e, int level, uint64_t base)> on_node;
  std::function<Status(const IndexEntry& e, uint64_t key)> on_page;
};
Status index_visit_all(const NodeSource& src, Tree tree, IndexEntry root, const IndexVisitor& v,
                       std::unordered_set<uint64_t>* seen);

// The tree that is `parent` with `puts` applied and the keys in `removed` (not
// also put) dropped. Unchanged subtrees are shared; new nodes go to sink.
struct IndexBuild {
  IndexEntry root;
  uint64_t nodes_written = 0;
  uint64_t node_bytes = 0;
  int64_t page_delta = 0;  // present keys gained (or lost) against the parent
  std::vector<IndexEntry> new_nodes;
};
Result<IndexBuild> index_build(const NodeSource& src, NodeSink& sink, Tree tree, IndexEntry parent,
                               const std::map<uint64_t, IndexEntry>& puts, const RangeSet& removed);

// Calls fn for every node and page of `tree` not referenced, at the same
// place, by any of `others`: what deleting the snapshot would free.
Status index_exclusive(const NodeSource& src, Tree tree, IndexEntry root, const std::vector<IndexEntry>& others,
                       const std::function<void(const IndexEntry& e)>& fn);

}  // namespace frost::store
