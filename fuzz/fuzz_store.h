// The body both store fuzz targets share: an input is a whole store image; it
// is opened (recovery: superblock, checkpoint regions, roll-forward) and then
// everything a reader can reach is walked. The targets differ only in
// StoreOptions::ignore_checksums.
//
// FROST_FUZZ_WRITE_SEEDS=dir makes LLVMFuzzerInitialize write a few small
// valid images into dir (built with the store API) instead of fuzzing.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "store/mem_env.h"
#include "store/store.h"

namespace frost::fuzz {

using store::kPageSize;

inline constexpr char kPath[] = "/fuzz/store";
// A hostile index can name the same pages over and over; the walk stops here
// so one input costs bounded time whatever the store does with it.
inline constexpr uint64_t kMaxPagesWalked = 4096;

inline store::StoreOptions options(store::Env* env, bool ignore_checksums) {
  store::StoreOptions o;
  o.env = env;
  o.segment_size = 16 << 10;
  o.capacity = 256 << 10;
  o.max_snapshots = 32;
  o.default_retention = 4;
  o.ignore_checksums = ignore_checksums;
  return o;
}

// fsck() has already verified every snapshot (the walks latest_intact() and
// page_numbers() would repeat), so this adds only the reader's own paths.
inline void walk_snapshot(const store::Store& s, store::SnapshotId id) {
  (void)s.read_meta(id);
  uint64_t pages = 0;
  volatile uint8_t sink = 0;
  (void)s.for_each_page(id, [&](uint64_t, std::span<const uint8_t, kPageSize> page) -> Status {
    sink = sink ^ page[0] ^ page[kPageSize - 1];
    if (++pages >= kMaxPagesWalked) return Error::invalid("fuzz: page budget spent");
    return Status::Ok();
  });
  std::array<uint8_t, kPageSize> one;
  (void)s.read_page(id, 0x400, one);  // a point lookup, as lazy melt does
}

inline int run_one(const uint8_t* data, size_t size, bool ignore_checksums) {
  store::MemEnv env;
  env.set_contents(kPath, std::vector<uint8_t>(data, data + size));
  auto opened = store::Store::open(kPath, options(&env, ignore_checksums));
  if (!opened.ok()) return 0;
  const store::Store& s = **opened;
  (void)s.stats();
  (void)s.fsck();
  for (const store::OwnerInfo& owner : s.list()) {
    (void)s.latest(owner.name);
    for (const store::SnapshotInfo& info : owner.snapshots) walk_snapshot(s, info.id);
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Seeds: small valid images, so mutations start from real structures.

// Seeds stay small, since every byte of input costs time on every execution:
// one incompressible page per image, the rest compressible or zero.
inline std::array<uint8_t, kPageSize> seed_page(std::mt19937_64& rng, int i) {
  std::array<uint8_t, kPageSize> p{};
  if (i % 3 == 2) return p;  // a zero page: no block, a flag in the index
  for (size_t k = 0; k < p.size(); ++k)
    p[k] = static_cast<uint8_t>(i == 0 ? rng() : k / 256 + i);
  return p;
}

// Commits one snapshot of owner with n pages from first_vpn, incremental on parent.
inline std::optional<store::SnapshotId> seed_snapshot(store::Store& s, std::mt19937_64& rng, const std::string& owner,
                                                      std::optional<store::SnapshotId> parent, uint64_t first_vpn,
                                                      int n, int first_kind) {
  auto w = s.begin_snapshot(owner, parent);
  if (!w.ok()) return std::nullopt;
  if (parent) (void)(*w)->remove_pages(first_vpn + 7, first_vpn + 7);
  for (int i = 0; i < n; ++i) (void)(*w)->put_page(first_vpn + i * 7, seed_page(rng, first_kind + i));
  std::vector<uint8_t> meta(parent ? 100 : 4200, static_cast<uint8_t>(rng()));  // 4200: two meta chunks
  (void)(*w)->put_meta(meta);
  auto id = (*w)->commit();
  return id.ok() ? std::optional(*id) : std::nullopt;
}

// Image 0: empty. 1: one owner, full + incremental, all in the log tail.
// 2: lz4; two owners, a checkpoint, a removal, gc, a pin, a retention op.
inline std::vector<uint8_t> seed_image(int which) {
  store::MemEnv env;
  store::StoreOptions o = options(&env, false);
  o.compression = which == 2 ? store::Codec::kLz4 : store::Codec::kNone;
  auto created = store::Store::create(kPath, o);
  if (!created.ok()) return {};
  store::Store& s = **created;
  std::mt19937_64 rng(which);
  if (which >= 1) {
    auto a = seed_snapshot(s, rng, "calc", std::nullopt, 0x400, 3, 0);
    seed_snapshot(s, rng, "calc", a, 0x400, 1, 1);
  }
  if (which == 2) {
    auto b = seed_snapshot(s, rng, "web", std::nullopt, 0x7fff0, 3, 1);
    (void)s.checkpoint();
    auto c = seed_snapshot(s, rng, "web", b, 0x7fff0, 2, 1);
    if (b) (void)s.remove(*b);
    (void)s.gc();
    if (c) (void)s.pin(*c);
    (void)s.set_retention("calc", 3);
  }
  return env.contents(kPath);  // as a crash would leave it: no close-time writes
}

inline void write_seeds_if_asked() {
  const char* dir = std::getenv("FROST_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return;
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> img = seed_image(i);
    if (img.empty()) {  // the store could not build it: fuzzing blind would hide that
      std::fprintf(stderr, "FROST_FUZZ_WRITE_SEEDS: the store could not build seed %d\n", i);
      std::exit(1);
    }
    std::ofstream out(std::filesystem::path(dir) / ("seed-" + std::to_string(i)), std::ios::binary);
    out.write(reinterpret_cast<const char*>(img.data()), static_cast<std::streamsize>(img.size()));
  }
}

}  // namespace frost::fuzz
