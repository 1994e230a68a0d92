// libFuzzer target: the process image decoder (image_codec.h) on hostile
// bytes. It must never crash or allocate without bound, and whatever it
// accepts must survive a round trip: decode(encode(decode(x))) == decode(x).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "image/image_codec.h"

namespace {

using namespace frost::image;

// A small image with one of everything, for the seed corpus.
ProcessImage seed_image(int variant) {
  ProcessImage img;
  img.pid = 4242 + variant;
  img.ppid = 1;
  img.pgid = img.sid = img.pid;
  img.comm = "seed";
  img.exe = "/usr/bin/seed";
  img.cwd = "/tmp";
  img.umask = 022;
  img.creds.uids = {1000, 1000, 1000, 1000};
  img.creds.groups = {4, 24, 27};
  img.rlimits.push_back({7, 1024, 4096});
  img.mm.start_brk = 0x555555559000;
  img.mm.brk = 0x55555557a000;
  img.mm.auxv = {6, 4096, 25, 0x7ffc0000};
  for (int t = 0; t <= variant; ++t) {
    ThreadImage th;
    th.tid = img.pid + t;
    th.name = "worker";
    th.regs.assign(216, uint8_t(t));
    th.xstate.assign(1088, uint8_t(0x11 * t));
    th.sigmask = 1ull << 9;
    th.pending.push_back(std::vector<uint8_t>(128, 3));
    th.rseq = {0x7f0000001000, 32, 0x53053053, 0};
    th.restart = SyscallRestart::kReexecute;
    img.threads.push_back(th);
  }
  MemoryAreaImage a;
  a.start = 0x400000;
  a.end = 0x401000;
  a.prot = 5;
  a.flags = kAreaPrivate;
  a.kind = AreaKind::kFile;
  a.path = "/usr/bin/seed";
  a.source = ContentSource::kFileMapped;
  img.areas.push_back(a);
  a.start = 0x7f0000000000;
  a.end = 0x7f0000010000;
  a.kind = AreaKind::kMemfd;
  a.source = ContentSource::kSharedObject;
  a.shared_id = 1;
  img.areas.push_back(a);
  img.sigactions[1] = {0x401000, 0x14000000, 0x401100, 0};
  img.itimers[0] = {1000, 2000};
  img.posix_timers.push_back({0, 1, 0, 14, 0, 0xdead, 0, 5000, 0});
  img.fds.push_back({0, 0, "chr", {1, 2, 3}});
  img.fds.push_back({3, 1, "pipe", std::vector<uint8_t>(40, 9)});
  return img;
}

void write_seeds_if_asked() {
  const char* dir = std::getenv("FROST_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return;
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> blob = encode(seed_image(i));
    std::ofstream out(std::filesystem::path(dir) / ("image-" + std::to_string(i)), std::ios::binary);
    out.write(reinterpret_cast<const char*>(blob.data()), std::streamsize(blob.size()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  write_seeds_if_asked();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  frost::Result<ProcessImage> first = decode(std::span<const uint8_t>(data, size));
  if (!first.ok()) return 0;
  frost::Result<ProcessImage> second = decode(encode(*first));
  if (!second.ok()) {
    std::fprintf(stderr, "re-encoded image does not decode: %s\n", second.error().to_string().c_str());
    std::abort();
  }
  // The version fields are those of the blob, then of the current writer.
  ProcessImage a = *first, b = *second;
  a.format_minor = b.format_minor = 0;
  if (!(a == b)) {
    std::fprintf(stderr, "image changed in a decode/encode round trip\n");
    std::abort();
  }
  return 0;
}
