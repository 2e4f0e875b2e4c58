// SPDX-License-Identifier: Apache-2.0
#include "userspace/lb/weighted_table.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockmesh::lb {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<uint32_t> Counts(const std::vector<uint32_t>& table, size_t n) {
  std::vector<uint32_t> counts(n);
  for (uint32_t entry : table) ++counts.at(entry);
  return counts;
}

// Longest run of consecutive equal entries, reading the table as a ring (random % size wraps).
int LongestRun(const std::vector<uint32_t>& table, uint32_t backend) {
  int longest = 0;
  int run = 0;
  for (size_t i = 0; i < 2 * table.size(); ++i) {
    run = table[i % table.size()] == backend ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return std::min<int>(longest, table.size());
}

TEST(WeightedTableTest, EmptyOrAllZeroWeightsGiveEmptyTable) {
  EXPECT_THAT(BuildWeightedTable({}, 100), IsEmpty());
  EXPECT_THAT(BuildWeightedTable({0, 0, 0}, 100), IsEmpty());
}

// The documented uniform fast path: [0..n-1], regardless of the requested size.
TEST(WeightedTableTest, EqualWeightsGivePlainIndexTable) {
  EXPECT_THAT(BuildWeightedTable({7}, 1000), ElementsAre(0));
  EXPECT_THAT(BuildWeightedTable({3, 3, 3, 3}, 1000), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(BuildWeightedTable({1, 1}, 0), ElementsAre(0, 1));
}

TEST(WeightedTableTest, UnequalWeightsWithZeroSizeGiveEmptyTable) {
  EXPECT_THAT(BuildWeightedTable({1, 2}, 0), IsEmpty());
}

TEST(WeightedTableTest, LargestRemainderApportionment) {
  // Quotas 1.4, 2.1, 3.5: floors 1, 2, 3 and the leftover entry to the largest fraction (.5).
  EXPECT_THAT(Counts(BuildWeightedTable({2, 3, 5}, 7), 3), ElementsAre(1, 2, 4));
  // Quotas 3.33 each would be equal weights; with 1, 1, 2 over 10: 2.5, 2.5, 5. Tie goes to the
  // lower index.
  EXPECT_THAT(Counts(BuildWeightedTable({1, 1, 2}, 11), 3), ElementsAre(3, 3, 5));
}

TEST(WeightedTableTest, ZeroWeightGetsNoEntries) {
  EXPECT_THAT(Counts(BuildWeightedTable({0, 1, 2}, 300), 3), ElementsAre(0, 100, 200));
}

TEST(WeightedTableTest, EveryPositiveWeightGetsAtLeastOneEntry) {
  EXPECT_THAT(Counts(BuildWeightedTable({1000000, 1}, 100), 2), ElementsAre(99, 1));
  EXPECT_THAT(Counts(BuildWeightedTable({1, 1, 1000000}, 3), 3), ElementsAre(1, 1, 1));
  EXPECT_THAT(Counts(BuildWeightedTable({1, 4000000000u, 2, 0}, 50), 4), ElementsAre(1, 48, 1, 0));
}

// With fewer entries than live backends, plain largest remainder decides.
TEST(WeightedTableTest, TooSmallTableCannotHoldEveryone) {
  EXPECT_THAT(Counts(BuildWeightedTable({1, 1000, 2}, 2), 3), ElementsAre(0, 2, 0));
  EXPECT_THAT(Counts(BuildWeightedTable({3, 1, 2}, 2), 3), ElementsAre(1, 0, 1));
}

TEST(WeightedTableTest, ProportionsWithinOnePercent) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> weight(1, 1000);
  for (uint32_t table_size : {1021u, 4093u, 16381u, 65521u}) {
    for (int trial = 0; trial < 10; ++trial) {
      std::vector<uint32_t> weights(2 + trial * 3);
      for (uint32_t& w : weights) w = weight(rng);
      weights[0] += 1;  // Never all equal.
      const std::vector<uint32_t> table = BuildWeightedTable(weights, table_size);
      ASSERT_EQ(table.size(), table_size);
      const std::vector<uint32_t> counts = Counts(table, weights.size());
      const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
      for (size_t i = 0; i < weights.size(); ++i) {
        const double quota = weights[i] * table_size / total;
        // Largest remainder lands within one entry of the exact quota; the minimum-one guarantee
        // can take one more from the richest backend when a tiny weight rounds to zero.
        EXPECT_LT(std::abs(counts[i] - quota), 2.0) << "M=" << table_size << " i=" << i;
        EXPECT_NEAR(counts[i] / static_cast<double>(table_size), weights[i] / total, 0.01);
      }
    }
  }
}

TEST(WeightedTableTest, EntriesAreInterleavedNotInRuns) {
  // 3:1 — the light backend never repeats, the heavy one at most three in a row.
  const std::vector<uint32_t> table = BuildWeightedTable({1, 3}, 1000);
  EXPECT_EQ(LongestRun(table, 0), 1);
  EXPECT_LE(LongestRun(table, 1), 3);
  EXPECT_THAT(std::vector<uint32_t>(table.begin(), table.begin() + 8),
              ElementsAre(1, 0, 1, 1, 1, 0, 1, 1));
}

TEST(WeightedTableTest, EveryBackendIsSpreadOverTheWholeTable) {
  const std::vector<uint32_t> weights = {5, 1, 17, 3, 9, 2, 40};
  const uint32_t table_size = 4093;
  const std::vector<uint32_t> table = BuildWeightedTable(weights, table_size);
  const std::vector<uint32_t> counts = Counts(table, weights.size());
  for (uint32_t b = 0; b < weights.size(); ++b) {
    // Largest gap between consecutive entries of b (cyclic) stays near the ideal spacing M / c_b.
    std::vector<size_t> positions;
    for (size_t i = 0; i < table.size(); ++i) {
      if (table[i] == b) positions.push_back(i);
    }
    size_t largest_gap = positions.front() + table_size - positions.back();
    for (size_t i = 1; i < positions.size(); ++i) {
      largest_gap = std::max(largest_gap, positions[i] - positions[i - 1]);
    }
    const double ideal = static_cast<double>(table_size) / counts[b];
    EXPECT_LE(largest_gap, ideal + weights.size()) << "backend " << b;
  }
}

TEST(WeightedTableTest, Deterministic) {
  const std::vector<uint32_t> weights = {10, 20, 30, 1};
  EXPECT_EQ(BuildWeightedTable(weights, 16381), BuildWeightedTable(weights, 16381));
}

}  // namespace
}  // namespace sockmesh::lb
