// How far a long capture or restore has got, for a progress line.
#pragma once

#include <cstdint>
#include <functional>

namespace frost {

// Called with bytes done so far and the total expected; may be empty.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

}  // namespace frost
