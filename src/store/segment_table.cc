#include "store/segment_table.h"

#include <algorithm>

namespace frost::store {

void SegmentTable::reset(std::vector<SegmentUsage> entries) {
  std::lock_guard lock(mu_);
  s_ = std::move(entries);
  free_ = std::count_if(s_.begin(), s_.end(), [](auto& u) { return u.state == uint8_t(SegmentState::kFree); });
}

std::vector<SegmentUsage> SegmentTable::snapshot() const {
  std::lock_guard lock(mu_);
  return s_;
}

uint64_t SegmentTable::count() const {
  std::lock_guard lock(mu_);
  return s_.size();
}

uint64_t SegmentTable::free_count() const {
  std::lock_guard lock(mu_);
  return free_;
}

std::optional<uint32_t> SegmentTable::allocate(bool for_cleaner, uint32_t reserve) {
  std::lock_guard lock(mu_);
  if (free_ == 0 || (!for_cleaner && free_ <= reserve)) return std::nullopt;
  for (uint32_t i = 0; i < s_.size(); i++) {
    if (s_[i].state != uint8_t(SegmentState::kFree)) continue;
    s_[i] = SegmentUsage{};
    s_[i].state = uint8_t(SegmentState::kUsed);
    free_--;
    return i;
  }
  return std::nullopt;
}

void SegmentTable::unallocate(uint32_t segment) {
  std::lock_guard lock(mu_);
  if (segment >= s_.size() || s_[segment].state == uint8_t(SegmentState::kFree)) return;
  s_[segment] = SegmentUsage{};
  free_++;
}

void SegmentTable::mark_written(uint32_t segment, uint64_t seq) {
  std::lock_guard lock(mu_);
  if (segment >= s_.size()) return;
  if (s_[segment].state == uint8_t(SegmentState::kFree)) free_--;
  s_[segment].state = uint8_t(SegmentState::kUsed);
  s_[segment].last_seq = std::max(s_[segment].last_seq, seq);
}

void SegmentTable::add_live(uint32_t segment, int64_t bytes) {
  std::lock_guard lock(mu_);
  if (segment >= s_.size()) return;
  int64_t v = int64_t(s_[segment].live_bytes) + bytes;
  s_[segment].live_bytes = uint32_t(std::max<int64_t>(0, v));
}

void SegmentTable::set_live(uint32_t segment, uint32_t bytes) {
  std::lock_guard lock(mu_);
  if (segment < s_.size()) s_[segment].live_bytes = bytes;
}

void SegmentTable::clear_live() {
  std::lock_guard lock(mu_);
  for (auto& u : s_) u.live_bytes = 0;
}

SegmentUsage SegmentTable::get(uint32_t segment) const {
  std::lock_guard lock(mu_);
  return segment < s_.size() ? s_[segment] : SegmentUsage{};
}

std::vector<uint32_t> SegmentTable::empty_segments(const std::vector<uint32_t>& keep,
                                                   uint64_t protect_from_seq) const {
  std::lock_guard lock(mu_);
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < s_.size(); i++) {
    const auto& u = s_[i];
    if (u.state != uint8_t(SegmentState::kUsed) || u.live_bytes != 0) continue;
    if (u.last_seq >= protect_from_seq) continue;
    if (std::find(keep.begin(), keep.end(), i) != keep.end()) continue;
    out.push_back(i);
  }
  return out;
}

std::vector<uint32_t> SegmentTable::free_empty(const std::vector<uint32_t>& keep, uint64_t protect_from_seq) {
  auto out = empty_segments(keep, protect_from_seq);
  mark_free(out);
  return out;
}

void SegmentTable::mark_free(const std::vector<uint32_t>& segments) {
  std::lock_guard lock(mu_);
  for (uint32_t i : segments) {
    if (i >= s_.size() || s_[i].state == uint8_t(SegmentState::kFree)) continue;
    s_[i] = SegmentUsage{};
    free_++;
  }
}

}  // namespace frost::store
