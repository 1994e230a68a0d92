// The image encoding: what goes in comes out, and hostile bytes give a clean
// error, never a crash.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <random>

#include "image/image_codec.h"
#include "image/image_schema.h"
#include "image/image_text.h"
#include "image/image_wire.h"

namespace frost::image {
namespace {

std::vector<uint8_t> seq(size_t n, uint8_t start) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; i++) v[i] = static_cast<uint8_t>(start + i);
  return v;
}

ThreadImage thread(int32_t tid) {
  ThreadImage t;
  t.tid = tid;
  t.name = "worker-" + std::to_string(tid);
  t.regs = seq(216, 1);
  t.xstate = seq(2696, 7);
  t.fs_base = 0x7f0000001000 + tid;
  t.gs_base = 0;
  t.sigmask = 1ull << 13 | 1ull << 63;
  t.pending = {seq(128, 3), seq(128, 9)};
  t.rseq = {0x7f0000002000, 32, 0x53053053, 0};
  t.robust_list_head = 0x7f0000003000;
  t.robust_list_len = 24;
  t.clear_child_tid = 0x7f0000004000;
  t.sigaltstack = {0x7f0000005000, 0, 0x8000};
  t.restart = SyscallRestart::kRestartBlock;
  return t;
}

// Every field set to something other than its default.
ProcessImage full_image() {
  ProcessImage p;
  p.pid = 4242; p.ppid = 1; p.pgid = 4242; p.sid = -1;
  p.comm = "sleeper"; p.exe = "/usr/bin/sleeper"; p.cwd = "/home/ü";
  p.umask = 022; p.personality = 0x0040000;
  p.creds.uids = {1000, 1000, 1000, 1000};
  p.creds.gids = {100, 101, 102, 103};
  p.creds.groups = {4, 24, 27, 0};
  p.creds.cap_inheritable = 1; p.creds.cap_permitted = 0x1ffffffffff;
  p.creds.cap_effective = 0x1ffffffffff; p.creds.cap_bounding = ~0ull; p.creds.cap_ambient = 2;
  p.creds.securebits = 0x2f; p.creds.no_new_privs = true;
  p.rlimits = {{7, 1024, 4096}, {3, 8 << 20, ~0ull}, {0, 0, 5}};
  p.mm = {0x400000, 0x401000, 0x600000, 0x601000, 0x602000, 0x623000, 0x7ffd0000,
          0x7ffd1000, 0x7ffd1100, 0x7ffd1100, 0x7ffd1f00, {33, 0x7ffd5000, 6, 4096, 0, 0}};
  p.threads = {thread(4242), thread(4243), thread(4244)};
  MemoryAreaImage file{0x400000, 0x401000, 5, kAreaPrivate, AreaKind::kFile, "/usr/bin/sleeper",
                       0x1000, 1234567, 0x803, ContentSource::kFileMapped, 0};
  MemoryAreaImage heap{0x602000, 0x623000, 3, kAreaPrivate, AreaKind::kHeap, "", 0, 0, 0,
                       ContentSource::kStorePages, 0};
  MemoryAreaImage shm{0x7f0000000000, 0x7f0000010000, 3, kAreaShared, AreaKind::kMemfd,
                      "/memfd:ring (deleted)", 0, 99, 5, ContentSource::kSharedObject, 77};
  MemoryAreaImage stack{0x7ffd0000, 0x7ffd2000, 3, kAreaPrivate | kAreaGrowsDown,
                        AreaKind::kStack, "", 0, 0, 0, ContentSource::kStorePages, 0};
  MemoryAreaImage vvc{0x7ffe0000, 0x7ffe1000, 1, kAreaPrivate, AreaKind::kVvarVclock, "", 0, 0,
                      0, ContentSource::kNone, 0};
  p.areas = {file, heap, shm, stack, vvc};
  p.sigactions[1] = {0x401100, 0x14000000, 0x401200, 1ull << 14};
  p.sigactions[63] = {1, 0, 0, 0};
  p.shared_pending = {seq(128, 200)};
  p.itimers[0] = {1000000, 250000};
  p.itimers[2] = {5, 0};
  p.posix_timers = {{0, 1, 4, 34, 4243, 0xdead, 1000000, 500, 3}, {1, 0, 0, 14, 0, 0, 0, 7, 0}};
  p.fds = {{0, 0, "tty", seq(20, 1)}, {3, 1, "file", seq(300, 5)}, {7, 0, "pipe", {}}};
  return p;
}

// Rewrites the checksum so a test reaches the decoder behind it.
void reseal(std::vector<uint8_t>& blob) {
  if (blob.size() < schema::kHeaderSize + schema::kTrailerSize) return;
  size_t covered = blob.size() - schema::kTrailerSize;
  uint64_t sum = XXH3_64bits(blob.data(), covered);
  for (int i = 0; i < 8; i++) blob[covered + i] = static_cast<uint8_t>(sum >> (8 * i));
}

// Wraps a body in a header and checksum, as encode() would.
std::vector<uint8_t> seal_body(const std::vector<uint8_t>& body, uint16_t major = kFormatMajor,
                               uint16_t minor = kFormatMinor) {
  std::vector<uint8_t> b(schema::kMagic, schema::kMagic + 4);
  b.push_back(major & 0xff); b.push_back(major >> 8);
  b.push_back(minor & 0xff); b.push_back(minor >> 8);
  for (int i = 0; i < 4; i++) b.push_back(static_cast<uint8_t>(body.size() >> (8 * i)));
  b.insert(b.end(), body.begin(), body.end());
  b.resize(b.size() + 8);
  reseal(b);
  return b;
}

std::vector<uint8_t> body_of(const std::vector<uint8_t>& blob) {
  return {blob.begin() + schema::kHeaderSize, blob.end() - schema::kTrailerSize};
}

TEST(ImageCodec, FullImageRoundTrips) {
  ProcessImage p = full_image();
  auto blob = encode(p);
  auto back = decode(blob);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, p);
  EXPECT_EQ(encode(*back), blob);
}

TEST(ImageCodec, DefaultImageRoundTrips) {
  auto back = decode(encode(ProcessImage{}));
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, ProcessImage{});
}

TEST(ImageCodec, ExtremeValuesRoundTrip) {
  ProcessImage p;
  p.pid = INT32_MIN; p.ppid = INT32_MAX; p.umask = UINT32_MAX;
  p.mm.auxv = {~0ull, 0, 1ull << 63};
  p.threads.push_back(ThreadImage{});
  p.threads[0].tid = -1;
  p.threads[0].pending = {{}};  // an empty siginfo is still an element
  p.fds = {FdImage{}};
  auto back = decode(encode(p));
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(*back, p);
}

TEST(ImageCodec, EveryTruncationIsACleanError) {
  auto blob = encode(full_image());
  for (size_t n = 0; n < blob.size(); n++) {
    auto r = decode(std::span(blob).first(n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_TRUE(r.error().is(ErrorKind::kCorruption)) << n << ": " << r.error().to_string();
  }
}

TEST(ImageCodec, TruncatedBodyResealedNeverCrashes) {
  auto body = body_of(encode(full_image()));
  for (size_t n = 0; n < body.size(); n++) {
    std::vector<uint8_t> cut(body.begin(), body.begin() + n);
    auto r = decode(seal_body(cut));
    if (!r.ok()) {
      EXPECT_TRUE(r.error().is(ErrorKind::kCorruption)) << r.error().to_string();
    }
  }
}

TEST(ImageCodec, BitFlipsAreCaughtByTheChecksum) {
  auto blob = encode(full_image());
  std::mt19937_64 rng(1);
  for (int i = 0; i < 2000; i++) {
    auto bad = blob;
    size_t bit = rng() % (bad.size() * 8);
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    auto r = decode(bad);
    ASSERT_FALSE(r.ok()) << bit;
    // A flip in the major version is reported as that, before the checksum.
    EXPECT_TRUE(r.error().is(ErrorKind::kCorruption) || r.error().is(ErrorKind::kUnsupported));
  }
}

TEST(ImageCodec, ResealedBitFlipsDecodeOrFailCleanly) {
  auto blob = encode(full_image());
  std::mt19937_64 rng(2);
  int decoded = 0;
  for (int i = 0; i < 20000; i++) {
    auto bad = blob;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; k++) {
      size_t bit = schema::kHeaderSize * 8 + rng() % ((bad.size() - 20) * 8);
      bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    }
    reseal(bad);
    auto r = decode(bad);
    if (r.ok()) {
      decoded++;
      to_text(*r);  // a decoded image is always printable
    } else {
      EXPECT_TRUE(r.error().is(ErrorKind::kCorruption)) << r.error().to_string();
    }
  }
  EXPECT_GT(decoded, 0);  // most flips land in payload bytes
}

TEST(ImageCodec, RandomBodiesNeverCrash) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20000; i++) {
    std::vector<uint8_t> body(rng() % 64);
    for (auto& b : body) b = static_cast<uint8_t>(rng() % 4 == 0 ? rng() % 20 : rng());
    auto r = decode(seal_body(body));
    if (!r.ok()) {
      EXPECT_TRUE(r.error().is(ErrorKind::kCorruption));
    }
  }
}

TEST(ImageCodec, ManyEmptyElementsStayWithinBudget) {
  // 2 bytes of input per empty thread: a decoder without a budget would
  // allocate ~100x the blob.
  std::vector<uint8_t> body;
  for (int i = 0; i < 2'000'000; i++) {
    body.push_back(schema::kThread);
    body.push_back(0);
  }
  auto r = decode(seal_body(body));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(ErrorKind::kCorruption));
}

TEST(ImageCodec, UnknownFieldsAreSkipped) {
  ProcessImage p = full_image();
  wire::Writer extra;
  extra.u64(999, 12345);
  extra.bytes(1000, seq(40, 0));
  wire::Writer unknown_in_thread;
  unknown_in_thread.s64(schema::kTid, 77);
  unknown_in_thread.bytes(500, seq(9, 0));
  extra.message(schema::kThread, unknown_in_thread);
  auto body = body_of(encode(p));
  body.insert(body.begin(), extra.data().begin(), extra.data().end());
  auto r = decode(seal_body(body, kFormatMajor, kFormatMinor + 3));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->format_minor, kFormatMinor + 3);
  ASSERT_EQ(r->threads.size(), p.threads.size() + 1);
  EXPECT_EQ(r->threads[0].tid, 77);
  r->threads.erase(r->threads.begin());
  r->format_minor = kFormatMinor;
  EXPECT_EQ(*r, p);
}

TEST(ImageCodec, MissingFieldsDefault) {
  wire::Writer w;
  w.s64(schema::kPid, 9);
  auto r = decode(seal_body(w.take()));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ProcessImage want;
  want.pid = 9;
  EXPECT_EQ(*r, want);
}

TEST(ImageCodec, OtherMajorVersionIsUnsupported) {
  auto body = body_of(encode(full_image()));
  for (uint16_t major : {uint16_t(kFormatMajor + 1), uint16_t(0)}) {
    auto r = decode(seal_body(body, major));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(ErrorKind::kUnsupported)) << r.error().to_string();
  }
}

TEST(ImageCodec, OutOfRangeValuesAreCorruption) {
  auto refused = [](wire::Writer w) {
    auto r = decode(seal_body(w.take()));
    return !r.ok() && r.error().is(ErrorKind::kCorruption);
  };
  wire::Writer big_pid;
  big_pid.s64(schema::kPid, int64_t{1} << 40);
  EXPECT_TRUE(refused(big_pid));
  wire::Writer area, bad_kind;
  area.u64(schema::kKind, kAreaKindLast + 1);
  bad_kind.message(schema::kArea, area);
  EXPECT_TRUE(refused(bad_kind));
  wire::Writer sa, bad_signo;
  sa.u64(schema::kSigno, 65);
  bad_signo.message(schema::kSigaction, sa);
  EXPECT_TRUE(refused(bad_signo));
  wire::Writer no_signo;
  no_signo.message(schema::kSigaction, wire::Writer{});
  EXPECT_TRUE(refused(no_signo));
  wire::Writer it, bad_which;
  it.u64(schema::kWhich, 3);
  bad_which.message(schema::kItimer, it);
  EXPECT_TRUE(refused(bad_which));
  // An integer field padded with a trailing byte.
  EXPECT_FALSE(decode(seal_body({schema::kUmask, 2, 0x01, 0x00})).ok());
  // An eleven-byte varint.
  std::vector<uint8_t> long_varint = {schema::kUmask, 11};
  long_varint.insert(long_varint.end(), 10, 0x80);
  long_varint.push_back(0);
  EXPECT_FALSE(decode(seal_body(long_varint)).ok());
}

TEST(ImageCodec, MatchesTheDocumentedExample) {
  ProcessImage p;
  p.pid = 9;
  auto blob = encode(p);
  std::vector<uint8_t> head = {'F', 'R', 'I', 'M', 1, 0, 0, 0, 3, 0, 0, 0, 0x01, 0x01, 0x12};
  ASSERT_EQ(blob.size(), head.size() + 8);
  EXPECT_TRUE(std::equal(head.begin(), head.end(), blob.begin()));
  EXPECT_EQ(encode(ProcessImage{}).size(), 20u);
}

TEST(ImageCodec, VarintLimits) {
  size_t used = 0;
  std::vector<uint8_t> max = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  auto v = wire::read_varint(max, &used);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, ~0ull);
  EXPECT_EQ(used, 10u);
  max[9] = 0x02;
  EXPECT_FALSE(wire::read_varint(max, &used).ok());
  EXPECT_FALSE(wire::read_varint(std::vector<uint8_t>{0x80}, &used).ok());
}

TEST(ImageText, ShowsTheImage) {
  std::string t = to_text(full_image());
  for (const char* want :
       {"pid 4242 ppid 1", "comm \"sleeper\"", "thread 4243 \"worker-4243\"",
        "syscall_restart restart_block", "private,growsdown stack store", "memfd shared id 77",
        "vvar_vclock none", "sigaction 2 handler 0x401100", "sigaction 64 handler 0x1",
        "itimer real value 250000us interval 1000000us", "posix_timer 0 clock 1",
        "fd 3 file flags 0x1 300 bytes", "rlimit 7 cur 0x400 max 0x1000", "umask 0022"}) {
    EXPECT_NE(t.find(want), std::string::npos) << want << "\n" << t;
  }
}

}  // namespace
}  // namespace frost::image
