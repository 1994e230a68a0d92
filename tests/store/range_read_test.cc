// Range reads of a snapshot (Store::has_pages, Store::for_each_page_in):
// what a lazy melt asks before the process runs. They must agree with a
// full walk on every range, across node boundaries and in incremental
// snapshots that remove pages.
#include <gtest/gtest.h>

#include <array>
#include <random>
#include <set>

#include "store/mem_env.h"
#include "store/store.h"

namespace frost::store {
namespace {

class RangeReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    o.env = &env_;
    o.segment_size = 256 << 10;
    o.capacity = 64 << 20;
    auto s = Store::create("/s", o);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    store_ = std::move(*s);
  }

  static std::array<uint8_t, kPageSize> page_for(uint64_t vpn) {
    std::array<uint8_t, kPageSize> p{};
    std::memcpy(p.data(), &vpn, sizeof vpn);
    p[100] = 1;  // never an all-zero page
    return p;
  }

  SnapshotId write(const std::set<uint64_t>& vpns, std::optional<SnapshotId> parent = std::nullopt,
                   std::pair<uint64_t, uint64_t> removed = {1, 0}) {
    auto w = store_->begin_snapshot("o", parent);
    EXPECT_TRUE(w.ok());
    if (removed.first <= removed.second) {
      EXPECT_TRUE((*w)->remove_pages(removed.first, removed.second).ok());
    }
    for (uint64_t v : vpns) EXPECT_TRUE((*w)->put_page(v, page_for(v)).ok());
    auto id = (*w)->commit();
    EXPECT_TRUE(id.ok());
    return *id;
  }

  // The pages a full walk finds in [first, last].
  std::vector<uint64_t> expected(SnapshotId id, uint64_t first, uint64_t last) {
    std::vector<uint64_t> out;
    EXPECT_TRUE(store_->for_each_page(id, [&](uint64_t v, std::span<const uint8_t, kPageSize>) {
      if (v >= first && v <= last) out.push_back(v);
      return Status::Ok();
    }).ok());
    return out;
  }

  void check_range(SnapshotId id, uint64_t first, uint64_t last) {
    std::vector<uint64_t> got;
    Status st = store_->for_each_page_in(id, first, last, [&](uint64_t v, std::span<const uint8_t, kPageSize> p) {
      uint64_t stamped;
      std::memcpy(&stamped, p.data(), sizeof stamped);
      EXPECT_EQ(stamped, v) << "page " << v << " read with another's contents";
      got.push_back(v);
      return Status::Ok();
    });
    ASSERT_TRUE(st.ok()) << st.error().to_string();
    std::vector<uint64_t> want = expected(id, first, last);
    EXPECT_EQ(got, want) << "range " << first << "-" << last;
    auto any = store_->has_pages(id, first, last);
    ASSERT_TRUE(any.ok());
    EXPECT_EQ(*any, !want.empty()) << "range " << first << "-" << last;
  }

  MemEnv env_;
  std::unique_ptr<Store> store_;
};

TEST_F(RangeReadTest, AgreesWithAFullWalkAcrossNodeBoundaries) {
  // Keys at the edges of leaves (256 keys), of level-1 nodes (65536) and far up.
  std::set<uint64_t> vpns = {0, 1, 255, 256, 257, 511, 65535, 65536, 65537, 1ull << 24, (1ull << 24) + 300,
                             0x7ffff7ff0ull, kMaxKey};
  SnapshotId id = write(vpns);
  for (uint64_t a : vpns) {
    for (uint64_t b : vpns) {
      if (a <= b) check_range(id, a, b);
    }
    if (a > 0) check_range(id, a - 1, a - 1);  // empty unless a-1 is stored
    check_range(id, a + 1, a + 1);
  }
  check_range(id, 2, 254);          // inside a leaf, nothing there
  check_range(id, 258, 65534);      // across leaves, nothing there
  check_range(id, 0, kMaxKey);      // everything
  check_range(id, 5, 3);            // an empty range
  auto beyond = store_->has_pages(id, kMaxKey + 1, ~0ull);
  ASSERT_TRUE(beyond.ok());
  EXPECT_FALSE(*beyond);
}

TEST_F(RangeReadTest, RandomRangesOfAnIncrementalSnapshot) {
  std::mt19937_64 rng(7);
  std::set<uint64_t> base, more;
  for (int i = 0; i < 3000; ++i) base.insert(rng() % 200000);
  for (int i = 0; i < 300; ++i) more.insert(rng() % 200000);
  SnapshotId parent = write(base);
  // Drops [50000, 120000] of the parent, then puts some pages back into it.
  SnapshotId id = write(more, parent, {50000, 120000});
  for (int i = 0; i < 400; ++i) {
    uint64_t a = rng() % 210000, len = rng() % (i % 2 ? 300 : 70000);
    check_range(id, a, a + len);
    check_range(parent, a, a + len);
  }
  EXPECT_FALSE(store_->has_pages(99, 0, 10).ok()) << "a missing snapshot must be an error";
}

}  // namespace
}  // namespace frost::store
