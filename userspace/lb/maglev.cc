// SPDX-License-Identifier: Apache-2.0
#include "userspace/lb/maglev.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "userspace/lb/siphash.h"

namespace sockmesh::lb {
namespace {

// Fixed forever: changing either key reshuffles every table on upgrade and breaks the affinity of
// every live flow. The golden test in maglev_test.cc pins them.
constexpr SipHashKey kOffsetKey = {0x736f636b6d657368ULL, 0x6d61676c65762d30ULL};
constexpr SipHashKey kSkipKey = {0x736f636b6d657368ULL, 0x6d61676c65762d31ULL};

constexpr uint32_t kEmptySlot = std::numeric_limits<uint32_t>::max();

bool IsPrime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint64_t d = 3; d * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

absl::Status ValidateTableSize(uint32_t table_size, size_t backend_count) {
  if (!IsPrime(table_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Maglev table size ", table_size, " is not prime"));
  }
  if (table_size <= backend_count) {
    return absl::InvalidArgumentError(absl::StrCat("Maglev table size ", table_size,
                                                   " must be larger than the number of backends (",
                                                   backend_count, ")"));
  }
  return absl::OkStatus();
}

// Indices of the backends that take turns, sorted by name. Sorting is what makes the table
// independent of input order; equal names would make it depend on order again, so they are errors.
absl::StatusOr<std::vector<uint32_t>> TurnOrder(const std::vector<MaglevBackend>& backends) {
  std::vector<uint32_t> order;
  for (uint32_t i = 0; i < backends.size(); ++i) order.push_back(i);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return backends[a].name < backends[b].name; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (backends[order[i]].name == backends[order[i - 1]].name) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate Maglev backend name \"", backends[order[i]].name, "\""));
    }
  }
  std::erase_if(order, [&](uint32_t i) { return backends[i].weight == 0; });
  return order;
}

// One backend's walk through its permutation of the slots, plus its weight credit.
struct Cursor {
  uint32_t backend;
  uint32_t weight;
  uint64_t position;
  uint64_t skip;
  uint64_t credit = 0;
};

Cursor MakeCursor(const MaglevBackend& backend, uint32_t index, uint32_t table_size) {
  const uint64_t offset = SipHash24(kOffsetKey, backend.name) % table_size;
  // skip in [1, M-1] is coprime with the prime M, so the walk visits every slot exactly once.
  const uint64_t skip = SipHash24(kSkipKey, backend.name) % (table_size - 1) + 1;
  return Cursor{index, backend.weight, offset, skip};
}

// Claims the cursor's next preferred slot that is still free. Terminates because the walk covers
// all slots and the caller only asks while some slot is free.
void ClaimNextFreeSlot(Cursor& cursor, std::vector<uint32_t>& table) {
  while (table[cursor.position] != kEmptySlot) {
    cursor.position = (cursor.position + cursor.skip) % table.size();
  }
  table[cursor.position] = cursor.backend;
}

}  // namespace

bool IsSupportedMaglevTableSize(uint32_t table_size) {
  return std::find(kSupportedMaglevTableSizes.begin(), kSupportedMaglevTableSizes.end(),
                   table_size) != kSupportedMaglevTableSizes.end();
}

absl::StatusOr<std::vector<uint32_t>> BuildMaglevTable(const std::vector<MaglevBackend>& backends,
                                                       uint32_t table_size) {
  if (absl::Status s = ValidateTableSize(table_size, backends.size()); !s.ok()) return s;
  absl::StatusOr<std::vector<uint32_t>> order = TurnOrder(backends);
  if (!order.ok()) return order.status();
  if (order->empty()) return std::vector<uint32_t>{};

  std::vector<Cursor> cursors;
  uint32_t max_weight = 0;
  for (uint32_t i : *order) {
    cursors.push_back(MakeCursor(backends[i], i, table_size));
    max_weight = std::max(max_weight, backends[i].weight);
  }

  std::vector<uint32_t> table(table_size, kEmptySlot);
  uint32_t filled = 0;
  // Every round the heaviest backend takes a turn, so this ends within table_size rounds.
  while (true) {
    for (Cursor& cursor : cursors) {
      cursor.credit += cursor.weight;
      if (cursor.credit < max_weight) continue;
      cursor.credit -= max_weight;
      ClaimNextFreeSlot(cursor, table);
      if (++filled == table_size) return table;
    }
  }
}

}  // namespace sockmesh::lb
