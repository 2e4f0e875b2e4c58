// SPDX-License-Identifier: Apache-2.0
// Weighted-random backend selection: the connect hook picks `table[random % table.size()]`, so a
// backend's share of new connections is its share of the table's entries.
#ifndef SOCKMESH_USERSPACE_LB_WEIGHTED_TABLE_H_
#define SOCKMESH_USERSPACE_LB_WEIGHTED_TABLE_H_

#include <cstdint>
#include <vector>

namespace sockmesh::lb {

// Returns a table whose entries are indices into `weights`; backend i appears in proportion to
// weights[i].
//
// Uniform fast path: when all weights are equal and non-zero, the result is exactly
// [0, 1, ..., n-1] (size n, whatever `table_size` is). Callers can store that short table, or
// skip the table and pick `random % n` directly.
//
// Otherwise the result has `table_size` entries apportioned by largest remainder (Hamilton's
// method: floor of each exact quota, then one more entry to the largest fractional parts, ties to
// the lower index). If table_size is at least the number of non-zero weights, every backend with a
// non-zero weight gets at least one entry, taken from the backend that has the most. Each
// backend's entries are spread evenly over the table (interleaved, not in runs).
//
// Backends with weight 0 get no entries. Empty `weights`, all weights 0, or table_size 0 for
// unequal weights yields an empty table.
std::vector<uint32_t> BuildWeightedTable(const std::vector<uint32_t>& weights, uint32_t table_size);

}  // namespace sockmesh::lb

#endif  // SOCKMESH_USERSPACE_LB_WEIGHTED_TABLE_H_
