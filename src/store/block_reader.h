// Reads records the index points at, verifying each against the checksum in
// its pointer, and caches decoded index nodes. Safe from many threads.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "store/env.h"
#include "store/log_writer.h"
#include "store/page_index.h"

namespace frost::store {

class BlockReader final : public NodeSource {
 public:
  BlockReader(const File* file, Geometry geo, bool ignore_checksums, size_t cache_nodes = 16384);

  // The stored (maybe compressed) bytes of a record.
  Result<std::vector<uint8_t>> read_record(const IndexEntry& e) const;
  // A page or meta chunk, decompressed; a zero entry reads as zeros.
  Status read_page(const IndexEntry& e, std::span<uint8_t, kPageSize> out) const;
  // Reads entries.size() pages into out (kPageSize each, in order). Blocks
  // that lie back to back in the log (as put_pages writes them) are read with
  // one pread per run instead of one per page.
  Status read_pages(std::span<const IndexEntry> entries, uint8_t* out) const;
  Result<std::shared_ptr<const Node>> load_node(const IndexEntry& e, int level, Tree tree) const override;
  void clear_cache();

 private:
  struct Key {
    uint64_t offset, checksum;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return k.offset * 0x9e3779b97f4a7c15ull ^ k.checksum; }
  };
  using Map = std::unordered_map<Key, std::shared_ptr<const Node>, KeyHash>;

  const File* file_;
  Geometry geo_;
  bool ignore_checksums_;
  size_t cache_nodes_;
  // Two generations: when the young one fills, it becomes the old one. A cheap
  // approximation of LRU without a list to maintain on every hit.
  mutable std::mutex mu_;
  mutable Map young_, old_;
};

}  // namespace frost::store
