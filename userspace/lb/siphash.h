// SPDX-License-Identifier: Apache-2.0
// SipHash-2-4 (Aumasson & Bernstein, 2012): a keyed 64-bit hash with a fixed specification.
//
// Backend tables are rebuilt by every agent process (after restarts and upgrades) and must come out
// identical each time, or established affinity is lost. absl::Hash and std::hash are salted or
// unspecified across builds, so table construction hashes with this instead.
#ifndef SOCKMESH_USERSPACE_LB_SIPHASH_H_
#define SOCKMESH_USERSPACE_LB_SIPHASH_H_

#include <cstdint>
#include <string_view>

namespace sockmesh::lb {

// The 128-bit key as two 64-bit words: k0 holds key bytes 0..7, k1 bytes 8..15, both little-endian,
// as in the reference implementation.
struct SipHashKey {
  uint64_t k0;
  uint64_t k1;
};

// SipHash-2-4 of `data`. The message is read as little-endian words on every host, so the result
// does not depend on the machine's byte order.
uint64_t SipHash24(const SipHashKey& key, std::string_view data);

}  // namespace sockmesh::lb

#endif  // SOCKMESH_USERSPACE_LB_SIPHASH_H_
