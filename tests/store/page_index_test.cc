// The copy-on-write radix tree on its own, over an in-memory node store.
#include <gtest/gtest.h>

#include <random>

#include "store/page_index.h"

namespace frost::store {
namespace {

// Nodes live in a map keyed by a fake, 16-byte aligned offset.
class MemNodes : public NodeSource, public NodeSink {
 public:
  Result<std::shared_ptr<const Node>> load_node(const IndexEntry& e, int level, Tree tree) const override {
    auto it = nodes_.find(e.offset());
    if (it == nodes_.end()) return Error::corruption("no node");
    auto n = decode_node(it->second, level, tree);
    if (!n.ok()) return n.error();
    return std::make_shared<const Node>(*n);
  }
  Result<IndexEntry> write_node(const Node& n, uint64_t) override {
    next_ += 16;
    nodes_[next_] = encode_node(n);
    return IndexEntry::make(next_, uint32_t(nodes_[next_].size()), Codec::kNone, next_);
  }
  size_t count() const { return nodes_.size(); }

 private:
  std::map<uint64_t, std::vector<uint8_t>> nodes_;
  uint64_t next_ = 1 << 20;
};

IndexEntry page(uint64_t tag) { return IndexEntry::make(tag * 16, 4096, Codec::kNone, tag); }

std::map<uint64_t, IndexEntry> contents(MemNodes& m, IndexEntry root) {
  std::map<uint64_t, IndexEntry> out;
  EXPECT_TRUE(index_walk(m, Tree::kPages, root, [&](uint64_t k, const IndexEntry& e) {
                out[k] = e;
                return Status::Ok();
              }).ok());
  return out;
}

TEST(RangeSet, MergesAndAnswers) {
  RangeSet r;
  r.add(10, 20);
  r.add(21, 30);  // touching: merged
  r.add(40, 50);
  r.add(5, 12);
  EXPECT_TRUE(r.covers(5, 30));
  EXPECT_FALSE(r.covers(5, 31));
  EXPECT_TRUE(r.overlaps(31, 40));
  EXPECT_FALSE(r.overlaps(31, 39));
  EXPECT_TRUE(r.contains(50));
  EXPECT_FALSE(r.contains(51));
  r.add(0, UINT64_MAX);
  EXPECT_TRUE(r.covers(0, UINT64_MAX));
}

TEST(NodeCodec, RoundTripsSparseNodes) {
  Node n;
  n.level = 2;
  n.slot[0] = page(1);
  n.slot[255] = page(2);
  auto bytes = encode_node(n);
  // Header, bitmap, then two single runs: head, offset jump, checksum.
  EXPECT_EQ(bytes.size(), sizeof(NodeHeader) + kNodeBitmapBytes + (1 + 1 + 4) + (1 + 2 + 4));
  auto back = decode_node(bytes, 2, Tree::kPages);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->slot[0], page(1));
  EXPECT_EQ(back->slot[255], page(2));
  EXPECT_FALSE(decode_node(bytes, 1, Tree::kPages).ok());  // wrong level
  bytes[6] = 3;                                            // count disagrees with bitmap
  EXPECT_FALSE(decode_node(bytes, 2, Tree::kPages).ok());
}

TEST(PageIndex, BuildMatchesAModelAndSharesWithTheParent) {
  MemNodes m;
  std::mt19937_64 rng(3);
  std::map<uint64_t, IndexEntry> model;
  IndexEntry root{};
  for (int round = 0; round < 30; round++) {
    std::map<uint64_t, IndexEntry> puts;
    RangeSet removed;
    for (int i = 0; i < 50; i++) {
      uint64_t k = round % 3 == 0 ? rng() & kMaxKey : rng() % 5000;
      puts[k] = page(round * 1000 + i + 1);
    }
    if (round % 4 == 3) {
      uint64_t a = rng() % 5000, b = a + rng() % 700;
      removed.add(a, b);
      for (auto it = puts.lower_bound(a); it != puts.end() && it->first <= b;) it = puts.erase(it);
      for (auto it = model.lower_bound(a); it != model.end() && it->first <= b;) it = model.erase(it);
    }
    for (auto& [k, e] : puts) model[k] = e;
    size_t before = m.count();
    auto built = index_build(m, m, Tree::kPages, root, puts, removed);
    ASSERT_TRUE(built.ok()) << built.error().to_string();
    // At most one node per level per changed key: the rest is shared.
    EXPECT_LE(m.count() - before, puts.size() * kLevels + 2 * kLevels);
    root = built->root;
    ASSERT_EQ(contents(m, root), model) << "round " << round;
    for (auto& [k, e] : model) ASSERT_EQ(*index_lookup(m, Tree::kPages, root, k), e);
    EXPECT_TRUE(index_lookup(m, Tree::kPages, root, kMaxKey - 1)->empty() || model.count(kMaxKey - 1));
  }
}

TEST(PageIndex, PageDeltaCountsAddsAndRemovals) {
  MemNodes m;
  std::map<uint64_t, IndexEntry> puts;
  for (uint64_t k = 0; k < 1000; k++) puts[k * 3] = page(k + 1);
  auto a = index_build(m, m, Tree::kPages, IndexEntry{}, puts, RangeSet{});
  EXPECT_EQ(a->page_delta, 1000);
  RangeSet removed;
  removed.add(0, 299);  // keys 0,3,...,297: 100 keys
  std::map<uint64_t, IndexEntry> more{{1, page(7)}, {3000, page(8)}};
  auto b = index_build(m, m, Tree::kPages, a->root, more, removed);
  EXPECT_EQ(b->page_delta, -100 + 2);
  RangeSet all;
  all.add(0, kMaxKey);
  auto c = index_build(m, m, Tree::kPages, b->root, {}, all);
  EXPECT_EQ(c->page_delta, -902);
  EXPECT_TRUE(c->root.empty());
}

TEST(PageIndex, ExclusiveFindsWhatOnlyOneSnapshotHolds) {
  MemNodes m;
  std::map<uint64_t, IndexEntry> puts;
  for (uint64_t k = 0; k < 600; k++) puts[k] = page(k + 1);
  auto a = index_build(m, m, Tree::kPages, IndexEntry{}, puts, RangeSet{});
  auto b = index_build(m, m, Tree::kPages, a->root, {{5, page(9999)}}, RangeSet{});
  int pages = 0, nodes = 0;
  ASSERT_TRUE(index_exclusive(m, Tree::kPages, b->root, {a->root}, [&](const IndexEntry& e) {
                (e.length() == 4096 ? pages : nodes)++;
              }).ok());
  EXPECT_EQ(pages, 1);       // the one changed page
  EXPECT_EQ(nodes, kLevels);  // and the path above it
  pages = nodes = 0;
  ASSERT_TRUE(index_exclusive(m, Tree::kPages, a->root, {b->root}, [&](const IndexEntry& e) {
                (e.length() == 4096 ? pages : nodes)++;
              }).ok());
  EXPECT_EQ(pages, 1);
  EXPECT_EQ(nodes, kLevels);
}

}  // namespace
}  // namespace frost::store
