// The extent map follows what a process does to its memory while its pages
// are pending: each test is one kernel event and what must be true after it.
#include "lazy/extent_map.h"

#include <gtest/gtest.h>

namespace frost::lazy {

void PrintTo(const Extent& e, std::ostream* os) {
  *os << std::hex << "[0x" << e.start << ", 0x" << e.end << ") vpn 0x" << e.vpn;
}

namespace {

constexpr uint64_t P = 4096;

// Ten pages at 0x10000 holding snapshot pages 0x10..0x19 (identity).
ExtentMap ten_pages() {
  ExtentMap m;
  m.add(0x10000, 0x10000 + 10 * P, 0x10);
  return m;
}

TEST(ExtentMap, IdentityAfterMelt) {
  ExtentMap m = ten_pages();
  EXPECT_EQ(m.vpn_at(0x10000), 0x10u);
  EXPECT_EQ(m.vpn_at(0x10000 + 3 * P + 17), 0x13u);
  EXPECT_FALSE(m.vpn_at(0x10000 + 10 * P));
  EXPECT_FALSE(m.vpn_at(0xf000));
  EXPECT_EQ(m.pages(), 10u);
  EXPECT_EQ(m.pages_from(0x10000 + 7 * P + 5), 3u);
  auto at = m.find(0x15);
  ASSERT_TRUE(at);
  EXPECT_EQ(at->addr, 0x10000 + 5 * P);
  EXPECT_EQ(at->pages, 5u);
}

TEST(ExtentMap, FindReportsHowFarToSkip) {
  ExtentMap m;
  m.add(0x10000, 0x12000, 0x10);
  m.add(0x40000, 0x41000, 0x40);
  uint64_t skip = 0;
  EXPECT_FALSE(m.find(0x12, &skip));
  EXPECT_EQ(skip, 0x40u - 0x12u);
  EXPECT_FALSE(m.find(0x41, &skip));
  EXPECT_EQ(skip, UINT64_MAX - 0x41);
  EXPECT_FALSE(m.find(0x1, &skip));
  EXPECT_EQ(skip, 0xfu);
  EXPECT_TRUE(m.find(0x11, &skip));
  EXPECT_EQ(skip, 0u);
}

// MADV_DONTNEED in the middle: the dropped pages must read as zero.
TEST(ExtentMap, CutSplitsAnExtent) {
  ExtentMap m = ten_pages();
  m.cut(0x10000 + 2 * P, 0x10000 + 5 * P);
  EXPECT_EQ(m.vpn_at(0x10000 + P), 0x11u);
  EXPECT_FALSE(m.vpn_at(0x10000 + 2 * P));
  EXPECT_FALSE(m.vpn_at(0x10000 + 4 * P));
  EXPECT_EQ(m.vpn_at(0x10000 + 5 * P), 0x15u);
  EXPECT_EQ(m.pages(), 7u);
  EXPECT_FALSE(m.find(0x13));
  EXPECT_EQ(m.find(0x15)->addr, 0x10000 + 5 * P);
  EXPECT_EQ(m.find(0x10)->pages, 2u);
}

TEST(ExtentMap, CutAcrossSeveralExtentsAndNothing) {
  ExtentMap m;
  m.add(0x10000, 0x13000, 0x10);
  m.add(0x20000, 0x23000, 0x20);
  m.cut(0x11000, 0x21000);
  EXPECT_EQ(m.extents(), (std::vector<Extent>{{0x10000, 0x11000, 0x10}, {0x21000, 0x23000, 0x21}}));
  m.cut(0x50000, 0x60000);  // nothing there
  EXPECT_EQ(m.pages(), 3u);
  m.cut(0, UINT64_MAX & ~(P - 1));
  EXPECT_TRUE(m.empty());
  EXPECT_FALSE(m.find(0x10));
}

// mremap to a new address: the pages follow, the old range is empty.
TEST(ExtentMap, MoveCarriesPages) {
  ExtentMap m = ten_pages();
  m.move(0x10000 + 4 * P, 0x80000, 4 * P);
  EXPECT_FALSE(m.vpn_at(0x10000 + 4 * P));
  EXPECT_FALSE(m.vpn_at(0x10000 + 7 * P));
  EXPECT_EQ(m.vpn_at(0x10000 + 8 * P), 0x18u);
  EXPECT_EQ(m.vpn_at(0x80000), 0x14u);
  EXPECT_EQ(m.vpn_at(0x80000 + 3 * P), 0x17u);
  EXPECT_FALSE(m.vpn_at(0x80000 + 4 * P));
  auto at = m.find(0x15);
  ASSERT_TRUE(at);
  EXPECT_EQ(at->addr, 0x80000 + P);
  EXPECT_EQ(at->pages, 3u);
  EXPECT_EQ(m.pages(), 10u);
}

// mremap onto an existing mapping replaces all of it; a partly empty source
// moves only what it holds (the grown part of a growing mremap stays empty).
TEST(ExtentMap, MoveReplacesTheDestination) {
  ExtentMap m;
  m.add(0x10000, 0x14000, 0x10);
  m.add(0x20000, 0x28000, 0x20);
  m.cut(0x11000, 0x12000);
  m.move(0x10000, 0x22000, 6 * P);
  EXPECT_EQ(m.extents(), (std::vector<Extent>{{0x20000, 0x22000, 0x20},
                                              {0x22000, 0x23000, 0x10},
                                              {0x24000, 0x26000, 0x12}}));
  EXPECT_FALSE(m.find(0x22));
  EXPECT_FALSE(m.find(0x26));
  EXPECT_FALSE(m.find(0x11));
}

// A move and back, then a fork's copy changes independently of the parent.
TEST(ExtentMap, MoveBackAndCopy) {
  ExtentMap m = ten_pages();
  m.move(0x10000, 0x90000, 10 * P);
  m.move(0x90000, 0x10000, 10 * P);
  EXPECT_EQ(m.extents(), ten_pages().extents());
  ExtentMap child = m;
  child.cut(0x10000, 0x10000 + 10 * P);
  EXPECT_TRUE(child.empty());
  EXPECT_EQ(m.pages(), 10u);
}

TEST(ExtentMap, AddReplaces) {
  ExtentMap m = ten_pages();
  m.add(0x10000 + 3 * P, 0x10000 + 4 * P, 0x99);
  EXPECT_EQ(m.vpn_at(0x10000 + 3 * P), 0x99u);
  EXPECT_EQ(m.vpn_at(0x10000 + 4 * P), 0x14u);
  EXPECT_EQ(m.pages(), 10u);
  EXPECT_EQ(m.find(0x99)->addr, 0x10000 + 3 * P);
}

}  // namespace
}  // namespace frost::lazy
