#include "lazy/extent_map.h"

#include <algorithm>
#include <cstdint>

namespace frost::lazy {
namespace {

constexpr uint64_t kPage = 4096;

}  // namespace

void ExtentMap::insert(const Extent& e) {
  by_addr_[e.start] = e;
  by_vpn_[e.vpn] = e.start;
}

void ExtentMap::erase(std::map<uint64_t, Extent>::iterator it) {
  by_vpn_.erase(it->second.vpn);
  by_addr_.erase(it);
}

std::vector<Extent> ExtentMap::take(uint64_t start, uint64_t end) {
  std::vector<Extent> taken;
  auto it = by_addr_.upper_bound(start);
  if (it != by_addr_.begin()) --it;
  while (it != by_addr_.end() && it->second.start < end) {
    Extent e = it->second;
    if (e.end <= start) {
      ++it;
      continue;
    }
    auto next = std::next(it);
    erase(it);
    uint64_t lo = std::max(e.start, start), hi = std::min(e.end, end);
    if (e.start < lo) insert({e.start, lo, e.vpn});
    if (hi < e.end) insert({hi, e.end, e.vpn + (hi - e.start) / kPage});
    taken.push_back({lo, hi, e.vpn + (lo - e.start) / kPage});
    it = next;
  }
  return taken;
}

void ExtentMap::add(uint64_t start, uint64_t end, uint64_t vpn) {
  if (start >= end) return;
  take(start, end);
  insert({start, end, vpn});
}

void ExtentMap::cut(uint64_t start, uint64_t end) {
  if (start < end) take(start, end);
}

void ExtentMap::move(uint64_t from, uint64_t to, uint64_t len) {
  if (len == 0 || from == to) return;
  std::vector<Extent> moving = take(from, from + len);
  take(to, to + len);
  for (Extent e : moving) insert({e.start - from + to, e.end - from + to, e.vpn});
}

std::optional<uint64_t> ExtentMap::vpn_at(uint64_t addr) const {
  auto it = by_addr_.upper_bound(addr);
  if (it == by_addr_.begin()) return std::nullopt;
  const Extent& e = std::prev(it)->second;
  if (addr >= e.end) return std::nullopt;
  return e.vpn + (addr - e.start) / kPage;
}

uint64_t ExtentMap::pages_from(uint64_t addr) const {
  auto it = by_addr_.upper_bound(addr);
  if (it == by_addr_.begin()) return 0;
  const Extent& e = std::prev(it)->second;
  if (addr >= e.end) return 0;
  return (e.end - (addr & ~(kPage - 1))) / kPage;
}

std::optional<Placement> ExtentMap::find(uint64_t vpn, uint64_t* skip) const {
  auto it = by_vpn_.upper_bound(vpn);
  if (it != by_vpn_.begin()) {
    const Extent& e = by_addr_.at(std::prev(it)->second);
    if (vpn < e.vpn + e.pages()) {
      if (skip) *skip = 0;
      return Placement{e.start + (vpn - e.vpn) * kPage, e.vpn + e.pages() - vpn};
    }
  }
  if (skip) *skip = it == by_vpn_.end() ? UINT64_MAX - vpn : it->first - vpn;
  return std::nullopt;
}

uint64_t ExtentMap::pages() const {
  uint64_t n = 0;
  for (const auto& [start, e] : by_addr_) n += e.pages();
  return n;
}

std::vector<Extent> ExtentMap::extents() const {
  std::vector<Extent> out;
  for (const auto& [start, e] : by_addr_) out.push_back(e);
  return out;
}

}  // namespace frost::lazy
