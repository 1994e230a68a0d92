// The store when space runs out, either the configured capacity or the disk
// itself (MemEnv's size limit stands in for ENOSPC): writing stops with a
// clean kNoSpace error, nothing committed is lost, the store reopens, and once
// snapshots are removed and the cleaner has run, it takes new snapshots again.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "store/mem_env.h"
#include "store/store.h"

namespace frost::store {
namespace {

using Bytes = std::vector<uint8_t>;
using Page = std::array<uint8_t, kPageSize>;

constexpr char kPath[] = "/capacity/store";
const std::vector<std::string> kOwners = {"a", "b", "c"};

struct Written {
  std::string owner;
  std::map<uint64_t, Page> pages;
  Bytes meta;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class CapacityTest : public ::testing::Test {
 protected:
  StoreOptions options(uint64_t capacity) {
    StoreOptions o;
    o.env = &env_;
    o.segment_size = 64 << 10;
    o.capacity = capacity;
    o.default_retention = 1000;  // nothing leaves on its own: the store must fill
    o.max_snapshots = 1024;
    return o;
  }

  std::unique_ptr<Store> create(uint64_t capacity) {
    auto s = Store::create(kPath, options(capacity));
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  std::unique_ptr<Store> reopen(std::unique_ptr<Store> s, uint64_t capacity) {
    s.reset();
    auto again = Store::open(kPath, options(capacity));
    EXPECT_TRUE(again.ok()) << "reopen: " << again.error().to_string();
    return again.ok() ? std::move(again).value() : nullptr;
  }

  Page random_page() {
    Page p;
    for (auto& b : p) b = static_cast<uint8_t>(rng_());
    return p;
  }

  // One snapshot of owner: incremental on the owner's newest (changing six
  // pages) or, every third one, a full one of eight. Returns the id, or the
  // first error of begin/put/commit.
  Result<SnapshotId> write_snapshot(Store& s, const std::string& owner) {
    std::optional<SnapshotId> parent;
    Written w{owner, {}, {}};
    if (auto it = newest_.find(owner); it != newest_.end() && ++count_[owner] % 3 != 0) {
      parent = it->second;
      w.pages = written_.at(it->second).pages;
    }
    FROST_ASSIGN(auto writer, s.begin_snapshot(owner, parent));
    for (int i = 0; i < (parent ? 6 : 8); ++i) {
      uint64_t vpn = 0x100 + rng_() % 16;
      Page p = random_page();
      FROST_TRY(writer->put_page(vpn, p));
      w.pages[vpn] = p;
    }
    w.meta.resize(1000 + rng_() % 3000);
    for (auto& b : w.meta) b = static_cast<uint8_t>(rng_());
    FROST_TRY(writer->put_meta(w.meta));
    FROST_ASSIGN(SnapshotId id, writer->commit());
    written_[id] = std::move(w);
    newest_[owner] = id;
    return id;
  }

  // Commits snapshots until one fails; returns that error.
  std::optional<Error> fill(Store& s) {
    for (int i = 0; i < 2000; ++i) {
      auto id = write_snapshot(s, kOwners[i % kOwners.size()]);
      if (!id.ok()) return id.error();
    }
    ADD_FAILURE() << "2000 snapshots fit: the limit is not enforced";
    return std::nullopt;
  }

  void expect_no_space(const std::optional<Error>& e) {
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(e->is(ErrorKind::kNoSpace)) << "a full store failed with: " << e->to_string();
    std::string m = lower(e->to_string());
    EXPECT_TRUE(m.find("space") != std::string::npos || m.find("full") != std::string::npos ||
                m.find("capacity") != std::string::npos)
        << "the message does not say the store is full: " << e->to_string();
  }

  void expect_readable(const Store& s, SnapshotId id) {
    const Written& w = written_.at(id);
    size_t seen = 0;
    Status st = s.for_each_page(id, [&](uint64_t vpn, std::span<const uint8_t, kPageSize> page) -> Status {
      auto it = w.pages.find(vpn);
      EXPECT_TRUE(it != w.pages.end() && std::equal(page.begin(), page.end(), it->second.begin()))
          << "snapshot " << id << " vpn " << vpn << " reads back wrong";
      ++seen;
      return Status::Ok();
    });
    ASSERT_TRUE(st.ok()) << "snapshot " << id << ": " << st.error().to_string();
    EXPECT_EQ(seen, w.pages.size()) << "snapshot " << id;
    auto meta = s.read_meta(id);
    ASSERT_TRUE(meta.ok()) << "snapshot " << id << ": " << meta.error().to_string();
    EXPECT_TRUE(*meta == w.meta) << "snapshot " << id << " meta reads back wrong";
  }

  // Every snapshot committed and not removed is there, whole, and the newest.
  void expect_all_readable(const Store& s) {
    for (const auto& [id, w] : written_) expect_readable(s, id);
    for (const auto& [owner, id] : newest_) {
      auto latest = s.latest_intact(owner);
      ASSERT_TRUE(latest.ok()) << owner << ": " << latest.error().to_string();
      EXPECT_EQ(*latest, id) << owner;
    }
    auto report = s.fsck();
    ASSERT_TRUE(report.ok()) << report.error().to_string();
    EXPECT_TRUE(report->clean()) << ::testing::PrintToString(report->damage);
  }

  // Removes the older half of every owner's snapshots and runs the cleaner.
  void make_room(Store& s) {
    std::vector<SnapshotId> ids;
    for (const auto& [id, w] : written_)
      if (newest_.at(w.owner) != id) ids.push_back(id);
    ids.resize((ids.size() + 1) / 2);
    for (SnapshotId id : ids) {
      Status st = s.remove(id);
      ASSERT_TRUE(st.ok()) << "remove(" << id << ") in a full store: " << st.error().to_string();
      written_.erase(id);
    }
    auto gc = s.gc();
    ASSERT_TRUE(gc.ok()) << "gc in a full store: " << gc.error().to_string();
    EXPECT_GT(gc->segments_freed, 0u) << "removing half the snapshots freed nothing";
  }

  void expect_writable_again(Store& s) {
    for (int i = 0; i < 3; ++i) {
      auto id = write_snapshot(s, kOwners[i]);
      ASSERT_TRUE(id.ok()) << "after remove and gc: " << id.error().to_string();
    }
    expect_all_readable(s);
  }

  MemEnv env_;
  std::mt19937_64 rng_{20240611};
  std::map<SnapshotId, Written> written_;     // committed and not removed
  std::map<std::string, SnapshotId> newest_;  // per owner
  std::map<std::string, int> count_;
};

TEST_F(CapacityTest, ConfiguredCapacityFillsCleanly) {
  constexpr uint64_t kCapacity = 1 << 20;  // 16 segments
  auto s = create(kCapacity);
  ASSERT_TRUE(s);
  expect_no_space(fill(*s));
  ASSERT_GT(written_.size(), 3u) << "the store refused before holding anything";
  StoreStats st = s->stats();
  EXPECT_LE(st.segments_used, st.segments_total);
  EXPECT_EQ(st.segments_total, kCapacity / (64 << 10));
  // A full store is still a working store: reads, and a second refusal.
  expect_all_readable(*s);
  auto again = write_snapshot(*s, "a");
  ASSERT_FALSE(again.ok()) << "a full store took another snapshot";
  EXPECT_TRUE(again.error().is(ErrorKind::kNoSpace)) << again.error().to_string();
  make_room(*s);
  expect_writable_again(*s);
  s = reopen(std::move(s), kCapacity);
  ASSERT_TRUE(s);
  expect_all_readable(*s);
}

TEST_F(CapacityTest, ConfiguredCapacitySurvivesReopenWhenFull) {
  constexpr uint64_t kCapacity = 1 << 20;
  auto s = create(kCapacity);
  ASSERT_TRUE(s);
  expect_no_space(fill(*s));
  s = reopen(std::move(s), kCapacity);
  ASSERT_TRUE(s);
  expect_all_readable(*s);
  make_room(*s);
  expect_writable_again(*s);
}

// ENOSPC from the file system: the file cannot grow past a limit that falls
// in the middle of a segment, long before the configured capacity.
TEST_F(CapacityTest, FullDiskFailsCleanly) {
  constexpr uint64_t kCapacity = 64 << 20;
  auto s = create(kCapacity);
  ASSERT_TRUE(s);
  auto size = env_.contents(kPath).size();
  env_.set_size_limit(size + (1 << 20) + 12345);
  std::optional<Error> e = fill(*s);
  expect_no_space(e);
  ASSERT_GT(written_.size(), 3u);
  expect_all_readable(*s);
  s = reopen(std::move(s), kCapacity);
  ASSERT_TRUE(s);
  expect_all_readable(*s);
  // Freed segments lie inside the file: reusing them needs no new disk space.
  make_room(*s);
  expect_writable_again(*s);
  s = reopen(std::move(s), kCapacity);
  ASSERT_TRUE(s);
  expect_all_readable(*s);
}

// With retention doing its work, the cleaner keeps a small store writable
// for far more data than its capacity.
TEST_F(CapacityTest, RetentionKeepsASmallStoreWritable) {
  StoreOptions o = options(1 << 20);
  o.default_retention = 2;
  auto created = Store::create(kPath, o);
  ASSERT_TRUE(created.ok()) << created.error().to_string();
  Store& s = **created;
  for (int i = 0; i < 300; ++i) {  // ~9 MiB through a 1 MiB store
    const std::string& owner = kOwners[i % kOwners.size()];
    auto id = write_snapshot(s, owner);
    ASSERT_TRUE(id.ok()) << "snapshot " << i << ": " << id.error().to_string();
    // Retention dropped all but the newest two: forget the rest.
    std::vector<SnapshotId> mine;
    for (const auto& [sid, w] : written_)
      if (w.owner == owner) mine.push_back(sid);
    for (size_t k = 0; k + 2 < mine.size(); ++k) written_.erase(mine[k]);
  }
  EXPECT_GT(s.stats().gc_runs, 0u);
  expect_all_readable(s);
}

}  // namespace
}  // namespace frost::store
