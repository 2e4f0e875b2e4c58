// SPDX-License-Identifier: Apache-2.0
// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016): builds the per-service lookup table that the connect hook indexes with
// `hash % table_size`, so that a backend change remaps only about 1/N of the flows.
#ifndef SOCKMESH_USERSPACE_LB_MAGLEV_H_
#define SOCKMESH_USERSPACE_LB_MAGLEV_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sockmesh::lb {

struct MaglevBackend {
  // Stable identity of the backend, e.g. "127.0.0.11:8080". The backend's preference order over the
  // slots is derived from this string alone, so it must not change while the backend lives.
  std::string name;
  // Relative share of the table. 0 means "in the set but takes no new flows" (draining).
  uint32_t weight;
};

// Primes offered to operators. The paper advises a table much larger than the backend count
// (M >= 100 * N) for even load; larger tables cost kernel memory per service.
inline constexpr std::array<uint32_t, 9> kSupportedMaglevTableSizes = {
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521};
inline constexpr uint32_t kDefaultMaglevTableSize = 1021;

// True if `table_size` is one of kSupportedMaglevTableSizes.
bool IsSupportedMaglevTableSize(uint32_t table_size);

// Returns a table of `table_size` entries, each an index into `backends`.
//
// Each backend fills slots in its own permutation order, offset = h0(name) % M and
// skip = h1(name) % (M - 1) + 1, with two SipHash-2-4 keys. Weights follow Katran's weighted
// Maglev: every round each backend adds its weight to a credit and takes one turn whenever the
// credit reaches the largest weight, so turn counts (and entries) are proportional to weight.
//
// The table depends only on the set of (name, weight) pairs, not on their order in `backends`:
// turns within a round go in name order, so `backends[table[i]].name` is the same for any
// permutation of the input (the indices themselves follow the input).
//
// Errors (InvalidArgument): table_size not prime, table_size <= backends.size(), duplicate names.
// An empty `backends`, or one where every weight is 0, yields an empty table: there is nothing to
// send new connections to.
absl::StatusOr<std::vector<uint32_t>> BuildMaglevTable(const std::vector<MaglevBackend>& backends,
                                                       uint32_t table_size);

}  // namespace sockmesh::lb

#endif  // SOCKMESH_USERSPACE_LB_MAGLEV_H_
