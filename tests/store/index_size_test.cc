// What the page index costs: an incremental snapshot that rewrites 1% of a
// process's pages at random rewrites most leaves, so the node encoding decides
// how much the store writes beyond the pages themselves. Also the node
// decoder's answer to damaged input, and what an older store's open says.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>

#include "store/checksum.h"
#include "store/mem_env.h"
#include "store/page_index.h"
#include "store/store.h"

namespace frost::store {
namespace {

// The whole system may write at most 1.2x the page bytes; the index gets this.
constexpr double kMaxWrittenPerPageByte = 1.12;

// 1 GiB of pages: 1024 leaves. A 1% random rewrite touches ~92% of them, as
// in a 4 GiB process, so the ratio is the same as there.
constexpr uint64_t kPages = 256 << 10;
constexpr uint64_t kRun = 256;

void stamp(uint8_t* page, uint64_t vpn, uint64_t generation) {
  std::memset(page, 0, kPageSize);
  uint64_t word = vpn * 0x9e3779b97f4a7c15ull + generation + 1;
  std::memcpy(page, &word, sizeof(word));
  std::memcpy(page + kPageSize - sizeof(word), &generation, sizeof(generation));
}

TEST(IndexSize, OnePercentRewritesWriteLittleIndex) {
  MemEnv env;
  StoreOptions o;
  o.env = &env;
  o.capacity = 2ull << 30;
  auto opened = Store::create("/s", o);
  ASSERT_TRUE(opened.ok()) << opened.error().to_string();
  Store& s = **opened;

  std::vector<uint8_t> run(kRun * kPageSize);
  auto w = s.begin_snapshot("calc");
  ASSERT_TRUE(w.ok());
  for (uint64_t first = 0; first < kPages; first += kRun) {
    for (uint64_t i = 0; i < kRun; i++) stamp(run.data() + i * kPageSize, first + i, 0);
    ASSERT_TRUE((*w)->put_pages(first, run).ok());
  }
  auto parent = (*w)->commit();
  ASSERT_TRUE(parent.ok()) << parent.error().to_string();

  std::mt19937_64 rng(7);
  std::vector<uint8_t> page(kPageSize);
  for (uint64_t generation = 1; generation <= 4; generation++) {
    std::set<uint64_t> vpns;
    while (vpns.size() < kPages / 100) vpns.insert(rng() % kPages);
    auto inc = s.begin_snapshot("calc", *parent);
    ASSERT_TRUE(inc.ok());
    for (uint64_t vpn : vpns) {
      stamp(page.data(), vpn, generation);
      ASSERT_TRUE((*inc)->put_page(vpn, std::span<const uint8_t, kPageSize>(page.data(), kPageSize)).ok());
    }
    auto id = (*inc)->commit();
    ASSERT_TRUE(id.ok()) << id.error().to_string();
    auto info = s.info(*id);
    ASSERT_TRUE(info.ok());
    double page_bytes = double(vpns.size() * kPageSize);
    double ratio = double(info->bytes_written) / page_bytes;
    std::printf("incremental %llu: %zu pages, %llu bytes written, index / page bytes = %.4f\n",
                (unsigned long long)generation, vpns.size(), (unsigned long long)info->bytes_written, ratio - 1);
    EXPECT_LE(ratio, kMaxWrittenPerPageByte) << "incremental snapshot " << generation;

    std::array<uint8_t, kPageSize> got, want;
    for (uint64_t vpn : {*vpns.begin(), *vpns.rbegin()}) {
      stamp(want.data(), vpn, generation);
      ASSERT_TRUE(*s.read_page(*id, vpn, got));
      EXPECT_EQ(got, want);
    }
    parent = id;
  }
  EXPECT_TRUE(s.verify(*parent).ok());
}

// --- node encoding ---------------------------------------------------------------

IndexEntry page_at(uint64_t offset, uint32_t sum, Codec codec = Codec::kNone, uint32_t length = kPageSize) {
  return IndexEntry::make(offset, length, codec, sum);
}

// A leaf as a full snapshot and then a few incrementals leave it: one long
// run with strangers in it, some zero pages, a compressed page or two.
Node realistic_leaf(std::mt19937_64& rng) {
  Node n;
  uint64_t base = (rng() % (1ull << 30)) * 16;
  for (int i = 0; i < kFanout; i++) n.slot[i] = page_at(base + uint64_t(i) * kPageSize, uint32_t(rng()));
  for (int k = 0; k < 6; k++) n.slot[rng() % kFanout] = page_at((rng() % (1ull << 38)) * 16, uint32_t(rng()));
  for (int k = 0; k < 3; k++) n.slot[rng() % kFanout] = IndexEntry::zero_page();
  n.slot[rng() % kFanout] = page_at((rng() % (1ull << 38)) * 16, uint32_t(rng()), Codec::kLz4, 1 + rng() % 4000);
  for (int k = 0; k < 10; k++) n.slot[rng() % kFanout] = IndexEntry{};
  return n;
}

Node random_node(std::mt19937_64& rng, int level) {
  Node n;
  n.level = uint8_t(level);
  int present = int(rng() % 4) == 0 ? kFanout : int(1 + rng() % kFanout);
  uint64_t at = (rng() % (1ull << 41)) * 16;
  for (int i = 0; i < present; i++) {
    int slot = present == kFanout ? i : int(rng() % kFanout);
    if (level == 0 && rng() % 5 == 0) {
      n.slot[slot] = IndexEntry::zero_page();
      continue;
    }
    uint32_t len = rng() % 3 == 0 ? uint32_t(1 + rng() % 0xffff) : kPageSize;
    if (rng() % 4 == 0) at = (rng() % (1ull << 41)) * 16;
    n.slot[slot] = page_at(at, uint32_t(rng()), Codec(rng() % 3), len);
    at += align_up(len, kRecordAlign);
  }
  return n;
}

TEST(NodeEncoding, RoundTrips) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 300; round++) {
    int level = round % kLevels;
    Node n = random_node(rng, level);
    auto bytes = encode_node(n);
    auto back = decode_node(bytes, level, Tree::kPages);
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(back->slot, n.slot) << "round " << round;
  }
}

TEST(NodeEncoding, AFullContiguousLeafTakesAboutItsChecksums) {
  Node n;
  for (int i = 0; i < kFanout; i++) n.slot[i] = page_at((1ull << 30) + uint64_t(i) * kPageSize, uint32_t(i));
  // Header, one run head, its count and jump, then 4 bytes a page.
  EXPECT_LE(encode_node(n).size(), sizeof(NodeHeader) + 8 + 4 * size_t(kFanout));
}

TEST(NodeEncoding, RejectsEveryTruncation) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 20; round++) {
    auto bytes = encode_node(realistic_leaf(rng));
    for (size_t n = 0; n < bytes.size(); n++)
      ASSERT_FALSE(decode_node(std::span(bytes).first(n), 0, Tree::kPages).ok()) << n << " of " << bytes.size();
    bytes.push_back(0);
    EXPECT_FALSE(decode_node(bytes, 0, Tree::kPages).ok()) << "a trailing byte";
  }
}

// Damage either decodes to some node or is refused; it never reads beyond the
// bytes it was given (run this under ASan to see that part).
TEST(NodeEncoding, SurvivesDamage) {
  std::mt19937_64 rng(9);
  for (int round = 0; round < 3000; round++) {
    int level = int(rng() % 2);
    Node n = level == 0 ? realistic_leaf(rng) : random_node(rng, 1);
    auto bytes = encode_node(n);
    int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; k++) bytes[rng() % bytes.size()] ^= uint8_t(1 + rng() % 255);
    auto back = decode_node(bytes, level, Tree::kPages);
    if (!back.ok()) {
      EXPECT_TRUE(back.error().is(ErrorKind::kCorruption)) << back.error().to_string();
      continue;
    }
    for (const auto& e : back->slot) {
      if (e.empty()) continue;
      EXPECT_TRUE(level == 0 || !e.zero());
      EXPECT_TRUE(e.zero() || e.length() > 0);
    }
  }
}

std::vector<uint8_t> header(uint16_t count, int level = 0) {
  NodeHeader h{kNodeMagic, uint8_t(level), uint8_t(Tree::kPages), count};
  std::vector<uint8_t> out(sizeof(h));
  std::memcpy(out.data(), &h, sizeof(h));
  if (count < kFanout) {
    std::vector<uint8_t> bitmap(kNodeBitmapBytes, 0);
    for (int i = 0; i < count; i++) bitmap[i / 8] |= uint8_t(1 << (i % 8));
    out.insert(out.end(), bitmap.begin(), bitmap.end());
  }
  return out;
}

Status decode(std::vector<uint8_t> bytes, std::initializer_list<uint8_t> body, int level = 0) {
  bytes.insert(bytes.end(), body);
  auto n = decode_node(bytes, level, Tree::kPages);
  return n.ok() ? Status::Ok() : Status(n.error());
}

TEST(NodeEncoding, RejectsEachMalformedShape) {
  // Well formed first: one page at offset 16, then one zero page.
  EXPECT_TRUE(decode(header(2), {kRunSingle | kRunJump, 2, 1, 2, 3, 4, kRunSingle | kRunZero}).ok());
  EXPECT_FALSE(decode(header(3), {kRunSingle | kRunJump, 2, 1, 2, 3, 4, kRunSingle | kRunZero}).ok())
      << "count above the entries";
  auto mismatched = header(2);
  mismatched[sizeof(NodeHeader)] = 0x7;  // three bits for a count of two
  EXPECT_FALSE(decode(mismatched, {kRunSingle | kRunJump, 2, 1, 2, 3, 4, kRunSingle | kRunZero}).ok());
  EXPECT_FALSE(decode(header(0), {}).ok()) << "an empty node";
  EXPECT_FALSE(decode(header(1), {kRunSingle | kRunJump, 0x80}).ok()) << "truncated varint";
  EXPECT_FALSE(decode(header(1), {kRunSingle | kRunJump, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                                  1, 2, 3, 4})
                   .ok())
      << "a varint beyond 64 bits";
  EXPECT_FALSE(decode(header(1), {kRunSingle | kRunJump, 1, 1, 2, 3, 4}).ok()) << "an offset below zero";
  EXPECT_FALSE(decode(header(1), {kRunSingle | kRunJump, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 1, 2, 3, 4}).ok())
      << "an offset beyond 42 bits of 16 bytes";
  EXPECT_FALSE(decode(header(2), {kRunJump, 2, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 2, 3, 4, 1, 2, 3, 4}).ok())
      << "a run that runs past the last offset";
  EXPECT_FALSE(decode(header(1), {kRunSingle | kRunLengthShared, 0, 1, 2, 3, 4}).ok()) << "a zero length";
  EXPECT_FALSE(decode(header(1), {kRunSingle | kRunLengthShared, 0x80, 0x80, 0x04, 1, 2, 3, 4}).ok())
      << "a length beyond 16 bits";
  EXPECT_FALSE(decode(header(1), {kRunSingle | kRunLengthMask, 1, 2, 3, 4}).ok()) << "an unknown length form";
  EXPECT_FALSE(decode(header(1), {kRunSingle | 3, 1, 2, 3, 4}).ok()) << "an unknown codec";
  EXPECT_FALSE(decode(header(1), {kRunSingle | 0x80, 1, 2, 3, 4}).ok()) << "an unknown flag";
  EXPECT_FALSE(decode(header(1), {kRunSingle | kRunZero | kRunJump}).ok()) << "a zero run with an offset";
  EXPECT_FALSE(decode(header(1, 1), {kRunSingle | kRunZero}, 1).ok()) << "a zero child above the leaves";
  EXPECT_FALSE(decode(header(2), {kRunZero, 0}).ok()) << "a run of no entries";
  EXPECT_FALSE(decode(header(1), {kRunSingle, 1, 2, 3}).ok()) << "a truncated checksum";
}

// --- format version ---------------------------------------------------------------

TEST(IndexSize, AnOlderStoreIsRefusedByName) {
  MemEnv env;
  StoreOptions o;
  o.env = &env;
  o.segment_size = 64 << 10;
  o.capacity = 4 << 20;
  ASSERT_TRUE(Store::create("/s", o).ok());
  auto bytes = env.contents("/s");
  Superblock sb;
  std::memcpy(&sb, bytes.data(), sizeof(sb));
  sb.version = 1;
  sb.checksum = struct_checksum(sb);
  std::memcpy(bytes.data(), &sb, sizeof(sb));
  env.set_contents("/s", bytes);
  auto s = Store::open("/s", o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.error().is(ErrorKind::kUnsupported)) << s.error().to_string();
  EXPECT_NE(s.error().to_string().find("version 1"), std::string::npos) << s.error().to_string();
}

}  // namespace
}  // namespace frost::store
