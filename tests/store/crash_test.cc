// Crash consistency of the store: a seeded workload runs on a FaultEnv that
// records every write and sync; then, for every write boundary (and random
// points besides), the file is rebuilt as a crash there could have left it
// and the store must open it and show exactly what the last completed call
// promised (or, while a call was in flight, what that call would have made).
//
// FROST_LONG_TESTS=1 runs longer workloads, more seeds and more random points.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "fault_env.h"
#include "store/mem_env.h"
#include "store/store.h"

namespace frost::store {
namespace {

using testing::CrashImage;
using testing::CrashImager;
using testing::CrashMode;
using testing::CrashPoint;
using testing::FaultEnv;
using testing::plan_crash_points;

constexpr char kPath[] = "/crash/frost.store";

bool long_mode() {
  const char* v = std::getenv("FROST_LONG_TESTS");
  return v != nullptr && std::string(v) == "1";
}

// ---------------------------------------------------------------------------
// Deterministic contents: a page or meta blob is named by a 64-bit tag, so the
// model stores tags, not bytes.

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Four flavours, from incompressible to mostly zero, so every codec both
// shrinks some blocks and gives up on others.
void fill_bytes(uint64_t tag, uint8_t* out, size_t n) {
  uint64_t s = tag;
  std::fill(out, out + n, 0);
  switch ((tag >> 8) % 4) {  // not the low bits: tags are odd
    case 0:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(splitmix(s) >> 17);
      break;
    case 1: {
      uint64_t word = splitmix(s);
      for (size_t i = 0; i < n; ++i) out[i] = i < 200 ? uint8_t(splitmix(s)) : uint8_t(word >> (8 * (i % 8)));
      break;
    }
    case 2:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>('a' + splitmix(s) % 8);
      break;
    default:
      for (int k = 0; k < 16 && n > 0; ++k) out[splitmix(s) % n] = uint8_t(splitmix(s) | 1);
      break;
  }
}

using Page = std::array<uint8_t, kPageSize>;

// Pages are made once per workload; check_workload() empties this between them.
std::unordered_map<uint64_t, Page>& page_cache() {
  static std::unordered_map<uint64_t, Page> cache;
  return cache;
}

// Tag 0 is the all-zero page.
const Page& page_for(uint64_t tag) {
  auto [it, fresh] = page_cache().try_emplace(tag);
  if (fresh && tag != 0) fill_bytes(tag, it->second.data(), kPageSize);
  if (fresh && tag == 0) it->second.fill(0);
  return it->second;
}

std::vector<uint8_t> meta_for(uint64_t tag, size_t length) {
  std::vector<uint8_t> bytes(length);
  fill_bytes(tag, bytes.data(), length);
  return bytes;
}

// ---------------------------------------------------------------------------
// The model: what each snapshot holds and which snapshots must be visible.

struct SnapshotModel {
  std::string owner;
  std::map<uint64_t, uint64_t> pages;  // vpn -> tag
  uint64_t meta_tag = 0;
  size_t meta_length = 0;
};

struct OwnerModel {
  uint32_t retention = 0;                 // 0: never set, not compared
  std::map<SnapshotId, bool> snapshots;   // id -> pinned
};

using ModelState = std::map<std::string, OwnerModel>;

// A syncing call that returned OK: after it, state must survive any crash.
struct Milestone {
  size_t begin;  // op_count() before the call
  size_t end;    // op_count() after it
  std::string what;
  ModelState state;
};

struct RunRecord {
  std::optional<ModelState> before;              // none: milestones[0] creates the store
  std::vector<Milestone> milestones;
  std::map<SnapshotId, SnapshotModel> contents;  // every snapshot ever committed
  StoreStats stats;                              // at the end, to show what was exercised
  size_t refused_for_space = 0;
};

ModelState visible_state(const Store& store) {
  ModelState out;
  for (const OwnerInfo& o : store.list()) {
    if (o.snapshots.empty()) continue;
    OwnerModel& m = out[o.name];
    m.retention = o.retention;
    for (const SnapshotInfo& s : o.snapshots) m.snapshots[s.id] = s.pinned;
  }
  return out;
}

std::string describe(const OwnerModel& m) {
  std::string s = "{";
  for (const auto& [id, pinned] : m.snapshots) s += " " + std::to_string(id) + (pinned ? "p" : "");
  return s + " } K=" + std::to_string(m.retention);
}

// Empty when got shows what want promises. Owners without snapshots are not
// compared: whether list() shows them is the store's business.
std::string diff_state(const ModelState& want, const ModelState& got) {
  static const OwnerModel kNone;
  std::map<std::string, std::pair<const OwnerModel*, const OwnerModel*>> both;
  for (const auto& [name, m] : want)
    if (!m.snapshots.empty()) both[name].first = &m;
  for (const auto& [name, m] : got)
    if (!m.snapshots.empty()) both[name].second = &m;
  std::string out;
  for (const auto& [name, pair] : both) {
    const OwnerModel& w = pair.first ? *pair.first : kNone;
    const OwnerModel& g = pair.second ? *pair.second : kNone;
    bool retention_ok = w.retention == 0 || w.retention == g.retention;
    if (w.snapshots != g.snapshots || !retention_ok)
      out += " owner " + name + ": want " + describe(w) + " got " + describe(g) + ";";
  }
  return out;
}

// Empty when the snapshot reads back exactly as modelled.
std::string verify_snapshot(const Store& store, SnapshotId id, const SnapshotModel& m, bool every_read) {
  std::string where = "snapshot " + std::to_string(id) + ": ";
  auto info = store.info(id);
  if (!info.ok()) return where + "info: " + info.error().to_string();
  if (info->owner != m.owner || info->page_count != m.pages.size() || info->meta_length != m.meta_length)
    return where + "info says owner " + info->owner + ", " + std::to_string(info->page_count) + " pages, meta " +
           std::to_string(info->meta_length) + "; want " + m.owner + ", " + std::to_string(m.pages.size()) +
           ", " + std::to_string(m.meta_length);
  auto next = m.pages.begin();
  std::string bad;
  Status walk = store.for_each_page(id, [&](uint64_t vpn, std::span<const uint8_t, kPageSize> page) -> Status {
    if (next == m.pages.end() || next->first != vpn) {
      bad = "unexpected page " + std::to_string(vpn);
      return Error::corruption(bad);
    }
    if (!std::equal(page.begin(), page.end(), page_for(next->second).begin())) {
      bad = "wrong bytes in page " + std::to_string(vpn);
      return Error::corruption(bad);
    }
    ++next;
    return Status::Ok();
  });
  if (!bad.empty()) return where + bad;
  if (!walk.ok()) return where + "for_each_page: " + walk.error().to_string();
  if (next != m.pages.end()) return where + "missing page " + std::to_string(next->first);

  Page buf;
  size_t k = 0;
  for (const auto& [vpn, tag] : m.pages) {
    if (!every_read && k++ % 8 != 0) continue;
    auto r = store.read_page(id, vpn, buf);
    if (!r.ok()) return where + "read_page " + std::to_string(vpn) + ": " + r.error().to_string();
    if (!*r || buf != page_for(tag)) return where + "read_page " + std::to_string(vpn) + " differs";
  }
  uint64_t absent = m.pages.empty() ? 1 : m.pages.rbegin()->first + 1;
  if (absent <= kMaxKey) {
    auto r = store.read_page(id, absent, buf);
    if (!r.ok() || *r) return where + "read_page of an absent vpn did not say false";
  }
  auto meta = store.read_meta(id);
  if (!meta.ok()) return where + "read_meta: " + meta.error().to_string();
  if (*meta != meta_for(m.meta_tag, m.meta_length)) return where + "meta differs";
  return {};
}

// ---------------------------------------------------------------------------
// The workload.

struct WorkloadConfig {
  uint64_t seed = 1;
  Codec codec = Codec::kNone;
  int steps = 120;
  int lie_every_nth_commit = 0;  // harness test: these commits' syncs are lies
  uint64_t capacity = 4 << 20;   // below 2 MiB the store runs nearly full
};

// In a nearly full store, writing new data may be refused for lack of space.
bool tight(const WorkloadConfig& cfg) { return cfg.capacity < (2u << 20); }

StoreOptions small_options(Env* env, Codec codec, uint64_t capacity) {
  StoreOptions o;
  o.env = env;
  o.segment_size = 64 << 10;
  o.capacity = capacity;
  o.compression = codec;
  o.default_retention = 3;
  o.max_snapshots = 256;
  o.checkpoint_every_bytes = 160 << 10;
  return o;
}

// Where pages live: a heap, a stack, and the very top of the key space (the
// deepest, rightmost path of the radix tree).
struct Region {
  uint64_t first;
  uint32_t pages;
};
constexpr Region kRegions[] = {{0x400, 24}, {0x7ffff7a00, 12}, {kMaxKey - 7, 8}};
constexpr const char* kOwners[] = {"calc", "db", "editor", "web"};

class Workload {
 public:
  Workload(const WorkloadConfig& cfg, FaultEnv& env)
      : cfg_(cfg), env_(env), rng_(cfg.seed), options_(small_options(&env, cfg.codec, cfg.capacity)) {}

  // Runs to the end, or to the first unexpected error (reported as a test failure).
  RunRecord run() {
    size_t begin = env_.op_count();
    auto created = Store::create(kPath, options_);
    if (!created.ok()) {
      ADD_FAILURE() << "create: " << created.error().to_string();
      return std::move(record_);
    }
    store_ = std::move(created).value();
    record_.milestones.push_back({begin, env_.op_count(), "create", state_});
    for (int i = 0; i < cfg_.steps && !failed_; ++i) step();
    if (store_) record_.stats = store_->stats();
    record_.refused_for_space = no_space_;
    if (!failed_) close();
    return std::move(record_);
  }

 private:
  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  bool chance(int percent) { return int(pick(100)) < percent; }
  uint64_t new_tag() { return rng_() | 1; }
  uint64_t page_tag() { return chance(10) ? 0 : new_tag(); }

  void step() {
    const char* owner = kOwners[pick(std::size(kOwners))];
    int r = int(pick(100));
    if (r < 52) commit(owner);
    else if (r < 56) abandon(owner);
    else if (r < 63) pin(owner, true);
    else if (r < 68) pin(owner, false);
    else if (r < 74) remove(owner);
    else if (r < 77) set_retention(owner);
    else if (r < 86) gc();
    else if (r < 91) checkpoint();
    else if (r < 95) reopen();
    else if (r < 97) remove_owner(owner);
    else commit(owner);
  }

  // In a tight store a refusal for lack of space is an answer, not a failure.
  bool full(const Status& s) {
    bool ok = tight(cfg_) && s.error().is(ErrorKind::kNoSpace);
    no_space_ += ok;
    return ok;
  }

  void fail(const std::string& what) {
    std::string space;
    if (store_) {
      StoreStats st = store_->stats();
      space = " (store: " + std::to_string(st.segments_free) + " of " + std::to_string(st.segments_total) +
              " segments free, " + std::to_string(st.live_bytes >> 10) + " KiB live)";
    }
    ADD_FAILURE() << "workload seed " << cfg_.seed << ": " << what << space;
    failed_ = true;
  }

  // What a syncing call may do besides what the model applies itself.
  enum class Kind {
    kOp,      // nothing else; must work even in a full store (ops may use the cleaner's reserve)
    kTrims,   // retention may delete the oldest snapshots
    kCommit,  // that, or be refused for lack of space in a tight store
  };

  // Runs one call that syncs; on success its end becomes a milestone. True
  // when it succeeded and the store still agrees with the model.
  template <class Call>
  bool syncing(const std::string& what, Kind kind, Call&& call) {
    size_t begin = env_.op_count();
    Status s = call();
    if (!s.ok() && !(kind == Kind::kCommit && full(s))) {
      fail(what + ": " + s.error().to_string());
      return false;
    }
    // A call refused for lack of space must have changed nothing.
    absorb_list(what, kind != Kind::kOp && s.ok());
    if (!s.ok() || failed_) return false;
    record_.milestones.push_back({begin, env_.op_count(), what, state_});
    return true;
  }

  // Takes retention's deletions from list(), after checking that list() shows
  // nothing else the model does not expect.
  void absorb_list(const std::string& what, bool may_trim) {
    ModelState got = visible_state(*store_);
    for (auto& [name, m] : state_) {
      auto g = got.find(name);
      for (auto it = m.snapshots.begin(); it != m.snapshots.end();) {
        bool present = g != got.end() && g->second.snapshots.count(it->first);
        if (present && g->second.snapshots.at(it->first) != it->second)
          return fail(what + ": pin flag of " + std::to_string(it->first) + " differs");
        if (present) { ++it; continue; }
        if (!may_trim || it->second)
          return fail(what + ": snapshot " + std::to_string(it->first) + " vanished");
        it = m.snapshots.erase(it);  // retention took it
      }
    }
    std::string diff = diff_state(state_, got);
    if (!diff.empty()) fail(what + ": list() differs from the model:" + diff);
  }

  std::optional<SnapshotId> latest(const std::string& owner) const {
    auto it = state_.find(owner);
    if (it == state_.end() || it->second.snapshots.empty()) return std::nullopt;
    return it->second.snapshots.rbegin()->first;
  }

  // Any snapshot of owner (filter: on pinned flag), or none.
  std::optional<SnapshotId> any(const std::string& owner, std::optional<bool> pinned = std::nullopt) {
    std::vector<SnapshotId> ids;
    auto it = state_.find(owner);
    if (it == state_.end()) return std::nullopt;
    for (const auto& [id, p] : it->second.snapshots)
      if (!pinned || *pinned == p) ids.push_back(id);
    if (ids.empty()) return std::nullopt;
    return ids[pick(ids.size())];
  }

  size_t pinned_count(const std::string& owner) const {
    auto it = state_.find(owner);
    if (it == state_.end()) return 0;
    return std::count_if(it->second.snapshots.begin(), it->second.snapshots.end(), [](auto& s) { return s.second; });
  }

  uint64_t random_vpn(const Region& r) { return r.first + pick(r.pages); }

  // Writes a snapshot into w while building its model; nullopt parent = full.
  Status fill_writer(SnapshotWriter& w, SnapshotModel& m, bool full) {
    if (full) {
      for (const Region& r : kRegions)
        for (uint32_t i = 0; i < r.pages; ++i)
          if (chance(60)) m.pages[r.first + i] = page_tag();
      for (const auto& [vpn, tag] : m.pages) FROST_TRY(w.put_page(vpn, page_for(tag)));
      return put_meta(w, m);
    }
    // Removes first, then puts outside the removed range: the two never mix.
    std::optional<std::pair<uint64_t, uint64_t>> removed;
    if (chance(20)) {
      const Region& r = kRegions[pick(std::size(kRegions))];
      uint64_t a = random_vpn(r), b = random_vpn(r);
      removed = std::pair(std::min(a, b), std::max(a, b));
      FROST_TRY(w.remove_pages(removed->first, removed->second));
      m.pages.erase(m.pages.lower_bound(removed->first), m.pages.upper_bound(removed->second));
    }
    int puts = 1 + int(pick(6));
    for (int i = 0; i < puts; ++i) {
      uint64_t vpn = random_vpn(kRegions[pick(std::size(kRegions))]);
      if (removed && vpn >= removed->first && vpn <= removed->second) continue;
      uint64_t tag = page_tag();
      if (chance(10)) FROST_TRY(w.put_page(vpn, page_for(new_tag())));  // a later put wins
      FROST_TRY(w.put_page(vpn, page_for(tag)));
      m.pages[vpn] = tag;
    }
    // Meta is not inherited: without put_meta the snapshot has none.
    if (chance(75)) return put_meta(w, m);
    m.meta_tag = 0;
    m.meta_length = 0;
    return Status::Ok();
  }

  Status put_meta(SnapshotWriter& w, SnapshotModel& m) {
    m.meta_tag = new_tag();
    m.meta_length = chance(10) ? 0 : pick(10000);
    return w.put_meta(meta_for(m.meta_tag, m.meta_length));
  }

  void commit(const std::string& owner) {
    std::optional<SnapshotId> parent;
    if (!chance(15)) parent = chance(85) ? latest(owner) : any(owner);
    SnapshotModel m;
    if (parent) m = record_.contents.at(*parent);
    m.owner = owner;
    auto w = store_->begin_snapshot(owner, parent);
    if (!w.ok()) return fail("begin_snapshot: " + w.error().to_string());
    Status filled = fill_writer(**w, m, !parent);
    if (!filled.ok() && full(filled)) return;  // the writer is abandoned
    if (!filled.ok()) return fail("writing a snapshot: " + filled.error().to_string());

    bool lie = cfg_.lie_every_nth_commit > 0 && ++commits_ % cfg_.lie_every_nth_commit == 0;
    env_.set_sync_lies(lie);
    SnapshotId id = 0;
    bool done = syncing("commit to " + owner, Kind::kCommit, [&]() -> Status {
      FROST_ASSIGN(id, (*w)->commit());
      record_.contents[id] = m;
      state_[owner].snapshots[id] = false;
      return Status::Ok();
    });
    env_.set_sync_lies(false);
    if (!done) return;
    if (!state_[owner].snapshots.count(id)) return fail("retention deleted the snapshot just committed");
    std::string bad = verify_snapshot(*store_, id, m, true);
    if (!bad.empty()) fail("live store after commit: " + bad);
  }

  // A writer destroyed without commit: its blocks must never become visible.
  void abandon(const std::string& owner) {
    auto w = store_->begin_snapshot(owner, latest(owner));
    if (!w.ok()) return fail("begin_snapshot: " + w.error().to_string());
    SnapshotModel scratch;
    if (auto p = latest(owner)) scratch = record_.contents.at(*p);
    Status s = fill_writer(**w, scratch, !latest(owner));
    if (!s.ok() && !full(s)) fail("writing an abandoned snapshot: " + s.error().to_string());
  }

  void pin(const std::string& owner, bool on) {
    // Pinned images outlive retention: a cap keeps long runs from filling the store.
    if (on && pinned_count(owner) >= 2) return;
    auto id = any(owner, !on);
    if (!id) return;
    syncing(std::string(on ? "pin " : "unpin ") + std::to_string(*id), Kind::kOp, [&] {
      Status s = on ? store_->pin(*id) : store_->unpin(*id);
      if (s.ok()) state_[owner].snapshots[*id] = on;
      return s;
    });
  }

  void remove(const std::string& owner) {
    auto id = any(owner, false);
    if (!id) return;
    syncing("remove " + std::to_string(*id), Kind::kOp, [&] {
      Status s = store_->remove(*id);
      if (s.ok()) state_[owner].snapshots.erase(*id);
      return s;
    });
  }

  void set_retention(const std::string& owner) {
    if (!latest(owner)) return;
    uint32_t keep = 2 + uint32_t(pick(3));
    syncing("set_retention " + owner, Kind::kTrims, [&] {
      Status s = store_->set_retention(owner, keep);
      if (s.ok()) state_[owner].retention = keep;
      return s;
    });
  }

  void remove_owner(const std::string& owner) {
    if (!state_.count(owner) || any(owner, true)) return;  // pinned images stay
    syncing("remove_owner " + owner, Kind::kOp, [&] {
      Status s = store_->remove_owner(owner);
      if (s.ok()) state_.erase(owner);
      return s;
    });
  }

  void gc() {
    syncing("gc", Kind::kOp, [&]() -> Status {
      auto report = store_->gc();
      return report.ok() ? Status::Ok() : Status(report.error());
    });
  }

  void checkpoint() { syncing("checkpoint", Kind::kOp, [&] { return store_->checkpoint(); }); }

  void reopen() {
    syncing("reopen", Kind::kOp, [&]() -> Status {
      store_.reset();
      FROST_ASSIGN(store_, Store::open(kPath, options_));
      return Status::Ok();
    });
  }

  void close() {
    size_t begin = env_.op_count();
    store_.reset();
    record_.milestones.push_back({begin, env_.op_count(), "close", state_});
  }

  WorkloadConfig cfg_;
  FaultEnv& env_;
  std::mt19937_64 rng_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
  ModelState state_;
  RunRecord record_;
  int commits_ = 0;
  size_t no_space_ = 0;
  bool failed_ = false;
};

// ---------------------------------------------------------------------------
// Checking crash images.

struct Verdicts {
  size_t points = 0;   // crash images checked
  size_t deep = 0;     // of them, with fsck, a continued run and a second crash
  size_t second = 0;   // images of a second crash, during or after recovery
  size_t flying = 0;   // images that showed the call in flight as done
  std::vector<std::string> failures;
};

class CrashChecker {
 public:
  CrashChecker(const RunRecord& run, const WorkloadConfig& cfg, Verdicts& out) : run_(run), cfg_(cfg), out_(out) {
    for (const Milestone& m : run_.milestones) ends_.push_back(m.end);
  }

  // Checks every planned crash point of env's log (see plan_crash_points);
  // every deep_every-th one (0: none) goes on to a second life.
  void check_all(const FaultEnv& env, size_t random, size_t deep_every, const std::string& prefix) {
    std::mt19937_64 rng(cfg_.seed * 7919 + env.op_count());
    std::vector<CrashPoint> plan = plan_crash_points(env, random, rng);
    CrashImager imager(env);
    for (size_t p = 0; p < plan.size(); ++p) {
      CrashImage image = imager.image_at(plan[p].index, plan[p].mode, rng);
      bool deep = deep_every > 0 && (p % deep_every == deep_every / 2 || p + 1 == plan.size());
      std::string where = prefix + "crash at op " + std::to_string(plan[p].index) + "/" +
                          std::to_string(env.op_count()) + " (" + to_string(plan[p].mode) + ", " +
                          std::to_string(image.dropped) + " dropped, " + std::to_string(image.torn) + " torn)";
      std::string bad = check(plan[p].index, std::move(image), deep, where);
      ++out_.points;
      out_.second += !prefix.empty();
      out_.deep += deep;
      if (!bad.empty()) out_.failures.push_back(where + ": " + bad);
    }
  }

 private:
  // Empty when the image recovers to a state the model allows.
  std::string check(size_t i, CrashImage image, bool deep, const std::string& where) {
    std::map<std::string, std::vector<uint8_t>> files;
    if (deep) files = image.files;
    MemEnv env;
    std::move(image).install(env);
    auto opened = Store::open(kPath, small_options(&env, cfg_.codec, cfg_.capacity));
    size_t k = std::upper_bound(ends_.begin(), ends_.end(), i) - ends_.begin();
    if (k == 0 && !run_.before) return opened.ok() ? diff_state({}, visible_state(**opened)) : "";  // being created
    const ModelState& done = k > 0 ? run_.milestones[k - 1].state : *run_.before;
    const Milestone* flying = k < run_.milestones.size() && i > run_.milestones[k].begin ? &run_.milestones[k] : nullptr;
    std::string after = " (after \"" + (k > 0 ? run_.milestones[k - 1].what : std::string("the first crash")) + "\"" +
                        (flying ? ", during \"" + flying->what + "\")" : ")");
    if (!opened.ok()) return "open failed" + after + ": " + opened.error().to_string();

    ModelState got = visible_state(**opened);
    const ModelState* matched = &done;
    if (std::string diff = diff_state(done, got); !diff.empty()) {
      if (!flying || !diff_state(flying->state, got).empty()) return "wrong snapshots" + after + ":" + diff;
      matched = &flying->state;
      ++out_.flying;
    }
    std::string bad = verify_all(**opened, *matched, run_.contents, deep);
    if (bad.empty() && deep) bad = fsck(**opened);
    opened = Error::invalid("closed");  // the second life opens the image afresh
    if (bad.empty() && deep) bad = second_life(std::move(files), *matched, where);
    return bad.empty() ? "" : bad + after;
  }

  static std::string verify_all(const Store& store, const ModelState& state,
                                const std::map<SnapshotId, SnapshotModel>& contents, bool every_read) {
    for (const auto& [owner, m] : state)
      for (const auto& [id, pinned] : m.snapshots) {
        std::string bad = verify_snapshot(store, id, contents.at(id), every_read);
        if (!bad.empty()) return bad;
      }
    return {};
  }

  static std::string fsck(const Store& store) {
    auto report = store.fsck();
    if (!report.ok()) return "fsck: " + report.error().to_string();
    if (report->clean()) return {};
    std::string s = "fsck found damage:";
    for (const std::string& d : report->damage) s += " [" + d + "]";
    return s;
  }

  // The recovered store must go on: recovery's own writes, a full and an
  // incremental snapshot, a cleaner run and a close, then a clean reopen that
  // shows old and new alike. A second crash anywhere in that must recover too.
  std::string second_life(std::map<std::string, std::vector<uint8_t>> files, const ModelState& matched,
                          const std::string& where) {
    FaultEnv env(std::move(files));
    RunRecord life;
    life.before = matched;
    life.contents = run_.contents;
    std::string bad = live_again(env, life);
    if (!bad.empty()) return "after recovery, " + bad;
    MemEnv copy;
    copy.set_contents(kPath, env.contents(kPath));
    auto reopened = Store::open(kPath, small_options(&copy, cfg_.codec, cfg_.capacity));
    if (!reopened.ok()) return "reopen after recovery: " + reopened.error().to_string();
    const ModelState& want = life.milestones.back().state;
    if (std::string diff = diff_state(want, visible_state(**reopened)); !diff.empty())
      return "reopen after recovery shows wrong snapshots:" + diff;
    if (bad = verify_all(**reopened, want, life.contents, true); !bad.empty()) return "reopen after recovery: " + bad;
    CrashChecker(life, cfg_, out_).check_all(env, 8, 0, where + ", then a second ");
    return {};
  }

  // Runs the second life on env, recording its milestones in life.
  std::string live_again(FaultEnv& env, RunRecord& life) {
    StoreOptions opts = small_options(&env, cfg_.codec, cfg_.capacity);
    ModelState state = *life.before;
    size_t begin = env.op_count();
    auto opened = Store::open(kPath, opts);
    if (!opened.ok()) return "open: " + opened.error().to_string();
    std::unique_ptr<Store> store = std::move(opened).value();
    life.milestones.push_back({begin, env.op_count(), "recovery", state});
    std::optional<SnapshotId> parent;
    for (uint64_t round = 1; round <= 2; ++round) {
      SnapshotModel m = parent ? life.contents.at(*parent) : SnapshotModel{"phoenix", {}, 0, 0};
      begin = env.op_count();
      auto id = write_phoenix(*store, parent, round, m);
      if (!id.ok() && tight(cfg_) && id.error().is(ErrorKind::kNoSpace)) break;  // full, but it must still reopen
      if (!id.ok()) return "writing a snapshot: " + id.error().to_string();
      life.contents[*id] = m;
      state["phoenix"].snapshots[*id] = false;
      life.milestones.push_back({begin, env.op_count(), "a snapshot after recovery", state});
      parent = *id;
    }
    begin = env.op_count();
    if (auto g = store->gc(); !g.ok()) return "gc: " + g.error().to_string();
    life.milestones.push_back({begin, env.op_count(), "gc after recovery", state});
    begin = env.op_count();
    store.reset();
    life.milestones.push_back({begin, env.op_count(), "close after recovery", state});
    return {};
  }

  // A small snapshot of a new owner: a full one, then an incremental child.
  static Result<SnapshotId> write_phoenix(Store& store, std::optional<SnapshotId> parent, uint64_t round,
                                          SnapshotModel& m) {
    FROST_ASSIGN(auto w, store.begin_snapshot("phoenix", parent));
    for (uint64_t vpn = 0x500; vpn < 0x506; vpn += round) {
      m.pages[vpn] = 0x1234567 * round + vpn;
      FROST_TRY(w->put_page(vpn, page_for(m.pages[vpn])));
    }
    m.meta_tag = round * 77 + 1;
    m.meta_length = 100 * round;
    FROST_TRY(w->put_meta(meta_for(m.meta_tag, m.meta_length)));
    return w->commit();
  }

  const RunRecord& run_;
  WorkloadConfig cfg_;
  Verdicts& out_;
  std::vector<size_t> ends_;
};

// ---------------------------------------------------------------------------
// Driving every crash point of one workload.

struct CrashCounts {
  size_t ops = 0;
  size_t file_bytes = 0;  // largest store file
  size_t commits = 0;
  size_t gc_runs = 0;
  size_t bytes_cleaned = 0;
  size_t refused = 0;
  Verdicts verdicts;

  void add(const CrashCounts& c) {
    ops += c.ops;
    file_bytes = std::max(file_bytes, c.file_bytes);
    commits += c.commits;
    gc_runs += c.gc_runs;
    bytes_cleaned += c.bytes_cleaned;
    refused += c.refused;
    verdicts.points += c.verdicts.points;
    verdicts.deep += c.verdicts.deep;
    verdicts.second += c.verdicts.second;
    verdicts.flying += c.verdicts.flying;
    verdicts.failures.insert(verdicts.failures.end(), c.verdicts.failures.begin(), c.verdicts.failures.end());
  }
};

size_t g_total_points = 0;

CrashCounts check_workload(const WorkloadConfig& cfg, size_t random_points, size_t deep_every) {
  page_cache().clear();
  FaultEnv env;
  RunRecord run = Workload(cfg, env).run();
  CrashCounts counts;
  counts.ops = env.op_count();
  counts.file_bytes = env.contents(kPath).size();
  counts.commits = run.contents.size();
  counts.gc_runs = run.stats.gc_runs;
  counts.bytes_cleaned = run.stats.bytes_cleaned;
  counts.refused = run.refused_for_space;
  CrashChecker(run, cfg, counts.verdicts).check_all(env, random_points, deep_every, "");
  for (std::string& f : counts.verdicts.failures) f = "seed " + std::to_string(cfg.seed) + ": " + f;
  g_total_points += counts.verdicts.points;
  return counts;
}

void run_crash_test(Codec codec, uint64_t seed, uint64_t capacity = 4 << 20) {
  bool lng = long_mode();
  auto t0 = std::chrono::steady_clock::now();
  WorkloadConfig cfg;
  cfg.codec = codec;
  cfg.capacity = capacity;
  CrashCounts total;
  // Long mode: six workloads, each over three times as long, about 20x the points.
  int seeds = lng ? 6 : 1;
  for (int s = 0; s < seeds; ++s) {
    cfg.seed = seed + 1000 * s;
    cfg.steps = lng ? 1000 : 300;
    total.add(check_workload(cfg, lng ? 2000 : 700, 150));
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const Verdicts& v = total.verdicts;
  std::printf("[ crash    ] %zu crash points (%zu first crashes over %zu ops), %zu failed, %.1f s\n"
              "[ crash    ]   %zu showed the call in flight done; %zu went on after recovery (fsck, new snapshots,"
              " reopen), with %zu second crashes\n"
              "[ crash    ]   workload: %zu commits, %zu cleaner runs copied %zu KiB, %zu calls refused for "
              "space, file %zu KiB\n",
              v.points, v.points - v.second, total.ops, v.failures.size(), secs, v.flying, v.deep, v.second, total.commits,
              total.gc_runs, total.bytes_cleaned >> 10, total.refused, total.file_bytes >> 10);
  for (size_t k = 0; k < std::min<size_t>(v.failures.size(), 10); ++k) ADD_FAILURE() << v.failures[k];
}

class CrashTotals : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_total_points > 0) std::printf("[ crash    ] %zu crash points checked in all\n", g_total_points);
  }
};
[[maybe_unused]] auto* const g_crash_totals = ::testing::AddGlobalTestEnvironment(new CrashTotals);

// ---------------------------------------------------------------------------
// The FaultEnv itself.

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

std::map<std::string, std::vector<uint8_t>> one_file(const std::string& path, std::vector<uint8_t> bytes) {
  std::map<std::string, std::vector<uint8_t>> base;
  base[path] = std::move(bytes);
  return base;
}

Status write_str(File& f, uint64_t off, const std::string& s) { return f.write_at(off, s.data(), s.size()); }

TEST(CrashFaultEnv, SyncedWritesSurviveUnsyncedOnesMayNot) {
  FaultEnv env;
  auto f = env.open_file("/d/f", OpenMode::kCreateExclusive);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(env.sync_dir("/d/").ok());
  ASSERT_TRUE(write_str(**f, 0, "durable").ok());
  ASSERT_TRUE((*f)->sync().ok());
  ASSERT_TRUE(write_str(**f, 7, "-lost").ok());
  ASSERT_EQ(env.op_count(), 5u);

  std::mt19937_64 rng(1);
  CrashImager imager(env);
  EXPECT_EQ(imager.image_at(3, CrashMode::kAllApplied, rng).files.at("/d/f"), bytes_of("durable"));
  EXPECT_TRUE(imager.image_at(3, CrashMode::kAllDropped, rng).files.at("/d/f").empty());
  EXPECT_EQ(imager.image_at(5, CrashMode::kAllDropped, rng).files.at("/d/f"), bytes_of("durable"));
  EXPECT_EQ(imager.image_at(5, CrashMode::kAllApplied, rng).files.at("/d/f"), bytes_of("durable-lost"));
  EXPECT_EQ(env.contents("/d/f"), bytes_of("durable-lost"));
}

TEST(CrashFaultEnv, TornWriteKeepsAPrefix) {
  FaultEnv env(one_file("/f", std::vector<uint8_t>(8192, 0xaa)));
  auto f = env.open_file("/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  std::vector<uint8_t> data(4096, 0x55);
  ASSERT_TRUE((*f)->write_at(1000, data.data(), data.size()).ok());
  std::mt19937_64 rng(7);
  for (int round = 0; round < 50; ++round) {
    CrashImager imager(env);
    CrashImage image = imager.image_at(1, CrashMode::kLastTorn, rng);
    const std::vector<uint8_t>& b = image.files.at("/f");
    ASSERT_EQ(image.torn, 1u);
    ASSERT_EQ(b.size(), 8192u);
    size_t kept = std::find(b.begin() + 1000, b.end(), 0xaa) - (b.begin() + 1000);
    EXPECT_GT(kept, 0u);
    EXPECT_LT(kept, 4096u);
    EXPECT_TRUE(std::all_of(b.begin() + 1000 + kept, b.end(), [](uint8_t c) { return c == 0xaa; }));
  }
}

TEST(CrashFaultEnv, FileWithoutDirectorySyncMayVanish) {
  FaultEnv env;
  auto f = env.open_file("/d/f", OpenMode::kCreateExclusive);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(write_str(**f, 0, "x").ok());
  ASSERT_TRUE((*f)->sync().ok());
  ASSERT_TRUE(env.sync_dir("/other").ok());
  ASSERT_TRUE(env.sync_dir("/d").ok());
  std::mt19937_64 rng(1);
  CrashImager imager(env);
  EXPECT_FALSE(imager.image_at(4, CrashMode::kAllDropped, rng).files.count("/d/f"));
  EXPECT_TRUE(imager.image_at(4, CrashMode::kAllDropped, rng).undecided_files);
  EXPECT_EQ(imager.image_at(5, CrashMode::kAllDropped, rng).files.at("/d/f"), bytes_of("x"));
}

TEST(CrashFaultEnv, LaterWriteOverAnEarlierOneWinsWhenBothLand) {
  FaultEnv env(one_file("/f", {}));
  auto f = env.open_file("/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(write_str(**f, 0, "aaaa").ok());
  ASSERT_TRUE(write_str(**f, 2, "bb").ok());
  std::mt19937_64 rng(3);
  std::set<std::vector<uint8_t>> seen;
  for (int round = 0; round < 64; ++round)
    seen.insert(CrashImager(env).image_at(2, CrashMode::kRandomDropped, rng).files.at("/f"));
  // Neither, the first, the second (over a hole), or both in order.
  std::set<std::vector<uint8_t>> want = {{}, bytes_of("aaaa"), {0, 0, 'b', 'b'}, bytes_of("aabb")};
  EXPECT_EQ(seen, want);
}

TEST(CrashFaultEnv, LyingSyncIsNotRecorded) {
  FaultEnv env(one_file("/f", {}));
  auto f = env.open_file("/f", OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(write_str(**f, 0, "promised").ok());
  env.set_sync_lies(true);
  ASSERT_TRUE((*f)->sync().ok());
  env.set_sync_lies(false);
  EXPECT_EQ(env.op_count(), 1u);
  std::mt19937_64 rng(1);
  EXPECT_TRUE(CrashImager(env).image_at(1, CrashMode::kAllDropped, rng).files.at("/f").empty());
}

// The harness must be able to fail: a disk that lies about some syncs loses
// commits the store was told were durable, and the checks must notice.
TEST(CrashHarness, DetectsCommitsLostToLyingSyncs) {
  WorkloadConfig cfg;
  cfg.seed = 99;
  cfg.steps = 40;
  cfg.lie_every_nth_commit = 3;
  Verdicts v = check_workload(cfg, 0, 0).verdicts;
  std::printf("[ crash    ] lying disk: %zu of %zu crash points caught it\n", v.failures.size(), v.points);
  EXPECT_GT(v.failures.size(), 0u);
}

// ---------------------------------------------------------------------------
// The store.

TEST(CrashRecovery, Uncompressed) { run_crash_test(Codec::kNone, 1); }
TEST(CrashRecovery, Lz4) { run_crash_test(Codec::kLz4, 2); }
TEST(CrashRecovery, Zstd) { run_crash_test(Codec::kZstd, 3); }
// 24 segments: the cleaner runs inside commit and some calls find no room.
TEST(CrashRecovery, NearlyFull) { run_crash_test(Codec::kNone, 4, 1536 << 10); }

}  // namespace
}  // namespace frost::store
