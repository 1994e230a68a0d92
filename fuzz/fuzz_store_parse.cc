// libFuzzer target: like fuzz_store_raw, but the store accepts wrong checksums
// (StoreOptions::ignore_checksums), so mutated bytes reach the parsers of the
// superblock, checkpoint tables, partial headers, summaries, index nodes and
// commit/op records. See fuzz_store.h.
#include "fuzz_store.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  frost::fuzz::write_seeds_if_asked();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return frost::fuzz::run_one(data, size, /*ignore_checksums=*/true);
}
