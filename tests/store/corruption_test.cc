// Damages a store image the ways a disk can (flipped bits in every on-disk
// structure, a file cut short) and checks the store's promises on each copy:
// open() succeeds or fails with a clean Error, never crashes or hangs; a read
// returns the bytes that were written or a Corruption error, never other bytes;
// fsck() reports damage whenever a read finds some; latest_intact() finds the
// newest snapshot that is still whole.
//
// FROST_LONG_TESTS=1 runs many more cases. FROST_CORRUPTION_SEED=n changes the
// seed; every failure names its case (seed and damage) so it can be replayed.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/format.h"
#include "store/mem_env.h"
#include "store/store.h"

namespace frost::store {
namespace {

using Bytes = std::vector<uint8_t>;
using Page = std::array<uint8_t, kPageSize>;

constexpr char kPath[] = "/frost/store";
const std::vector<std::string> kOwners = {"alpha", "beta", "gamma"};

bool long_mode() {
  const char* v = std::getenv("FROST_LONG_TESTS");
  return v != nullptr && std::string(v) == "1";
}

int case_count(int short_n, int long_n) { return long_mode() ? long_n : short_n; }

uint64_t base_seed() {
  const char* v = std::getenv("FROST_CORRUPTION_SEED");
  return v ? std::strtoull(v, nullptr, 0) : 20240611;
}

// ---------------------------------------------------------------------------
// Watchdog: a store that loops forever on a damaged image must fail the test,
// not stall CI, so every case runs under a deadline.

class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void arm(const std::string& what) {
    std::lock_guard lock(mu_);
    what_ = what;
    deadline_ = std::chrono::steady_clock::now() + limit_;
    armed_ = true;
  }
  void disarm() {
    std::lock_guard lock(mu_);
    armed_ = false;
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      if (armed_ && std::chrono::steady_clock::now() > deadline_) {
        std::fprintf(stderr, "\nCorruption case hung (> %lld s): %s\n",
                     static_cast<long long>(limit_.count()), what_.c_str());
        std::fflush(stderr);
        std::_Exit(3);  // the stuck thread cannot be unwound; end the binary
      }
    }
  }

  std::chrono::seconds limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string what_;
  std::chrono::steady_clock::time_point deadline_;
  bool armed_ = false;
  bool stop_ = false;
  std::thread thread_;
};

Watchdog& watchdog() {
  static Watchdog w(std::chrono::seconds(long_mode() ? 60 : 20));
  return w;
}

// ---------------------------------------------------------------------------
// RecordingEnv remembers how far into the file writes reached, so the test
// knows the shortest file that still holds each snapshot.

class RecordingFile final : public File {
 public:
  RecordingFile(std::unique_ptr<File> f, std::atomic<uint64_t>* end) : f_(std::move(f)), end_(end) {}
  Result<size_t> read_at(uint64_t off, void* buf, size_t n) const override { return f_->read_at(off, buf, n); }
  Status write_at(uint64_t off, const void* buf, size_t n) override {
    note(off + n);
    return f_->write_at(off, buf, n);
  }
  Status sync() override { return f_->sync(); }
  Result<uint64_t> size() const override { return f_->size(); }
  Status reserve(uint64_t off, uint64_t len) override { return f_->reserve(off, len); }
  Status lock_exclusive() override { return f_->lock_exclusive(); }

 private:
  void note(uint64_t e) {
    uint64_t cur = end_->load();
    while (e > cur && !end_->compare_exchange_weak(cur, e)) {
    }
  }
  std::unique_ptr<File> f_;
  std::atomic<uint64_t>* end_;
};

class RecordingEnv final : public Env {
 public:
  explicit RecordingEnv(Env* base) : base_(base) {}
  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override {
    auto f = base_->open_file(path, mode);
    if (!f.ok()) return f.error();
    return std::unique_ptr<File>(new RecordingFile(std::move(f).value(), &end_));
  }
  Status sync_dir(const std::string& dir) override { return base_->sync_dir(dir); }
  bool exists(const std::string& path) override { return base_->exists(path); }
  // The furthest byte written since the last call.
  uint64_t take_write_end() { return end_.exchange(0); }

 private:
  Env* base_;
  std::atomic<uint64_t> end_{0};
};

// ---------------------------------------------------------------------------
// The golden store: what was written, and the image it left.

struct SnapshotTruth {
  std::string owner;
  SnapshotId parent = 0;
  std::map<uint64_t, Page> pages;        // zero pages included
  std::map<uint64_t, SnapshotId> origin;  // vpn -> the snapshot that put these bytes
  Bytes meta;
  uint64_t reach = 0;             // a file at least this long still holds all of it
  bool after_checkpoint = false;  // only roll-forward can find it
};

struct Golden {
  StoreOptions options;
  Bytes image;
  std::map<SnapshotId, SnapshotTruth> snaps;  // every snapshot ever committed
  std::set<SnapshotId> present;               // not removed at the end

  // Newest present snapshot of owner older than below (0: none).
  SnapshotId newest(const std::string& owner, SnapshotId below = ~0ull) const {
    SnapshotId best = 0;
    for (SnapshotId id : present)
      if (id < below && snaps.at(id).owner == owner) best = id;
    return best;
  }
};

Page random_page(std::mt19937_64& rng) {
  Page p;
  // Half the pages compress well (a repeated pattern) so compressed stores see
  // both kinds; the first 16 bytes stay random so every page is unique.
  bool patterned = rng() % 2;
  uint64_t pattern[2] = {rng(), rng()};
  for (size_t i = 0; i < p.size(); i += 8) {
    uint64_t v = (patterned && i >= 16) ? pattern[(i / 8) % 2] : rng();
    std::memcpy(p.data() + i, &v, 8);
  }
  return p;
}

Bytes random_bytes(std::mt19937_64& rng, size_t n) {
  Bytes b(n);
  for (auto& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

StoreOptions golden_options(Codec codec) {
  StoreOptions o;
  o.segment_size = 64 << 10;
  o.capacity = 4 << 20;
  o.compression = codec;
  o.default_retention = 64;
  o.max_snapshots = 64;
  o.checkpoint_every_bytes = 1ull << 40;  // only explicit checkpoints: keep a roll-forward tail
  return o;
}

class GoldenBuilder {
 public:
  // Without the cleaner the log only grows, so each snapshot ends where its
  // commit was written and truncation can be tested precisely.
  GoldenBuilder(uint64_t seed, Codec codec, bool run_cleaner) : rng_(seed), run_cleaner_(run_cleaner) {
    g_.options = golden_options(codec);
  }

  Golden build() {
    StoreOptions o = g_.options;
    o.env = &env_;
    auto s = Store::create(kPath, o);
    if (!s.ok()) {
      ADD_FAILURE() << "create: " << s.error().to_string();
      return {};
    }
    store_ = std::move(s).value();
    floor_ = env_.take_write_end();  // superblock and both checkpoint regions
    for (const auto& owner : kOwners) commit(owner, /*full=*/true);
    for (int round = 0; round < 3; ++round)
      for (const auto& owner : kOwners) commit(owner, false);
    remove_older();
    expect_ok(store_->pin(g_.newest("alpha")), "pin");
    if (run_cleaner_) run_gc();
    for (const auto& owner : kOwners) commit(owner, false);
    expect_ok(store_->checkpoint(), "checkpoint");
    floor_ = std::max(floor_, writes());
    after_checkpoint_ = true;
    log_end_ = 0;
    post_checkpoint_tail();
    // The image as a crash would leave it: taken before the store closes, so
    // nothing written at close hides the roll-forward tail.
    g_.image = mem_.contents(kPath);
    store_.reset();
    return std::move(g_);
  }

 private:
  // Writes after the checkpoint only count toward snapshots committed later:
  // roll-forward must read every partial up to a snapshot's commit.
  uint64_t writes() {
    uint64_t w = env_.take_write_end();
    log_end_ = std::max(log_end_, w);
    return w;
  }

  void expect_ok(const Status& s, const char* what) {
    EXPECT_TRUE(s.ok()) << what << ": " << s.error().to_string();
  }

  void post_checkpoint_tail() {
    for (const auto& owner : kOwners) commit(owner, false);
    // Ops in the log tail: roll-forward must replay them.
    SnapshotId old = g_.snaps.begin()->first;
    for (SnapshotId id : g_.present)
      if (g_.snaps[id].owner == "gamma" && id != g_.newest("gamma")) old = id;
    expect_ok(store_->remove(old), "remove");
    g_.present.erase(old);
    expect_ok(store_->unpin(g_.newest("alpha")), "unpin");
    writes();
    for (const auto& owner : kOwners) commit(owner, false);
  }

  // Removes some older snapshots, parents of live ones among them, so gc has
  // garbage to clean and shared blocks to keep.
  void remove_older() {
    for (const auto& owner : kOwners) {
      std::vector<SnapshotId> mine;
      for (SnapshotId id : g_.present)
        if (g_.snaps[id].owner == owner) mine.push_back(id);
      std::vector<SnapshotId> doomed = {mine[1]};
      if (owner == "beta") doomed.push_back(mine[0]);  // a full snapshot with children
      for (SnapshotId id : doomed) {
        expect_ok(store_->remove(id), "remove");
        g_.present.erase(id);
      }
    }
    writes();
  }

  void run_gc() {
    auto r = store_->gc();
    EXPECT_TRUE(r.ok()) << "gc: " << r.error().to_string();
    moved(writes());
  }

  // The cleaner may have moved the blocks of any present snapshot.
  void moved(uint64_t w) {
    for (SnapshotId id : g_.present) g_.snaps[id].reach = std::max(g_.snaps[id].reach, w);
  }

  void commit(const std::string& owner, bool full) {
    SnapshotId parent = full ? 0 : g_.newest(owner);
    SnapshotTruth t;
    if (parent) t = g_.snaps[parent];
    t.owner = owner;
    t.parent = parent;
    t.after_checkpoint = after_checkpoint_;
    uint64_t gc_runs = store_->stats().gc_runs;
    writes();
    auto w = store_->begin_snapshot(owner, parent ? std::optional<SnapshotId>(parent) : std::nullopt);
    if (!w.ok()) {
      ADD_FAILURE() << "begin_snapshot: " << w.error().to_string();
      return;
    }
    SnapshotWriter& writer = **w;
    if (full) {
      fill_full(writer, t);
    } else {
      change_some(writer, t);
    }
    t.meta = random_bytes(rng_, 1 + rng_() % 9000);
    expect_ok(writer.put_meta(t.meta), "put_meta");
    auto id = writer.commit();
    if (!id.ok()) {
      ADD_FAILURE() << "commit: " << id.error().to_string();
      return;
    }
    for (auto& [vpn, origin] : t.origin)
      if (origin == 0) origin = *id;
    uint64_t w_end = writes();
    t.reach = std::max({floor_, w_end, parent ? g_.snaps[parent].reach : 0,
                        after_checkpoint_ ? log_end_ : 0});
    g_.snaps[*id] = std::move(t);
    g_.present.insert(*id);
    if (store_->stats().gc_runs != gc_runs) moved(w_end);
  }

  void put(SnapshotWriter& w, SnapshotTruth& t, uint64_t vpn, const Page& p) {
    expect_ok(w.put_page(vpn, p), "put_page");
    t.pages[vpn] = p;
    t.origin[vpn] = 0;  // this snapshot; its id is known at commit
  }

  void fill_full(SnapshotWriter& w, SnapshotTruth& t) {
    uint64_t base = 0x400 + 0x1000 * (rng_() % 16);
    for (uint64_t v = base; v < base + 24; ++v) put(w, t, v, random_page(rng_));
    for (int i = 0; i < 6; ++i) put(w, t, rng_() % kMaxKey, random_page(rng_));  // deep tree paths
    put(w, t, kMaxKey, random_page(rng_));
    Page zero{};
    for (int i = 0; i < 2; ++i) put(w, t, base + 100 + i, zero);
  }

  void change_some(SnapshotWriter& w, SnapshotTruth& t) {
    std::vector<uint64_t> vpns;
    for (auto& [vpn, _] : t.pages) vpns.push_back(vpn);
    // Unmapped areas go first so no later put falls in them.
    if (rng_() % 3 == 0 && vpns.size() > 8) {
      uint64_t first = vpns[rng_() % (vpns.size() - 2)];
      uint64_t last = first + 1;
      expect_ok(w.remove_pages(first, last), "remove_pages");
      for (uint64_t v = first; v <= last; ++v) {
        t.pages.erase(v);
        t.origin.erase(v);
      }
      std::erase_if(vpns, [&](uint64_t v) { return v >= first && v <= last; });
    }
    for (int i = 0; i < 4; ++i) put(w, t, vpns[rng_() % vpns.size()], random_page(rng_));
    put(w, t, vpns.front() + 32 + rng_() % 64, random_page(rng_));  // a new area
    if (rng_() % 4 == 0) put(w, t, vpns[rng_() % vpns.size()], Page{});  // a page zeroed again
  }

  std::mt19937_64 rng_;
  MemEnv mem_;
  RecordingEnv env_{&mem_};
  std::unique_ptr<Store> store_;
  Golden g_;
  bool run_cleaner_;
  uint64_t floor_ = 0;
  uint64_t log_end_ = 0;
  bool after_checkpoint_ = false;
};

// ---------------------------------------------------------------------------
// ImageMap: the structures of an image, parsed from format.h, to aim damage.

struct Range {
  uint64_t off = 0;
  uint64_t len = 0;
  std::string what;
};

struct PartialInfo {
  uint64_t off = 0;  // file offset of its header
  PartialHeader h{};
};

struct RecordInfo {
  uint64_t off = 0;  // file offset
  SummaryEntry e{};
  uint64_t seq = 0;  // of its partial
};

template <class T>
bool load(const Bytes& img, uint64_t off, T* out) {
  if (off > img.size() || img.size() - off < sizeof(T)) return false;
  std::memcpy(out, img.data() + off, sizeof(T));
  return true;
}

struct ImageMap {
  Superblock sb{};
  CheckpointHeader cp[2]{};
  int newest = 0;  // region with the higher cp_seq
  std::vector<PartialInfo> partials;
  std::vector<RecordInfo> records;

  explicit ImageMap(const Bytes& img) {
    load(img, 0, &sb);
    for (int i = 0; i < 2; ++i) load(img, sb.cr_offset[i], &cp[i]);
    newest = cp[1].magic == kCheckpointMagic && cp[1].cp_seq > cp[0].cp_seq ? 1 : 0;
    for (uint64_t s = 0; s < sb.segment_count; ++s) walk_segment(img, s);
  }

  uint64_t log_seq() const { return cp[newest].log_seq; }

  // Partials lie back to back from the start of a segment; the walk stops at
  // the first block that is not a header of this segment.
  void walk_segment(const Bytes& img, uint64_t s) {
    uint64_t start = sb.segment_base + s * sb.segment_size;
    for (uint64_t off = 0; off < sb.segment_size;) {
      PartialInfo p{start + off, {}};
      if (!load(img, p.off, &p.h) || p.h.magic != kPartialMagic || p.h.segment != s || p.h.offset != off ||
          p.h.length < kMinPartial || p.h.length > sb.segment_size - off)
        return;
      partials.push_back(p);
      uint64_t sum = summary_off(p);
      for (uint32_t i = 0; i < p.h.entry_count && i < 4096; ++i) {
        RecordInfo r;
        if (!load(img, sum + i * sizeof(SummaryEntry), &r.e)) break;
        r.off = start + r.e.offset;
        r.seq = p.h.seq;
        records.push_back(r);
      }
      off += p.h.length;
    }
  }

  uint64_t summary_off(const PartialInfo& p) const { return p.off + kPartialHeaderSize + p.h.data_length; }
  uint64_t summary_len(const PartialInfo& p) const { return uint64_t(p.h.entry_count) * sizeof(SummaryEntry); }

  // The partial seq that holds id's commit record (0: not in the log).
  uint64_t commit_seq(SnapshotId id) const {
    for (const auto& r : records)
      if (r.e.kind == uint8_t(RecordKind::kCommit) && r.e.key == id) return r.seq;
    return 0;
  }
};

// ---------------------------------------------------------------------------
// Checking one damaged image.

// Snapshots the checker wrote itself after opening a damaged image; they
// shadow golden ids the damage lost and the store handed out again.
struct Truths {
  const Golden& g;
  StoreOptions options;  // the golden options on the case's own MemEnv
  std::map<SnapshotId, SnapshotTruth> extra;
  const SnapshotTruth* find(SnapshotId id) const {
    if (auto it = extra.find(id); it != extra.end()) return &it->second;
    if (auto it = g.snaps.find(id); it != g.snaps.end()) return &it->second;
    return nullptr;
  }
};

struct Outcome {
  bool opened = false;
  std::map<std::string, SnapshotId> intact;  // owner -> latest_intact()
  bool read_failed = false;                  // some listed snapshot read as corrupt
  bool fsck_clean = false;
  FsckReport fsck;
};

void expect_clean_error(const Error& e, const std::string& call) {
  EXPECT_TRUE(e.is(ErrorKind::kCorruption) || e.is(ErrorKind::kUnsupported))
      << call << " failed with an unexpected kind of error: " << e.to_string();
  EXPECT_FALSE(e.message().empty()) << call << " failed without a message";
}

// Reads all of id and compares it with the truth. Returns false when the store
// reported Corruption; wrong bytes or other errors fail the test.
bool read_all(const Store& s, SnapshotId id, const SnapshotTruth& t) {
  size_t seen = 0;
  bool wrong = false;
  Status st = s.for_each_page(id, [&](uint64_t vpn, std::span<const uint8_t, kPageSize> page) -> Status {
    auto it = t.pages.find(vpn);
    if (it == t.pages.end() || !std::equal(page.begin(), page.end(), it->second.begin())) {
      ADD_FAILURE() << "snapshot " << id << " returned wrong bytes for vpn " << vpn
                    << (it == t.pages.end() ? " (a page it never had)" : "");
      wrong = true;
      return Error::invalid("wrong bytes");
    }
    ++seen;
    return Status::Ok();
  });
  if (wrong) return false;
  if (!st.ok()) {
    expect_clean_error(st.error(), "for_each_page(" + std::to_string(id) + ")");
    return false;
  }
  EXPECT_EQ(seen, t.pages.size()) << "for_each_page(" << id << ") missed pages";
  auto meta = s.read_meta(id);
  if (!meta.ok()) {
    expect_clean_error(meta.error(), "read_meta(" + std::to_string(id) + ")");
    return false;
  }
  EXPECT_TRUE(*meta == t.meta) << "snapshot " << id << " returned wrong meta";
  return seen == t.pages.size() && *meta == t.meta;
}

void check_listing(const Store& s, const Truths& truths, Outcome* out) {
  std::set<SnapshotId> listed;
  for (const OwnerInfo& o : s.list()) {
    for (const SnapshotInfo& info : o.snapshots) {
      listed.insert(info.id);
      const SnapshotTruth* t = truths.find(info.id);
      if (t == nullptr) {
        ADD_FAILURE() << "list() shows snapshot " << info.id << " that was never committed";
        continue;
      }
      EXPECT_EQ(info.owner, t->owner) << "snapshot " << info.id;
      EXPECT_EQ(o.name, t->owner) << "snapshot " << info.id;
      EXPECT_EQ(info.parent, t->parent) << "snapshot " << info.id;
      EXPECT_EQ(info.page_count, t->pages.size()) << "snapshot " << info.id;
      EXPECT_EQ(info.meta_length, t->meta.size()) << "snapshot " << info.id;
      if (!read_all(s, info.id, *t)) out->read_failed = true;
    }
  }
  // What list() does not show must not be readable either.
  for (const auto& [id, t] : truths.g.snaps) {
    if (listed.count(id)) continue;
    auto meta = s.read_meta(id);
    EXPECT_TRUE(!meta.ok() && meta.error().is(ErrorKind::kNotFound))
        << "snapshot " << id << " is not listed but read_meta() "
        << (meta.ok() ? "returned bytes" : "failed with " + meta.error().to_string());
  }
}

void check_latest_intact(const Store& s, const Truths& truths, const std::vector<std::string>& owners,
                         Outcome* out) {
  for (const auto& owner : owners) {
    auto id = s.latest_intact(owner);
    if (!id.ok()) continue;  // nothing of owner survived: allowed
    const SnapshotTruth* t = truths.find(*id);
    if (t == nullptr || t->owner != owner) {
      ADD_FAILURE() << "latest_intact(" << owner << ") = " << *id << ", not a snapshot of " << owner;
      continue;
    }
    EXPECT_TRUE(read_all(s, *id, *t)) << "latest_intact(" << owner << ") = " << *id << " is not intact";
    Status v = s.verify(*id);
    EXPECT_TRUE(v.ok()) << "latest_intact(" << owner << ") = " << *id << " fails verify: " << v.error().to_string();
    auto newest = s.latest(owner);
    EXPECT_TRUE(newest.ok() && *newest >= *id) << "latest(" << owner << ") is older than latest_intact";
    out->intact[owner] = *id;
  }
}

void check_fsck(const Store& s, Outcome* out) {
  auto r = s.fsck();
  if (!r.ok()) return expect_clean_error(r.error(), "fsck");
  out->fsck = *r;
  out->fsck_clean = r->clean();
  for (const auto& line : r->damage) EXPECT_FALSE(line.empty()) << "fsck reported damage without naming it";
  // The promise that makes fsck worth running: it sees whatever a read sees.
  EXPECT_FALSE(out->read_failed && r->clean()) << "a snapshot reads as corrupt but fsck is clean";
}

Outcome check_open_store(const Store& s, const Truths& truths, const std::vector<std::string>& owners) {
  Outcome out;
  out.opened = true;
  check_listing(s, truths, &out);
  check_latest_intact(s, truths, owners, &out);
  (void)s.stats();
  check_fsck(s, &out);
  return out;
}

// After recovery from damage the store must keep working: the cleaner may run,
// a new snapshot may be committed, and both must survive a reopen without
// losing what was intact before.
void write_and_reopen(std::unique_ptr<Store> s, Truths& truths, const Outcome& first) {
  std::mt19937_64 rng(first.intact.size());
  auto gc = s->gc();
  if (!gc.ok()) {
    EXPECT_TRUE(gc.error().is(ErrorKind::kCorruption) || gc.error().is(ErrorKind::kNoSpace))
        << "gc: " << gc.error().to_string();
  }
  SnapshotTruth fresh;
  fresh.owner = "fresh";
  std::optional<SnapshotId> committed;
  if (auto w = s->begin_snapshot("fresh"); w.ok()) {
    for (uint64_t vpn : {7, 8, 900}) {
      fresh.pages[vpn] = random_page(rng);
      (void)(*w)->put_page(vpn, fresh.pages[vpn]);
    }
    fresh.meta = random_bytes(rng, 77);
    (void)(*w)->put_meta(fresh.meta);
    if (auto id = (*w)->commit(); id.ok()) committed = *id;
  }
  s.reset();
  if (committed) truths.extra[*committed] = fresh;
  auto again = Store::open(kPath, truths.options);
  ASSERT_TRUE(again.ok()) << "a store that opened once no longer opens after gc and a commit: "
                          << again.error().to_string();
  std::vector<std::string> owners = kOwners;
  owners.push_back("fresh");
  Outcome second = check_open_store(**again, truths, owners);
  for (const auto& [owner, id] : first.intact) {
    EXPECT_EQ(second.intact.count(owner) ? second.intact.at(owner) : 0, id)
        << "after gc, a commit and a reopen, latest_intact(" << owner << ") changed";
  }
  if (committed) {
    EXPECT_EQ(second.intact.count("fresh") ? second.intact.at("fresh") : 0, *committed)
        << "a snapshot committed after recovery did not survive a reopen";
  }
}

// Opens image and checks every promise; probe, if given, looks further at the
// opened store. exercise_writes adds gc, a commit and a reopen. The whole case
// runs under the watchdog.
Outcome check_image(const Golden& g, Bytes image, const std::string& what, bool exercise_writes,
                    const std::function<void(const Store&)>& probe = {}) {
  SCOPED_TRACE(what);
  watchdog().arm(what);
  MemEnv env;
  env.set_contents(kPath, std::move(image));
  Truths truths{g, g.options, {}};
  truths.options.env = &env;
  Outcome out;
  auto s = Store::open(kPath, truths.options);
  if (!s.ok()) {
    expect_clean_error(s.error(), "open");
  } else {
    out = check_open_store(**s, truths, kOwners);
    if (probe) probe(**s);
    if (exercise_writes) write_and_reopen(std::move(s).value(), truths, out);
  }
  watchdog().disarm();
  return out;
}

// ---------------------------------------------------------------------------
// Damage.

std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// Flips bits random bits inside r; returns a description for the trace.
std::string flip_in(Bytes& img, const Range& r, int bits, std::mt19937_64& rng) {
  std::string d = "flip in " + r.what + " [" + hex(r.off) + "+" + hex(r.len) + "):";
  for (int i = 0; i < bits && r.len > 0; ++i) {
    uint64_t off = r.off + rng() % r.len;
    int bit = rng() % 8;
    if (off < img.size()) img[off] ^= uint8_t(1u << bit);
    d += " " + hex(off) + "." + std::to_string(bit);
  }
  return d;
}

std::string case_name(uint64_t seed, int i) {
  return "seed " + std::to_string(seed) + " case " + std::to_string(i);
}

// ---------------------------------------------------------------------------
// The tests.

class CorruptionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new Golden(GoldenBuilder(base_seed(), Codec::kNone, true).build());
    map_ = new ImageMap(golden_->image);
  }
  static void TearDownTestSuite() {
    delete map_;
    delete golden_;
  }
  void SetUp() override { ASSERT_FALSE(golden_->image.empty()) << "the golden store could not be built"; }

  const Golden& g() const { return *golden_; }
  const ImageMap& map() const { return *map_; }
  bool stop() const { return HasFailure(); }  // one failing case is enough to read

  // Every owner's latest snapshot must have survived.
  void expect_all_intact(const Outcome& out, const std::string& why) {
    ASSERT_TRUE(out.opened) << why;
    for (const auto& owner : kOwners)
      EXPECT_EQ(out.intact.count(owner) ? out.intact.at(owner) : 0, g().newest(owner))
          << why << ": latest_intact(" << owner << ")";
  }

  // Flips a few bits in each of ranges (sampled), expecting each case to pass check.
  void flip_each(const std::vector<Range>& ranges, int per_range, uint64_t salt,
                 const std::function<void(const Outcome&, const Range&)>& check) {
    std::mt19937_64 rng(base_seed() ^ salt);
    for (size_t i = 0; i < ranges.size() && !stop(); ++i) {
      for (int k = 0; k < per_range && !stop(); ++k) {
        Bytes img = g().image;
        std::string what = case_name(base_seed() ^ salt, int(i * per_range + k)) + ": " +
                           flip_in(img, ranges[i], 1 + rng() % 3, rng);
        Outcome out = check_image(g(), std::move(img), what, k == 0);
        SCOPED_TRACE(what);
        check(out, ranges[i]);
      }
    }
  }

  // One live block before the checkpoint is damaged in img; damaged are the
  // present snapshots that hold it. Their reads fail, fsck names each, and
  // latest_intact() falls back to the newest snapshot without the block.
  void expect_fallback(Bytes img, const std::string& what, const std::set<SnapshotId>& damaged) {
    std::map<SnapshotId, Status> verified;
    Outcome out = check_image(g(), std::move(img), what, true, [&](const Store& s) {
      for (SnapshotId id : damaged) verified[id] = s.verify(id);
    });
    SCOPED_TRACE(what);
    ASSERT_TRUE(out.opened) << "damage in one block made the store unopenable";
    EXPECT_TRUE(out.read_failed) << "the damaged snapshots read back without an error";
    for (const auto& [id, st] : verified)
      EXPECT_TRUE(!st.ok() && st.error().is(ErrorKind::kCorruption)) << "verify(" << id << ")";
    for (const auto& owner : kOwners) {
      SnapshotId want = 0;
      for (SnapshotId id : g().present)
        if (g().snaps.at(id).owner == owner && !damaged.count(id)) want = id;
      EXPECT_EQ(out.intact.count(owner) ? out.intact.at(owner) : 0, want) << "latest_intact(" << owner << ")";
    }
    EXPECT_FALSE(out.fsck_clean) << "fsck missed damage in a live block";
    for (SnapshotId id : damaged) {
      std::string name = "snapshot " + std::to_string(id);
      bool named = std::any_of(out.fsck.damage.begin(), out.fsck.damage.end(),
                               [&](const std::string& line) { return line.find(name) != std::string::npos; });
      EXPECT_TRUE(named) << "no fsck damage line names " << name << ": " << ::testing::PrintToString(out.fsck.damage);
    }
  }

  static Golden* golden_;
  static ImageMap* map_;
};

Golden* CorruptionTest::golden_ = nullptr;
ImageMap* CorruptionTest::map_ = nullptr;

TEST_F(CorruptionTest, UntouchedImageIsWholeAndClean) {
  Outcome out = check_image(g(), g().image, "untouched image", /*exercise_writes=*/true);
  expect_all_intact(out, "untouched image");
  EXPECT_TRUE(out.fsck_clean) << "fsck of an untouched image: " << ::testing::PrintToString(out.fsck.damage);
  EXPECT_GT(out.fsck.pages_checked, 0u);
  // The scenario must have exercised what it claims to.
  EXPECT_GE(map().partials.size(), 4u);
  EXPECT_GT(map().commit_seq(g().newest("gamma")), 0u) << "no commit record in the log tail";
  EXPECT_GE(map().commit_seq(g().newest("gamma")), map().log_seq()) << "the last commit is not after the checkpoint";
}

TEST_F(CorruptionTest, RandomBitFlips) {
  std::mt19937_64 rng(base_seed());
  int n = case_count(1000, 40000);
  for (int i = 0; i < n && !stop(); ++i) {
    Bytes img = g().image;
    // Half the cases aim at the bytes recovery reads first, which a uniform
    // offset would rarely hit in a mostly-data image.
    Range r{0, img.size(), "the image"};
    if (i % 2) r = {0, map().sb.segment_base, "superblock and checkpoint regions"};
    std::string what = case_name(base_seed(), i) + ": " + flip_in(img, r, 1 + rng() % 8, rng);
    check_image(g(), std::move(img), what, i % 8 == 0);
  }
}

// Cuts the image of golden at random lengths. Returns how many cuts left
// some snapshot wholly before them.
int truncate_many(const Golden& golden, uint64_t seed, int n) {
  ImageMap map(golden.image);
  std::mt19937_64 rng(seed);
  int kept = 0;
  for (int i = 0; i < n && !::testing::Test::HasFailure(); ++i) {
    uint64_t cut = rng() % (golden.image.size() + 1);
    // Aim a third of the cuts near partial boundaries, where torn tails live.
    if (i % 3 == 0 && !map.partials.empty()) {
      const auto& p = map.partials[rng() % map.partials.size()];
      cut = std::min<uint64_t>(golden.image.size(), p.off + p.h.length - 64 + rng() % 128);
    }
    Bytes img(golden.image.begin(), golden.image.begin() + cut);
    std::string what = case_name(seed, i) + ": truncate at " + hex(cut);
    Outcome out = check_image(golden, std::move(img), what, i % 8 == 0);
    SCOPED_TRACE(what);
    for (const auto& owner : kOwners) {
      SnapshotId want = 0;
      for (SnapshotId id : golden.present)
        if (golden.snaps.at(id).owner == owner && golden.snaps.at(id).reach <= cut) want = id;
      if (want == 0) continue;
      kept += owner == kOwners[0];
      EXPECT_TRUE(out.opened) << "snapshot " << want << " lies wholly before the cut but open failed";
      EXPECT_GE(out.intact.count(owner) ? out.intact.at(owner) : 0, want)
          << "latest_intact(" << owner << ") lost snapshot " << want << " which lies wholly before the cut";
    }
  }
  return kept;
}

// Compressed pages and meta: damage must stop at the checksum, never reach
// a decompressor as if it were good.
TEST_F(CorruptionTest, CompressedImageRandomBitFlips) {
  for (Codec codec : {Codec::kLz4, Codec::kZstd}) {
    Golden z = GoldenBuilder(base_seed() + 4, codec, true).build();
    ASSERT_FALSE(z.image.empty());
    ASSERT_LT(z.image.size(), g().image.size()) << "compression saved nothing: the test proves little";
    std::mt19937_64 rng(base_seed() + 5);
    int n = case_count(150, 5000);
    for (int i = 0; i < n && !stop(); ++i) {
      Bytes img = z.image;
      std::string what = std::string(codec == Codec::kLz4 ? "lz4 " : "zstd ") + case_name(base_seed() + 5, i) +
                         ": " + flip_in(img, {0, img.size(), "the image"}, 1 + rng() % 4, rng);
      check_image(z, std::move(img), what, i % 8 == 0);
    }
  }
}

TEST_F(CorruptionTest, TruncationKeepsWhatLiesBeforeTheCut) {
  // After the cleaner ran, blocks of old snapshots sit near the end of the
  // file, so few cuts keep anything whole; the generic promises still hold.
  truncate_many(g(), base_seed() + 1, case_count(150, 5000));
  Golden linear = GoldenBuilder(base_seed() + 2, Codec::kNone, false).build();
  ASSERT_FALSE(linear.image.empty());
  int n = case_count(300, 8000);
  int kept = truncate_many(linear, base_seed() + 3, n);
  EXPECT_GT(kept, n / 4) << "too few cuts left a whole snapshot: the test proves little";
}

TEST_F(CorruptionTest, OlderCheckpointRegionDamageLosesNothing) {
  int older = 1 - map().newest;
  const CheckpointHeader& cp = map().cp[older];
  ASSERT_EQ(cp.magic, kCheckpointMagic) << "only one checkpoint was ever written";
  uint64_t off = map().sb.cr_offset[older];
  std::vector<Range> ranges = {{off, sizeof(CheckpointHeader), "older checkpoint header"},
                               {off + sizeof(CheckpointHeader), cp.payload_length, "older checkpoint payload"}};
  flip_each(ranges, case_count(20, 400), 11, [&](const Outcome& out, const Range& r) {
    expect_all_intact(out, "damage in the " + r.what);
  });
}

TEST_F(CorruptionTest, NewerCheckpointRegionDamageIsSurvivedOrRefused) {
  int newer = map().newest;
  uint64_t off = map().sb.cr_offset[newer];
  std::vector<Range> ranges = {
      {off, sizeof(CheckpointHeader), "newer checkpoint header"},
      {off + sizeof(CheckpointHeader), map().cp[newer].payload_length, "newer checkpoint payload"}};
  flip_each(ranges, case_count(20, 400), 12, [](const Outcome&, const Range&) {});
}

TEST_F(CorruptionTest, SuperblockDamageIsSurvivedOrRefused) {
  int survived = 0, refused = 0;
  std::vector<Range> ranges = {{0, sizeof(Superblock), "superblock"}};
  flip_each(ranges, case_count(40, 1000), 13, [&](const Outcome& out, const Range&) {
    if (!out.opened) return (void)++refused;
    ++survived;
    expect_all_intact(out, "a store that opens despite a damaged superblock");
  });
  // A wiped superblock block: the fields are replicated in every partial header.
  Bytes img = g().image;
  std::fill(img.begin(), img.begin() + kBlockSize, 0);
  Outcome out = check_image(g(), std::move(img), "superblock block zeroed", true);
  if (out.opened) expect_all_intact(out, "a store that opens without its superblock");
  std::printf("[ superblock ] damaged: %d survived, %d refused; zeroed: %s\n", survived, refused,
              out.opened ? "survived" : "refused");
  RecordProperty("superblock_survived", survived);
}

// The store recovers the superblock from the copies in partial headers (a
// zeroed superblock opens), so any damage to it should be survived.
// DISABLED: a flip in the version field gives kUnsupported before the checksum
// is consulted, so no copy is searched for (reported to the lead).
TEST_F(CorruptionTest, SuperblockDamageIsAlwaysSurvived) {
  std::vector<Range> ranges;
  for (uint64_t off = 0; off < sizeof(Superblock); off += 4) ranges.push_back({off, 4, "superblock"});
  flip_each(ranges, 1, 21, [&](const Outcome& out, const Range& r) {
    expect_all_intact(out, "damage in the " + r.what);
  });
}

// Before the checkpoint, partial headers and summaries matter only to the
// cleaner: recovery starts from the checkpoint and reads go through the index.
TEST_F(CorruptionTest, DamageBeforeTheCheckpointLosesNothing) {
  std::vector<Range> ranges;
  for (const auto& p : map().partials) {
    if (p.h.seq >= map().log_seq()) continue;
    ranges.push_back({p.off, sizeof(PartialHeader), "header of old partial seq " + std::to_string(p.h.seq)});
    ranges.push_back({map().summary_off(p), map().summary_len(p), "summary of old partial seq " + std::to_string(p.h.seq)});
  }
  ASSERT_FALSE(ranges.empty());
  flip_each(ranges, case_count(2, 20), 14, [&](const Outcome& out, const Range& r) {
    expect_all_intact(out, "damage in the " + r.what);
  });
}

// In the log tail roll-forward stops at the first damaged partial (it cannot
// tell damage from a torn write): every snapshot committed before it stays.
TEST_F(CorruptionTest, DamageInTheLogTailKeepsEarlierCommits) {
  struct Target {
    Range r;
    uint64_t seq;
  };
  std::vector<Target> targets;
  for (const auto& p : map().partials) {
    if (p.h.seq < map().log_seq()) continue;
    std::string s = " of log partial seq " + std::to_string(p.h.seq);
    targets.push_back({{p.off, sizeof(PartialHeader), "header" + s}, p.h.seq});
    targets.push_back({{map().summary_off(p), map().summary_len(p), "summary" + s}, p.h.seq});
  }
  for (const auto& r : map().records)
    if (r.seq >= map().log_seq())
      targets.push_back({{r.off, r.e.length, "record kind " + std::to_string(r.e.kind) + " in log partial seq " +
                                                  std::to_string(r.seq)},
                         r.seq});
  ASSERT_GT(targets.size(), 2u) << "no partial after the checkpoint";
  std::mt19937_64 rng(base_seed() + 15);
  std::shuffle(targets.begin() + 1, targets.end(), rng);
  targets.resize(std::min<size_t>(targets.size(), case_count(60, 5000)));
  std::vector<Range> ranges;
  for (const auto& t : targets) ranges.push_back(t.r);
  flip_each(ranges, 1, 15, [&](const Outcome& out, const Range& r) {
    const Target& t = targets[&r - ranges.data()];
    ASSERT_TRUE(out.opened) << "damage in the log tail made the store unopenable";
    for (const auto& owner : kOwners) {
      SnapshotId want = 0;
      for (SnapshotId id : g().present) {
        const auto& s = g().snaps.at(id);
        if (s.owner == owner && (!s.after_checkpoint || map().commit_seq(id) < t.seq)) want = id;
      }
      EXPECT_GE(out.intact.count(owner) ? out.intact.at(owner) : 0, want)
          << "latest_intact(" << owner << ") after damage in partial seq " << t.seq;
    }
  });
}

// Roll-forward stopping at a partial whose header is whole drops commits that
// were durable; fsck must say so (store.h: a torn log tail is at least a note).
// DISABLED: the store drops them silently (reported to the lead); enable once
// recovery notes where and why it stopped.
TEST_F(CorruptionTest, DroppedLogTailIsReported) {
  std::vector<Range> ranges;
  for (const auto& r : map().records)
    if (r.seq >= map().log_seq()) ranges.push_back({r.off, r.e.length, "record in log partial seq " + std::to_string(r.seq)});
  ASSERT_FALSE(ranges.empty());
  flip_each(ranges, 1, 20, [&](const Outcome& out, const Range&) {
    EXPECT_FALSE(out.fsck.damage.empty() && out.fsck.notes.empty())
        << "roll-forward dropped part of the log tail and fsck says nothing";
  });
}

// Any record: nodes, commits, ops, pages. The generic promises must hold.
TEST_F(CorruptionTest, RecordDamageIsDetected) {
  std::vector<Range> ranges;
  for (const auto& r : map().records)
    ranges.push_back({r.off, r.e.length, "record kind " + std::to_string(r.e.kind) + " key " + hex(r.e.key) +
                                             " epoch " + std::to_string(r.e.epoch)});
  ASSERT_FALSE(ranges.empty());
  std::mt19937_64 rng(base_seed() + 16);
  std::shuffle(ranges.begin(), ranges.end(), rng);
  ranges.resize(std::min<size_t>(ranges.size(), case_count(250, 100000)));
  flip_each(ranges, 1, 16, [](const Outcome&, const Range&) {});
}

// Where in the image a block's bytes are stored raw, if exactly once.
std::optional<uint64_t> find_once(const Bytes& img, std::span<const uint8_t> bytes) {
  auto at = std::search(img.begin(), img.end(), bytes.begin(), bytes.end());
  if (at == img.end() || std::search(at + 1, img.end(), bytes.begin(), bytes.end()) != img.end()) return std::nullopt;
  return uint64_t(at - img.begin());
}

// A page written before the checkpoint and still held by the owner's newest
// snapshot, hit by one flipped bit: every snapshot sharing it reads as corrupt.
TEST_F(CorruptionTest, LivePageDamageIsReported) {
  std::mt19937_64 rng(base_seed() + 17);
  for (const auto& owner : kOwners) {
    const SnapshotTruth& t = g().snaps.at(g().newest(owner));
    for (const auto& [vpn, origin] : t.origin) {
      const Page& p = t.pages.at(vpn);
      auto at = find_once(g().image, p);
      if (g().snaps.at(origin).after_checkpoint || !at) continue;  // zero pages and moved ones are not once
      std::set<SnapshotId> damaged;
      for (SnapshotId id : g().present) {
        const auto& o = g().snaps.at(id).origin;
        if (auto it = o.find(vpn); it != o.end() && it->second == origin) damaged.insert(id);
      }
      Bytes img = g().image;
      std::string what = "page vpn " + hex(vpn) + " put by snapshot " + std::to_string(origin) + ": " +
                         flip_in(img, {*at, kPageSize, "page"}, 1, rng);
      expect_fallback(std::move(img), what, damaged);
      break;  // one page per owner
    }
  }
}

TEST_F(CorruptionTest, LiveMetaDamageIsReported) {
  std::mt19937_64 rng(base_seed() + 18);
  int tested = 0;
  for (SnapshotId id : g().present) {
    const SnapshotTruth& t = g().snaps.at(id);
    size_t n = std::min<size_t>(t.meta.size(), kPageSize);
    auto at = find_once(g().image, std::span(t.meta.data(), n));
    if (t.after_checkpoint || n < 64 || !at) continue;
    Bytes img = g().image;
    std::string what = "meta of snapshot " + std::to_string(id) + ": " + flip_in(img, {*at, n, "meta"}, 1, rng);
    expect_fallback(std::move(img), what, {id});
    ++tested;
  }
  EXPECT_GT(tested, 2);
}

// Slack is covered by no checksum and read by nothing: damage there is harmless.
TEST_F(CorruptionTest, DamageInSlackIsHarmless) {
  std::vector<Range> ranges;
  for (const auto& p : map().partials) {
    uint64_t end = map().summary_off(p) + map().summary_len(p);
    if (p.off + p.h.length > end) ranges.push_back({end, p.off + p.h.length - end, "padding after a summary"});
  }
  ASSERT_FALSE(ranges.empty());
  flip_each(ranges, case_count(1, 10), 19, [&](const Outcome& out, const Range& r) {
    expect_all_intact(out, "damage in " + r.what);
    EXPECT_TRUE(out.fsck_clean) << ::testing::PrintToString(out.fsck.damage);
  });
}

}  // namespace
}  // namespace frost::store
