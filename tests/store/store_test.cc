// The store's behaviour, as a specification: snapshots, sharing, retention,
// recovery, cleaning, compression and concurrent reads.
#include <gtest/gtest.h>

#include <array>
#include <random>
#include <thread>

#include "store/mem_env.h"
#include "store/store.h"

namespace frost::store {
namespace {

using Page = std::array<uint8_t, kPageSize>;

Page stamp(uint64_t a, uint64_t b) {
  Page p;
  std::mt19937_64 rng(a * 1000003 + b);
  for (size_t i = 0; i < p.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(p.data() + i, &v, 8);
  }
  return p;
}

class StoreTest : public ::testing::Test {
 protected:
  StoreOptions opts() {
    StoreOptions o;
    o.env = &env_;
    o.segment_size = 64 << 10;
    o.capacity = 64 << 20;
    return o;
  }
  std::unique_ptr<Store> open() {
    auto s = Store::open_or_create("/s", opts_);
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    return std::move(s).value();
  }
  // The bytes on "disk" right now, as a power cut would leave them (MemEnv
  // never loses synced data; no destructor checkpoint runs).
  std::unique_ptr<Store> reopen_after_cut() {
    MemEnv* copy = new MemEnv;
    copies_.emplace_back(copy);
    copy->set_contents("/s", env_.contents("/s"));
    StoreOptions o = opts_;
    o.env = copy;
    auto s = Store::open("/s", o);
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    return std::move(s).value();
  }
  SnapshotId write(Store& s, const std::string& owner, std::optional<SnapshotId> parent,
                   const std::vector<uint64_t>& vpns, uint64_t tag, const std::string& meta = "") {
    auto w = s.begin_snapshot(owner, parent);
    EXPECT_TRUE(w.ok()) << w.error().to_string();
    for (uint64_t v : vpns) EXPECT_TRUE((*w)->put_page(v, stamp(tag, v)).ok());
    if (!meta.empty()) EXPECT_TRUE((*w)->put_meta({reinterpret_cast<const uint8_t*>(meta.data()), meta.size()}).ok());
    auto id = (*w)->commit();
    EXPECT_TRUE(id.ok()) << id.error().to_string();
    return *id;
  }
  void expect_page(Store& s, SnapshotId id, uint64_t vpn, uint64_t tag) {
    Page p;
    auto r = s.read_page(id, vpn, p);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_TRUE(*r) << "vpn " << vpn << " missing from snapshot " << id;
    EXPECT_EQ(p, stamp(tag, vpn)) << "vpn " << vpn << " of snapshot " << id;
  }

  MemEnv env_;
  std::vector<std::unique_ptr<MemEnv>> copies_;
  StoreOptions opts_ = opts();
};

TEST_F(StoreTest, FullSnapshotReadsBackAfterReopen) {
  SnapshotId id;
  {
    auto s = open();
    id = write(*s, "calc", std::nullopt, {1, 2, 3, 0x7fffffffff, 1000}, 7, "hello meta");
  }
  auto s = open();
  for (uint64_t v : {1ull, 2ull, 3ull, 0x7fffffffffull, 1000ull}) expect_page(*s, id, v, 7);
  Page p;
  EXPECT_FALSE(*s->read_page(id, 4, p));
  auto meta = s->read_meta(id);
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(std::string(meta->begin(), meta->end()), "hello meta");
  auto info = s->info(id);
  EXPECT_EQ(info->page_count, 5u);
  EXPECT_EQ(info->owner, "calc");
  EXPECT_TRUE(s->fsck()->clean());
}

TEST_F(StoreTest, IncrementalSharesUnchangedPagesAndWritesLittle) {
  auto s = open();
  std::vector<uint64_t> all;
  for (uint64_t v = 0; v < 2000; v++) all.push_back(v);
  SnapshotId full = write(*s, "db", std::nullopt, all, 1);
  SnapshotId inc = write(*s, "db", full, {5, 1500}, 2);
  for (uint64_t v : {0ull, 4ull, 6ull, 1999ull}) expect_page(*s, inc, v, 1);
  expect_page(*s, inc, 5, 2);
  expect_page(*s, inc, 1500, 2);
  expect_page(*s, full, 5, 1);  // the parent is untouched
  auto fi = s->info(full), ii = s->info(inc);
  EXPECT_EQ(ii->page_count, 2000u);
  EXPECT_EQ(ii->parent, full);
  // Two pages plus the nodes on their paths, not 2000 pages.
  EXPECT_LT(ii->bytes_written, 2 * kPageSize + 12 * 4200);
  EXPECT_GT(fi->bytes_written, 2000u * kPageSize);
}

TEST_F(StoreTest, RemovedPagesVanishFromTheChild) {
  auto s = open();
  SnapshotId a = write(*s, "p", std::nullopt, {10, 11, 12, 500, 70000}, 1);
  auto w = s->begin_snapshot("p", a);
  ASSERT_TRUE((*w)->remove_pages(11, 600).ok());
  ASSERT_TRUE((*w)->put_page(12, stamp(3, 12)).ok());  // put after remove wins
  SnapshotId b = *(*w)->commit();
  auto vpns = s->page_numbers(b);
  ASSERT_TRUE(vpns.ok());
  EXPECT_EQ(*vpns, (std::vector<uint64_t>{10, 12, 70000}));
  EXPECT_EQ(s->info(b)->page_count, 3u);
  expect_page(*s, b, 12, 3);
}

TEST_F(StoreTest, ZeroPagesTakeNoBlock) {
  auto s = open();
  Page zero{};
  auto w = s->begin_snapshot("z");
  for (uint64_t v = 0; v < 100; v++) ASSERT_TRUE((*w)->put_page(v, zero).ok());
  SnapshotId id = *(*w)->commit();
  EXPECT_LT(s->info(id)->bytes_written, 8 * 4200u);  // index nodes only
  Page p;
  p.fill(1);
  ASSERT_TRUE(*s->read_page(id, 42, p));
  EXPECT_EQ(p, zero);
  EXPECT_EQ(s->info(id)->page_count, 100u);
}

TEST_F(StoreTest, UncommittedSnapshotIsInvisible) {
  auto s = open();
  SnapshotId a = write(*s, "u", std::nullopt, {1}, 1);
  {
    auto w = s->begin_snapshot("u", a);
    ASSERT_TRUE((*w)->put_page(1, stamp(2, 1)).ok());
  }  // abandoned
  EXPECT_EQ(*s->latest("u"), a);
  auto s2 = reopen_after_cut();
  EXPECT_EQ(*s2->latest("u"), a);
  ASSERT_EQ(s2->list().size(), 1u);
  EXPECT_EQ(s2->list()[0].snapshots.size(), 1u);
}

TEST_F(StoreTest, RollForwardRecoversCommitsAfterTheCheckpoint) {
  opts_.checkpoint_every_bytes = 1ull << 40;  // no checkpoints but the first
  auto s = open();
  SnapshotId a = write(*s, "r", std::nullopt, {1, 2}, 1, "m1");
  SnapshotId b = write(*s, "r", a, {2}, 2);
  ASSERT_TRUE(s->pin(a).ok());
  auto s2 = reopen_after_cut();
  expect_page(*s2, b, 1, 1);
  expect_page(*s2, b, 2, 2);
  EXPECT_TRUE(s2->info(a)->pinned);
  auto meta = s2->read_meta(a);
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(std::string(meta->begin(), meta->end()), "m1");
  EXPECT_TRUE(s2->fsck()->clean());
}

TEST_F(StoreTest, RetentionKeepsTheLastKAndPinned) {
  auto s = open();
  ASSERT_TRUE(write(*s, "k", std::nullopt, {1}, 0));
  ASSERT_TRUE(s->set_retention("k", 2).ok());
  SnapshotId first = *s->latest("k");
  ASSERT_TRUE(s->pin(first).ok());
  SnapshotId prev = first;
  std::vector<SnapshotId> ids;
  for (int i = 1; i <= 5; i++) ids.push_back(prev = write(*s, "k", prev, {uint64_t(i)}, i));
  auto owners = s->list();
  ASSERT_EQ(owners.size(), 1u);
  std::vector<SnapshotId> kept;
  for (auto& si : owners[0].snapshots) kept.push_back(si.id);
  EXPECT_EQ(kept, (std::vector<SnapshotId>{first, ids[3], ids[4]}));
  // The survivors still read whole: deleting parents never breaks children.
  for (int i = 1; i <= 5; i++) expect_page(*s, ids[4], i, i);
}

TEST_F(StoreTest, RemoveAndRemoveOwner) {
  auto s = open();
  SnapshotId a = write(*s, "x", std::nullopt, {1}, 1);
  SnapshotId b = write(*s, "x", a, {2}, 2);
  ASSERT_TRUE(s->remove(a).ok());
  expect_page(*s, b, 1, 1);
  EXPECT_TRUE(s->remove(a).error().is(ErrorKind::kNotFound));
  ASSERT_TRUE(s->remove_owner("x").ok());
  EXPECT_TRUE(s->list().empty());
  auto s2 = reopen_after_cut();
  EXPECT_TRUE(s2->list().empty());
}

TEST_F(StoreTest, HeldSnapshotCannotBeRemoved) {
  auto s = open();
  SnapshotId a = write(*s, "h", std::nullopt, {1}, 1);
  ASSERT_TRUE(s->hold(a).ok());
  EXPECT_TRUE(s->remove(a).error().is(ErrorKind::kBusy));
  s->release(a);
  EXPECT_TRUE(s->remove(a).ok());
}

TEST_F(StoreTest, CleanerFreesSegmentsAndKeepsData) {
  auto s = open();
  ASSERT_TRUE(write(*s, "g", std::nullopt, {0}, 0));
  ASSERT_TRUE(s->set_retention("g", 1).ok());
  SnapshotId prev = *s->latest("g");
  std::vector<uint64_t> all;
  for (uint64_t v = 0; v < 100; v++) all.push_back(v);
  prev = write(*s, "g", prev, all, 1);
  std::vector<uint64_t> tags(100, 1);
  std::mt19937 rng(1);
  for (int round = 2; round < 40; round++) {
    std::vector<uint64_t> some;
    for (int i = 0; i < 20; i++) some.push_back(rng() % 100);
    prev = write(*s, "g", prev, some, round);
    for (uint64_t v : some) tags[v] = round;
  }
  auto before = s->stats();
  auto r = s->gc();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto after = s->stats();
  EXPECT_GT(r->segments_freed, 0u);
  EXPECT_LT(after.segments_used, before.segments_used);
  for (uint64_t v = 0; v < 100; v++) expect_page(*s, prev, v, tags[v]);
  auto f = s->fsck();
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->clean()) << f->damage[0];
  auto s2 = reopen_after_cut();
  for (uint64_t v = 0; v < 100; v++) expect_page(*s2, prev, v, tags[v]);
  EXPECT_TRUE(s2->fsck()->clean());
}

TEST_F(StoreTest, CompressionRoundTrips) {
  for (Codec c : {Codec::kLz4, Codec::kZstd}) {
    opts_.compression = c;
    auto s = open();
    std::string owner = c == Codec::kLz4 ? "lz4" : "zstd";
    auto w = s->begin_snapshot(owner);
    Page half = stamp(9, 9);
    std::fill(half.begin() + 2048, half.end(), 'a');
    ASSERT_TRUE((*w)->put_page(1, half).ok());
    SnapshotId id = *(*w)->commit();
    Page p;
    ASSERT_TRUE(*s->read_page(id, 1, p));
    EXPECT_EQ(p, half);
    EXPECT_LT(s->info(id)->bytes_written, 2048u + 6 * 120);  // compressed page + small nodes
  }
}

TEST_F(StoreTest, PutPagesEqualsPutPageOneByOne) {
  for (Codec c : {Codec::kNone, Codec::kLz4}) {
    opts_.compression = c;
    auto s = open();
    std::vector<uint8_t> run(300 * kPageSize);
    for (uint64_t i = 0; i < 300; i++) {
      Page p = stamp(4, 1000 + i);
      if (i % 7 == 0) p.fill(0);                              // zero pages take no block
      if (i % 3 == 0) std::fill(p.begin() + 1000, p.end(), 'z');  // compressible
      std::memcpy(run.data() + i * kPageSize, p.data(), kPageSize);
    }
    std::string owner = c == Codec::kNone ? "batch" : "batch-lz4";
    auto w = s->begin_snapshot(owner);
    ASSERT_TRUE((*w)->put_pages(1000, run).ok());
    EXPECT_TRUE((*w)->put_pages(0, std::span<const uint8_t>(run.data(), 100)).error().is(ErrorKind::kInvalidArgument));
    SnapshotId id = *(*w)->commit();
    EXPECT_EQ(s->info(id)->page_count, 300u);
    for (uint64_t i = 0; i < 300; i++) {
      Page p;
      ASSERT_TRUE(*s->read_page(id, 1000 + i, p));
      ASSERT_EQ(0, std::memcmp(p.data(), run.data() + i * kPageSize, kPageSize)) << "page " << i;
    }
    EXPECT_TRUE(s->fsck()->clean());
  }
}

TEST_F(StoreTest, ReadsAreSafeFromManyThreads) {
  auto s = open();
  std::vector<uint64_t> all;
  for (uint64_t v = 0; v < 300; v++) all.push_back(v * 37);
  SnapshotId id = write(*s, "t", std::nullopt, all, 5);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      Page p;
      for (int i = 0; i < 2000; i++) {
        uint64_t v = all[rng() % all.size()];
        auto r = s->read_page(id, v, p);
        if (!r.ok() || !*r || p != stamp(5, v)) bad++;
      }
    });
  }
  // A writer and the cleaner run at the same time.
  SnapshotId prev = id;
  for (int i = 0; i < 10; i++) prev = write(*s, "t2", std::nullopt, {uint64_t(i)}, i);
  ASSERT_TRUE(s->gc().ok());
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(StoreTest, BadInputGetsClearErrors) {
  auto s = open();
  EXPECT_TRUE(s->begin_snapshot("").error().is(ErrorKind::kInvalidArgument));
  EXPECT_TRUE(s->begin_snapshot("a/b").error().is(ErrorKind::kInvalidArgument));
  EXPECT_TRUE(s->begin_snapshot("a", 999).error().is(ErrorKind::kNotFound));
  Page p;
  EXPECT_TRUE(s->read_page(999, 1, p).error().is(ErrorKind::kNotFound));
  EXPECT_TRUE(s->latest("nobody").error().is(ErrorKind::kNotFound));
  auto w = s->begin_snapshot("a");
  EXPECT_TRUE((*w)->put_page(1ull << 50, p).error().is(ErrorKind::kInvalidArgument));
  SnapshotId other = write(*s, "b", std::nullopt, {1}, 1);
  EXPECT_TRUE(s->begin_snapshot("a", other).error().is(ErrorKind::kInvalidArgument));
  MemEnv empty;
  StoreOptions o = opts_;
  o.env = &empty;
  EXPECT_TRUE(Store::open("/none", o).error().is(ErrorKind::kNotFound));
  empty.set_contents("/junk", std::vector<uint8_t>(100000, 0x5a));
  EXPECT_TRUE(Store::open("/junk", o).error().is(ErrorKind::kCorruption));
}

TEST_F(StoreTest, SurvivesADamagedSuperblock) {
  SnapshotId id;
  {
    auto s = open();
    id = write(*s, "sb", std::nullopt, {1}, 1);
  }
  auto bytes = env_.contents("/s");
  bytes[20] ^= 0xff;
  env_.set_contents("/s", bytes);
  auto s = open();
  expect_page(*s, id, 1, 1);
  EXPECT_FALSE(s->fsck()->clean());  // named, and repaired on disk
  s.reset();
  auto s2 = open();
  EXPECT_TRUE(s2->fsck()->clean());
}

}  // namespace
}  // namespace frost::store
