// The `frost` command and `frost-demo`, run as a user would run them: built
// binaries, a fresh FROST_HOME, stdout, stderr and the exit status.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_json.h"
#include "support/run_binary.h"
#include "store/store.h"

namespace {

namespace fs = std::filesystem;
using frost::testing::Json;
using frost::testing::JsonParser;
using frost::store::SnapshotId;
using frost::store::Store;
using frost::store::StoreOptions;

// --- running a binary -----------------------------------------------------------

using frost::testing::Outcome;
using frost::testing::slurp;
using frost::testing::TempDir;
using frost::testing::expect_one_line_error;

Outcome run(const std::string& binary, const std::vector<std::string>& args, const fs::path& home,
            mode_t mask = 022) {
  return frost::testing::run_binary(binary, args, home, mask);
}

Outcome frost_cli(const std::vector<std::string>& args, const fs::path& home, mode_t mask = 022) {
  return run(FROST_CLI_PATH, args, home, mask);
}

// Parses a --json run: exit status as expected, one valid object, nothing on stderr.
Json json_of(const Outcome& r, int want_exit = 0) {
  EXPECT_EQ(r.exit_code, want_exit) << r.err;
  EXPECT_EQ(r.err, "");
  auto j = JsonParser(r.out).parse_document();
  EXPECT_TRUE(j.has_value()) << "not valid JSON: " << r.out;
  if (!j) return Json{};
  EXPECT_EQ(j->type, Json::Type::kObject);
  return *j;
}

// --- a store with known contents ---------------------------------------------------

constexpr uint64_t kSegmentSize = 1ull << 20;
constexpr uint64_t kCapacity = 32ull << 20;
constexpr uint64_t kPagesPerSnapshot = 8;

using Page = std::array<uint8_t, frost::store::kPageSize>;

// A page whose bytes can be found in the store file: a marker naming the
// owner and vpn, repeated.
Page marked_page(const std::string& owner, uint64_t vpn) {
  Page page{};
  std::string marker = "<frost-cli-test " + owner + " vpn " + std::to_string(vpn) + ">";
  for (size_t i = 0; i < page.size(); ++i) page[i] = static_cast<uint8_t>(marker[i % marker.size()]);
  return page;
}

StoreOptions small_store() {
  StoreOptions o;
  o.segment_size = kSegmentSize;
  o.capacity = kCapacity;
  return o;
}

SnapshotId commit_snapshot(Store& store, const std::string& owner, std::optional<SnapshotId> parent,
                           uint64_t first_vpn, uint64_t pages) {
  auto w = store.begin_snapshot(owner, parent);
  EXPECT_TRUE(w.ok()) << w.error().to_string();
  if (!w.ok()) return 0;
  for (uint64_t vpn = first_vpn; vpn < first_vpn + pages; ++vpn) {
    Page p = marked_page(owner, vpn);
    EXPECT_TRUE((*w)->put_page(vpn, p).ok());
  }
  std::string meta = "meta of " + owner;
  EXPECT_TRUE((*w)->put_meta({reinterpret_cast<const uint8_t*>(meta.data()), meta.size()}).ok());
  auto id = (*w)->commit();
  EXPECT_TRUE(id.ok()) << id.error().to_string();
  return id.ok() ? *id : 0;
}

// FROST_HOME with a store holding: alpha (full 100-107, pinned; then incremental
// rewriting 106-109), beta (full 500-507).
class CliStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = dir_.path() / "home";
    ASSERT_EQ(::mkdir(home_.c_str(), 0700), 0);
    auto store = Store::create(store_path(), small_store());
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    alpha1_ = commit_snapshot(**store, "alpha", std::nullopt, 100, kPagesPerSnapshot);
    alpha2_ = commit_snapshot(**store, "alpha", alpha1_, 106, 4);  // 2 pages new
    beta1_ = commit_snapshot(**store, "beta", std::nullopt, 500, kPagesPerSnapshot);
    ASSERT_TRUE((*store)->pin(alpha1_).ok());
  }
  std::string store_path() const { return (home_ / "store").string(); }

  TempDir dir_;
  fs::path home_;
  SnapshotId alpha1_ = 0, alpha2_ = 0, beta1_ = 0;
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// --- FROST_HOME ----------------------------------------------------------------------

TEST(CliHome, CreatesPrivateHomeAndStoreOnFirstUse) {
  TempDir dir;
  fs::path home = dir.path() / "home";
  Outcome r = frost_cli({"stats"}, home, 0);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(mode_of(home), 0700u);
  EXPECT_EQ(mode_of(home / "store"), 0600u);
}

TEST(CliHome, HomeIs0700WhateverTheUmask) {
  TempDir dir;
  for (mode_t mask : {0000, 0022, 0077, 0277}) {
    fs::path home = dir.path() / ("home" + std::to_string(mask));
    Outcome r = frost_cli({"ls"}, home, mask);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(mode_of(home), 0700u) << "umask " << std::oct << mask;
  }
}

TEST(CliHome, StoreIs0600UnderCommonUmasks) {
  TempDir dir;
  for (mode_t mask : {0000, 0022, 0077}) {
    fs::path home = dir.path() / ("home" + std::to_string(mask));
    ASSERT_EQ(frost_cli({"fsck"}, home, mask).exit_code, 0);
    EXPECT_EQ(mode_of(home / "store"), 0600u) << "umask " << std::oct << mask;
  }
}

TEST(CliHome, HelpDoesNotTouchTheStore) {
  TempDir dir;
  fs::path home = dir.path() / "home";
  Outcome r = frost_cli({"--help"}, home);
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word : {"fsck", "gc", "stats", "ls", "Exit status"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word << " not in\n" << r.out;
  }
  Outcome sub = frost_cli({"fsck", "--help"}, home);
  EXPECT_EQ(sub.exit_code, 0);
  EXPECT_NE(sub.out.find("--json"), std::string::npos) << sub.out;
  EXPECT_FALSE(fs::exists(home));
}

// --- ls ----------------------------------------------------------------------------------

TEST_F(CliStoreTest, LsNamesOwnersAndSnapshots) {
  Outcome r = frost_cli({"ls"}, home_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (const std::string& word : {std::string("alpha"), std::string("beta"), std::to_string(alpha2_),
                                  std::to_string(beta1_), std::string("yes")}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word << " not in\n" << r.out;
  }
}

TEST_F(CliStoreTest, LsJsonHasEverySnapshot) {
  Json j = json_of(frost_cli({"ls", "--json"}, home_));
  EXPECT_EQ(j["store"].text, store_path());
  const Json& owners = j["owners"];
  ASSERT_EQ(owners.items.size(), 2u);
  std::map<std::string, const Json*> by_name;
  for (const Json& o : owners.items) by_name[o["name"].text] = &o;
  ASSERT_TRUE(by_name.count("alpha") && by_name.count("beta"));

  const Json& alpha = (*by_name["alpha"])["snapshots"];
  ASSERT_EQ(alpha.items.size(), 2u);
  EXPECT_EQ(alpha.items[0]["id"].u64(), alpha1_);
  EXPECT_TRUE(alpha.items[0]["parent"].is_null());
  EXPECT_EQ(alpha.items[0]["pages"].u64(), kPagesPerSnapshot);
  EXPECT_TRUE(alpha.items[0]["pinned"].boolean);
  EXPECT_GT(alpha.items[0]["bytes_written"].u64(), kPagesPerSnapshot * 4096 - 1);
  EXPECT_GT(alpha.items[0]["created_ns"].u64(), 0u);
  EXPECT_EQ(alpha.items[0]["meta_bytes"].u64(), std::string("meta of alpha").size());
  EXPECT_EQ(alpha.items[1]["id"].u64(), alpha2_);
  EXPECT_EQ(alpha.items[1]["parent"].u64(), alpha1_);
  EXPECT_EQ(alpha.items[1]["pages"].u64(), kPagesPerSnapshot + 2);
  EXPECT_FALSE(alpha.items[1]["pinned"].boolean);
  EXPECT_TRUE(alpha.items[1]["created"].text.ends_with("Z"));

  const Json& beta = (*by_name["beta"])["snapshots"];
  ASSERT_EQ(beta.items.size(), 1u);
  EXPECT_EQ(beta.items[0]["id"].u64(), beta1_);
}

TEST_F(CliStoreTest, LsOneOwner) {
  Json j = json_of(frost_cli({"ls", "beta", "--json"}, home_));
  ASSERT_EQ(j["owners"].items.size(), 1u);
  EXPECT_EQ(j["owners"].items[0]["name"].text, "beta");
  expect_one_line_error(frost_cli({"ls", "nobody"}, home_), "nobody");
}

TEST_F(CliStoreTest, JsonEscapesOddOwnerNames) {
  // Quotes and backslashes escaped, UTF-8 kept, a byte that is not UTF-8 replaced by U+FFFD.
  const std::string odd = "we\"ird\\name \xc3\xa9 \xff";
  const std::string as_json = "we\"ird\\name \xc3\xa9 \xef\xbf\xbd";
  {
    auto store = Store::open(store_path(), small_store());
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    ASSERT_NE(commit_snapshot(**store, odd, std::nullopt, 1, 1), 0u);
  }
  Json j = json_of(frost_cli({"ls", "--json"}, home_));
  bool found = false;
  for (const Json& o : j["owners"].items) found |= o["name"].text == as_json;
  EXPECT_TRUE(found) << frost_cli({"ls", "--json"}, home_).out;
}

// --- stats ----------------------------------------------------------------------------

TEST_F(CliStoreTest, StatsJson) {
  Json j = json_of(frost_cli({"stats", "--json"}, home_));
  for (const char* key : {"store", "segment_size", "segments_total", "segments_used", "segments_free",
                          "live_bytes", "file_bytes", "utilisation", "bytes_written", "bytes_new",
                          "bytes_cleaned", "write_cost", "gc_runs", "owners", "snapshots"}) {
    EXPECT_TRUE(j.has(key)) << key;
  }
  EXPECT_EQ(j["segment_size"].u64(), kSegmentSize);
  EXPECT_EQ(j["segments_total"].u64(), kCapacity / kSegmentSize);
  EXPECT_EQ(j["segments_used"].u64() + j["segments_free"].u64(), j["segments_total"].u64());
  EXPECT_GE(j["segments_used"].u64(), 1u);
  EXPECT_EQ(j["owners"].u64(), 2u);
  EXPECT_EQ(j["snapshots"].u64(), 3u);
  EXPECT_GE(j["live_bytes"].u64(), (2 * kPagesPerSnapshot + 2) * 4096);
  EXPECT_GE(j["bytes_new"].u64(), (2 * kPagesPerSnapshot + 2) * 4096);
  EXPECT_GE(j["bytes_written"].u64(), j["bytes_new"].u64());
  EXPECT_GE(j["write_cost"].number, 1.0);
  EXPECT_GT(j["utilisation"].number, 0.0);
  EXPECT_LE(j["utilisation"].number, 1.0);
}

TEST_F(CliStoreTest, StatsHuman) {
  Outcome r = frost_cli({"stats"}, home_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string path = store_path();
  for (const char* word : {"segments", "live bytes", "file bytes", "utilisation", "write cost", "gc runs",
                           "owners", "snapshots", path.c_str()}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word << " not in\n" << r.out;
  }
}

// --- gc -------------------------------------------------------------------------------

TEST_F(CliStoreTest, GcCleansAndKeepsLiveSnapshots) {
  {
    // Garbage for the cleaner: many snapshots of an owner, then the owner removed.
    auto store = Store::open(store_path(), small_store());
    ASSERT_TRUE(store.ok()) << store.error().to_string();
    for (int i = 0; i < 8; ++i) commit_snapshot(**store, "scratch", std::nullopt, 0, 64);
    ASSERT_TRUE((*store)->remove_owner("scratch").ok());
  }
  Json j = json_of(frost_cli({"gc", "--json"}, home_));
  for (const char* key : {"store", "segments_cleaned", "segments_freed", "bytes_copied", "segments_free_after"}) {
    EXPECT_TRUE(j.has(key)) << key;
  }
  EXPECT_GE(j["segments_freed"].u64(), 1u);
  EXPECT_GT(j["segments_free_after"].u64(), 0u);

  Outcome human = frost_cli({"gc"}, home_);
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("cleaned"), std::string::npos) << human.out;

  Json ls = json_of(frost_cli({"ls", "--json"}, home_));
  EXPECT_EQ(ls["owners"].items.size(), 2u);
  EXPECT_EQ(frost_cli({"fsck"}, home_).exit_code, 0);
}

// --- fsck -------------------------------------------------------------------------------

TEST_F(CliStoreTest, FsckCleanStoreExitsZero) {
  Outcome r = frost_cli({"fsck"}, home_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("clean"), std::string::npos) << r.out;
  Json j = json_of(frost_cli({"fsck", "--json"}, home_));
  EXPECT_TRUE(j["clean"].boolean);
  EXPECT_TRUE(j["damage"].items.empty());
  EXPECT_EQ(j["snapshots_checked"].u64(), 3u);
  EXPECT_GE(j["pages_checked"].u64(), kPagesPerSnapshot);
}

// Flips one byte in the middle of the stored copy of a page.
void corrupt_page(const std::string& path, const std::string& owner, uint64_t vpn) {
  std::string bytes = slurp(path);
  Page page = marked_page(owner, vpn);
  std::string needle(reinterpret_cast<const char*>(page.data()), 256);
  size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos) << "page not found in the store file";
  ASSERT_EQ(bytes.find(needle, at + page.size()), std::string::npos) << "page stored twice";
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  char c = static_cast<char>(bytes[at + 1000] ^ 0x40);
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(at + 1000)), 1);
  ::close(fd);
}

TEST_F(CliStoreTest, FsckNamesDamageAndExitsOne) {
  corrupt_page(store_path(), "beta", 503);
  Outcome r = frost_cli({"fsck"}, home_);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("damaged: "), std::string::npos) << r.out;

  Json j = json_of(frost_cli({"fsck", "--json"}, home_), 1);
  EXPECT_FALSE(j["clean"].boolean);
  ASSERT_FALSE(j["damage"].items.empty());
  EXPECT_EQ(j["damage"].items[0].type, Json::Type::kString);
}

// --- errors ---------------------------------------------------------------------------------

TEST(CliErrors, UnknownCommand) {
  TempDir dir;
  Outcome r = frost_cli({"frobnicate"}, dir.path() / "home");
  expect_one_line_error(r, "frobnicate");
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_FALSE(fs::exists(dir.path() / "home"));
}

TEST(CliErrors, BadArguments) {
  TempDir dir;
  expect_one_line_error(frost_cli({"ls", "--bogus"}, dir.path()), "--bogus");
  expect_one_line_error(frost_cli({"gc", "extra"}, dir.path()), "extra");
  Outcome none = frost_cli({}, dir.path());
  expect_one_line_error(none, "command");
  EXPECT_EQ(none.exit_code, 64);
}

TEST(CliErrors, HomeIsAFile) {
  TempDir dir;
  fs::path home = dir.path() / "file";
  std::ofstream(home) << "not a directory\n";
  for (const char* cmd : {"ls", "stats", "fsck", "gc"}) {
    Outcome r = frost_cli({cmd}, home);
    expect_one_line_error(r, home.string());
    EXPECT_EQ(r.exit_code, 2) << cmd;
  }
}

TEST(CliErrors, GarbageStore) {
  TempDir dir;
  std::string garbage(1 << 20, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 2654435761u) >> 13);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  std::ofstream(dir.path() / "store", std::ios::binary) << garbage;
  for (const char* cmd : {"ls", "stats", "fsck", "gc"}) {
    Outcome r = frost_cli({cmd}, dir.path());
    expect_one_line_error(r, "store");
    EXPECT_EQ(r.exit_code, 2) << cmd;
    Outcome j = frost_cli({cmd, "--json"}, dir.path());
    EXPECT_EQ(j.exit_code, 2) << cmd;
    EXPECT_EQ(j.out, "");
  }
  EXPECT_EQ(slurp(dir.path() / "store"), garbage) << "a garbage store must not be touched";
}

// --- the demo -----------------------------------------------------------------------------------

TEST(CliDemo, RunsCleanTwice) {
  TempDir dir;
  fs::path home = dir.path() / "home";
  for (int i = 0; i < 2; ++i) {
    Outcome r = run(FROST_DEMO_PATH, {}, home);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("All checks passed"), std::string::npos) << r.out;
  }
  EXPECT_EQ(mode_of(home), 0700u);
  Json j = json_of(frost_cli({"fsck", "--json"}, home));
  EXPECT_TRUE(j["clean"].boolean);
}

}  // namespace
