// libFuzzer target: a store image as it might come off a damaged disk, opened
// with every checksum enforced. Finds crashes and hangs in recovery and in the
// paths that reject bad bytes. See fuzz_store.h.
#include "fuzz_store.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  frost::fuzz::write_seeds_if_asked();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return frost::fuzz::run_one(data, size, /*ignore_checksums=*/false);
}
