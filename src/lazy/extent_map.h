// Where the pages of a snapshot are in one address space *now*.
//
// A lazily melted process starts with its private anonymous areas at the
// addresses it was frozen at, so snapshot page vpn belongs at address
// vpn * 4096. Then it moves things: mremap carries pages to a new address,
// munmap and MADV_DONTNEED drop them (they must read as zero from then on,
// never as the snapshot's content), fork copies the whole map into a new
// address space. An extent says "addresses [start, end) hold snapshot pages
// from vpn on"; the page server keeps one map per address space and follows
// the kernel's userfaultfd events (REMAP, UNMAP, REMOVE, FORK) with move(),
// cut() and a copy.
//
// An address in no extent has no snapshot content: a fault there is answered
// with a zero page. A vpn is at most at one address of a map.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace frost::lazy {

struct Extent {
  uint64_t start = 0, end = 0;  // [start, end), page aligned
  uint64_t vpn = 0;             // snapshot page at `start`
  uint64_t pages() const { return (end - start) / 4096; }
  bool operator==(const Extent&) const = default;
};

// Where a run of snapshot pages lives: `pages` pages from vpn on are at addr,
// addr + 4096, ... (the rest of the run, if any, is elsewhere or nowhere).
struct Placement {
  uint64_t addr = 0;
  uint64_t pages = 0;
};

class ExtentMap {
 public:
  // Addresses [start, end) now hold snapshot pages from vpn on, replacing
  // whatever the map said about them. Page-aligned, start < end.
  void add(uint64_t start, uint64_t end, uint64_t vpn);
  // [start, end) holds no snapshot page any more (munmap, MADV_DONTNEED).
  void cut(uint64_t start, uint64_t end);
  // mremap: what was at [from, from + len) is now at [to, to + len); what
  // was at the destination is gone, and the source is left empty.
  void move(uint64_t from, uint64_t to, uint64_t len);

  // The snapshot page at address addr (any address in the page), if any.
  std::optional<uint64_t> vpn_at(uint64_t addr) const;
  // How many pages from addr's page on belong to the same extent (0 if none).
  uint64_t pages_from(uint64_t addr) const;
  // Where snapshot page vpn is, with how many pages after it follow in the
  // same extent; nullopt when the map holds vpn nowhere. `skip`, if given, is
  // set to the number of vpns from vpn on that the map holds nowhere (until
  // the next extent's first vpn, or UINT64_MAX - vpn when none follows).
  std::optional<Placement> find(uint64_t vpn, uint64_t* skip = nullptr) const;

  bool empty() const { return by_addr_.empty(); }
  uint64_t pages() const;
  std::vector<Extent> extents() const;

 private:
  void insert(const Extent& e);
  void erase(std::map<uint64_t, Extent>::iterator it);
  // Removes [start, end) and returns the pieces that were there, clipped.
  std::vector<Extent> take(uint64_t start, uint64_t end);

  std::map<uint64_t, Extent> by_addr_;  // start -> extent
  std::map<uint64_t, uint64_t> by_vpn_;  // first vpn -> start
};

}  // namespace frost::lazy
