// Where a snapshot keeps each page of a process, by the store's page number.
//
// A private page is stored at its own virtual page number (address / 4096).
// A shared object (shared anonymous memory, a memfd) is stored once, however
// many times it is mapped, at kSharedVpnBase + (shared_id << kSharedIdShift)
// + its page offset in the object. User addresses end at 2^47 (vpn 2^35), so
// the two ranges never meet; the store's index covers vpns below 2^48.
#pragma once

#include <cstdint>

namespace frost::image {

inline constexpr uint64_t kPageShift = 12;
inline constexpr uint64_t kSharedVpnBase = 1ull << 44;
inline constexpr uint64_t kSharedIdShift = 28;  // 1 TiB per object
inline constexpr uint64_t kMaxSharedObjects = 1ull << (47 - kSharedIdShift - 3);

inline constexpr uint64_t shared_object_vpn(uint64_t shared_id, uint64_t object_offset) {
  return kSharedVpnBase + (shared_id << kSharedIdShift) + (object_offset >> kPageShift);
}

inline constexpr bool is_shared_object_vpn(uint64_t vpn) { return vpn >= kSharedVpnBase; }

}  // namespace frost::image
