#include "store/page_index.h"

#include <bit>
#include <cstring>

namespace frost::store {

std::vector<uint8_t> encode_node(const Node& n) {
  NodeHeader h{};
  h.magic = kNodeMagic;
  h.level = n.level;
  h.tree = uint8_t(n.tree);
  std::vector<IndexEntry> present;
  for (int i = 0; i < kFanout; i++) {
    if (n.slot[i].empty()) continue;
    h.bitmap[i / 64] |= 1ull << (i % 64);
    present.push_back(n.slot[i]);
  }
  h.count = uint16_t(present.size());
  std::vector<uint8_t> out(sizeof(h) + present.size() * sizeof(IndexEntry));
  std::memcpy(out.data(), &h, sizeof(h));
  if (!present.empty()) std::memcpy(out.data() + sizeof(h), present.data(), present.size() * sizeof(IndexEntry));
  return out;
}

Result<Node> decode_node(std::span<const uint8_t> bytes, int level, Tree tree) {
  NodeHeader h;
  if (bytes.size() < sizeof(h)) return Error::corruption("index node too short");
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.magic != kNodeMagic) return Error::corruption("index node magic mismatch");
  if (h.level != level || h.tree != uint8_t(tree)) return Error::corruption("index node at the wrong level or tree");
  int bits = 0;
  for (uint64_t w : h.bitmap) bits += std::popcount(w);
  if (bits != h.count || bits == 0 || bytes.size() != sizeof(h) + size_t(bits) * sizeof(IndexEntry))
    return Error::corruption("index node count does not match its bitmap");
  Node n;
  n.level = uint8_t(level);
  n.tree = tree;
  const uint8_t* p = bytes.data() + sizeof(h);
  for (int i = 0; i < kFanout; i++) {
    if (!(h.bitmap[i / 64] >> (i % 64) & 1)) continue;
    std::memcpy(&n.slot[i], p, sizeof(IndexEntry));
    p += sizeof(IndexEntry);
    if (n.slot[i].empty()) return Error::corruption("index node marks an empty slot present");
    if (level > 0 && n.slot[i].zero()) return Error::corruption("index node points at a zero child");
  }
  return n;
}

// --- RangeSet ------------------------------------------------------------------

void RangeSet::add(uint64_t first, uint64_t last) {
  if (first > last) return;
  // Merge with every range that overlaps or touches [first, last].
  auto it = r_.upper_bound(first);
  if (it != r_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= first || prev->second + 1 == first) it = prev;
  }
  while (it != r_.end() && (last == UINT64_MAX || it->first <= last + 1)) {
    first = std::min(first, it->first);
    last = std::max(last, it->second);
    it = r_.erase(it);
  }
  r_[first] = last;
}

bool RangeSet::contains(uint64_t key) const { return overlaps(key, key); }

bool RangeSet::overlaps(uint64_t first, uint64_t last) const {
  auto it = r_.upper_bound(last);
  if (it == r_.begin()) return false;
  return std::prev(it)->second >= first;
}

bool RangeSet::covers(uint64_t first, uint64_t last) const {
  auto it = r_.upper_bound(first);
  if (it == r_.begin()) return false;
  --it;
  return it->first <= first && it->second >= last;
}

// --- reading -------------------------------------------------------------------

Result<IndexEntry> index_lookup(const NodeSource& src, Tree tree, IndexEntry root, uint64_t key) {
  if (key > kMaxKey) return IndexEntry{};
  IndexEntry e = root;
  for (int level = kRootLevel; level >= 0 && !e.empty(); level--) {
    FROST_ASSIGN(auto node, src.load_node(e, level, tree));
    e = node->slot[slot_of(key, level)];
  }
  return e;
}

namespace {

Status walk(const NodeSource& src, Tree tree, const IndexEntry& e, int level, uint64_t base,
            const std::function<Status(uint64_t, const IndexEntry&)>& fn) {
  FROST_ASSIGN(auto node, src.load_node(e, level, tree));
  for (int i = 0; i < kFanout; i++) {
    const IndexEntry& c = node->slot[i];
    if (c.empty()) continue;
    uint64_t key = base + uint64_t(i) * slot_span(level);
    if (level == 0) {
      FROST_TRY(fn(key, c));
    } else {
      FROST_TRY(walk(src, tree, c, level - 1, key, fn));
    }
  }
  return Status::Ok();
}

Status visit(const NodeSource& src, Tree tree, const IndexEntry& e, int level, uint64_t base, const IndexVisitor& v,
             std::unordered_set<uint64_t>* seen) {
  if (seen && !seen->insert(e.offset()).second) return Status::Ok();
  if (v.on_node) FROST_TRY(v.on_node(e, level, base));
  FROST_ASSIGN(auto node, src.load_node(e, level, tree));
  for (int i = 0; i < kFanout; i++) {
    const IndexEntry& c = node->slot[i];
    if (c.empty()) continue;
    uint64_t key = base + uint64_t(i) * slot_span(level);
    if (level > 0) {
      FROST_TRY(visit(src, tree, c, level - 1, key, v, seen));
    } else if (!c.zero() && (!seen || seen->insert(c.offset()).second) && v.on_page) {
      FROST_TRY(v.on_page(c, key));
    }
  }
  return Status::Ok();
}

}  // namespace

Status index_walk(const NodeSource& src, Tree tree, IndexEntry root,
                  const std::function<Status(uint64_t key, const IndexEntry& e)>& fn) {
  if (root.empty()) return Status::Ok();
  return walk(src, tree, root, kRootLevel, 0, fn);
}

Status index_visit_all(const NodeSource& src, Tree tree, IndexEntry root, const IndexVisitor& v,
                       std::unordered_set<uint64_t>* seen) {
  if (root.empty()) return Status::Ok();
  return visit(src, tree, root, kRootLevel, 0, v, seen);
}

// --- building ------------------------------------------------------------------

namespace {

using PutIt = std::map<uint64_t, IndexEntry>::const_iterator;

struct Builder {
  const NodeSource& src;
  NodeSink& sink;
  Tree tree;
  const std::map<uint64_t, IndexEntry>& puts;
  const RangeSet& removed;
  IndexBuild out;

  Result<IndexEntry> build(int level, uint64_t base, const IndexEntry& parent, PutIt b, PutIt e) {
    uint64_t last = base + slot_span(level) * kFanout - 1;
    bool removes = removed.overlaps(base, last);
    if (b == e && !removes) return parent;
    if (b == e && removed.covers(base, last)) {
      if (!parent.empty()) {
        FROST_TRY(walk(src, tree, parent, level, base, [&](uint64_t, const IndexEntry&) {
          out.page_delta--;
          return Status::Ok();
        }));
      }
      return IndexEntry{};
    }

    Node node;
    node.level = uint8_t(level);
    node.tree = tree;
    if (!parent.empty()) {
      FROST_ASSIGN(auto old, src.load_node(parent, level, tree));
      node = *old;
    }
    bool changed = false;
    for (int i = 0; i < kFanout; i++) {
      uint64_t cbase = base + uint64_t(i) * slot_span(level);
      uint64_t clast = cbase + slot_span(level) - 1;
      PutIt ce = b;
      while (ce != e && ce->first <= clast) ++ce;
      IndexEntry next = node.slot[i];
      if (level == 0) {
        if (b != ce) next = b->second;
        else if (removes && removed.contains(cbase)) next = IndexEntry{};
      } else if (b != ce || (removes && removed.overlaps(cbase, clast))) {
        FROST_ASSIGN(next, build(level - 1, cbase, node.slot[i], b, ce));
      }
      if (!(next == node.slot[i])) {
        if (level == 0) out.page_delta += int(node.slot[i].empty()) - int(next.empty());
        node.slot[i] = next;
        changed = true;
      }
      b = ce;
    }
    if (!changed) return parent;
    bool any = false;
    for (const auto& s : node.slot) any |= !s.empty();
    if (!any) return IndexEntry{};
    FROST_ASSIGN(IndexEntry written, sink.write_node(node, base));
    out.nodes_written++;
    out.node_bytes += written.length();
    out.new_nodes.push_back(written);
    return written;
  }
};

}  // namespace

Result<IndexBuild> index_build(const NodeSource& src, NodeSink& sink, Tree tree, IndexEntry parent,
                               const std::map<uint64_t, IndexEntry>& puts, const RangeSet& removed) {
  if (!puts.empty() && puts.rbegin()->first > kMaxKey) return Error::invalid("page number beyond 48 bits");
  Builder b{src, sink, tree, puts, removed, {}};
  FROST_ASSIGN(b.out.root, b.build(kRootLevel, 0, parent, puts.begin(), puts.end()));
  return std::move(b.out);
}

// --- what a snapshot alone holds ----------------------------------------------

namespace {

Status exclusive(const NodeSource& src, Tree tree, const IndexEntry& e, int level,
                 const std::vector<IndexEntry>& others, const std::function<void(const IndexEntry&)>& fn) {
  if (e.empty() || e.zero()) return Status::Ok();
  for (const auto& o : others)
    if (o == e) return Status::Ok();  // shared: everything below is referenced too
  fn(e);
  if (level < 0) return Status::Ok();
  FROST_ASSIGN(auto node, src.load_node(e, level, tree));
  std::vector<std::shared_ptr<const Node>> other_nodes;
  for (const auto& o : others) {
    if (o.empty() || o.zero()) continue;
    auto n = src.load_node(o, level, tree);
    if (n.ok()) other_nodes.push_back(*n);  // a damaged neighbour shares nothing
  }
  std::vector<IndexEntry> child_others;
  for (int i = 0; i < kFanout; i++) {
    if (node->slot[i].empty()) continue;
    child_others.clear();
    for (const auto& on : other_nodes)
      if (!on->slot[i].empty()) child_others.push_back(on->slot[i]);
    FROST_TRY(exclusive(src, tree, node->slot[i], level - 1, child_others, fn));
  }
  return Status::Ok();
}

}  // namespace

Status index_exclusive(const NodeSource& src, Tree tree, IndexEntry root, const std::vector<IndexEntry>& others,
                       const std::function<void(const IndexEntry& e)>& fn) {
  return exclusive(src, tree, root, kRootLevel, others, fn);
}

}  // namespace frost::store
