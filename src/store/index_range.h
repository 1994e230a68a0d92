// Range queries on the page index: what a lazy melt asks before the process
// runs (does this area hold pages? fill only these areas), answered by
// loading only the nodes whose keys meet the range, so the answer costs the
// range's share of the tree, not the whole snapshot's.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "common/result.h"
#include "store/page_index.h"

namespace frost::store {

// Visits every present key in [first, last] in order. fn returning an error stops the walk.
Status index_walk_range(const NodeSource& src, Tree tree, IndexEntry root, uint64_t first, uint64_t last,
                        const std::function<Status(uint64_t key, const IndexEntry& e)>& fn);

// The lowest present key in [first, last], if there is one.
Result<std::optional<uint64_t>> index_first_key(const NodeSource& src, Tree tree, IndexEntry root, uint64_t first,
                                                uint64_t last);

}  // namespace frost::store
