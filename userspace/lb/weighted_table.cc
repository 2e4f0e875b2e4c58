// SPDX-License-Identifier: Apache-2.0
#include "userspace/lb/weighted_table.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <numeric>
#include <vector>

namespace sockmesh::lb {
namespace {

bool AllEqual(const std::vector<uint32_t>& weights) {
  return std::adjacent_find(weights.begin(), weights.end(), std::not_equal_to<>()) == weights.end();
}

// Largest-remainder apportionment of `table_size` entries. Quota i is weights[i] * table_size /
// total; both factors are 32-bit, so the product and the remainder are exact in 64 bits.
std::vector<uint32_t> Apportion(const std::vector<uint32_t>& weights, uint32_t table_size) {
  const uint64_t total = std::accumulate(weights.begin(), weights.end(), uint64_t{0});
  std::vector<uint32_t> counts(weights.size());
  std::vector<uint64_t> remainders(weights.size());
  uint64_t assigned = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const uint64_t scaled = uint64_t{weights[i]} * table_size;
    counts[i] = static_cast<uint32_t>(scaled / total);
    remainders[i] = scaled % total;
    assigned += counts[i];
  }
  std::vector<size_t> by_remainder(weights.size());
  std::iota(by_remainder.begin(), by_remainder.end(), 0);
  std::stable_sort(by_remainder.begin(), by_remainder.end(),
                   [&](size_t a, size_t b) { return remainders[a] > remainders[b]; });
  // Fewer than n entries are left over (each quota lost less than one), so one pass suffices.
  for (size_t k = 0; assigned < table_size; ++k, ++assigned) ++counts[by_remainder[k]];
  return counts;
}

// A tiny weight can round down to zero entries, which would silently drop a live backend. Give it
// one entry taken from the backend that currently has the most (it loses the least, relatively).
// Only when there is room for everyone: with fewer entries than live backends, plain largest
// remainder decides who is left out, rather than the index order of this loop.
void GuaranteeOneEntry(const std::vector<uint32_t>& weights, uint32_t table_size,
                       std::vector<uint32_t>& counts) {
  const auto live = std::count_if(weights.begin(), weights.end(), [](uint32_t w) { return w > 0; });
  if (table_size < static_cast<uint64_t>(live)) return;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] == 0 || counts[i] > 0) continue;
    // By pigeonhole some backend holds two or more entries while another live one holds none.
    --*std::max_element(counts.begin(), counts.end());
    counts[i] = 1;
  }
}

// Places backend i's c_i entries at the ideal positions (k + 1/2) / c_i of the unit interval and
// lists all entries in position order. Every backend is then spread evenly over the table.
std::vector<uint32_t> Interleave(const std::vector<uint32_t>& counts, uint32_t table_size) {
  struct Entry {
    double position;
    uint32_t backend;
  };
  std::vector<Entry> entries;
  entries.reserve(table_size);
  for (uint32_t i = 0; i < counts.size(); ++i) {
    for (uint32_t k = 0; k < counts[i]; ++k) {
      entries.push_back({(k + 0.5) / counts[i], i});
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.position != b.position ? a.position < b.position : a.backend < b.backend;
  });
  std::vector<uint32_t> table;
  table.reserve(entries.size());
  for (const Entry& e : entries) table.push_back(e.backend);
  return table;
}

}  // namespace

std::vector<uint32_t> BuildWeightedTable(const std::vector<uint32_t>& weights,
                                         uint32_t table_size) {
  if (weights.empty() ||
      std::all_of(weights.begin(), weights.end(), [](uint32_t w) { return w == 0; })) {
    return {};
  }
  if (AllEqual(weights)) {
    std::vector<uint32_t> uniform(weights.size());
    std::iota(uniform.begin(), uniform.end(), 0);
    return uniform;
  }
  if (table_size == 0) return {};
  std::vector<uint32_t> counts = Apportion(weights, table_size);
  GuaranteeOneEntry(weights, table_size, counts);
  return Interleave(counts, table_size);
}

}  // namespace sockmesh::lb
