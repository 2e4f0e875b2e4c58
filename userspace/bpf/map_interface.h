// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_USERSPACE_BPF_MAP_INTERFACE_H_
#define SOCKMESH_USERSPACE_BPF_MAP_INTERFACE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sockmesh::bpf {

// What map synchronisation needs from a BPF hash map. TypedMap implements it over a kernel map;
// tests implement it in memory (tests/support/fake_map.h) with the same error codes.
template <typename K, typename V>
class MapInterface {
 public:
  virtual ~MapInterface() = default;
  virtual const std::string& name() const = 0;
  virtual uint32_t max_entries() const = 0;
  // NotFound when absent.
  virtual absl::StatusOr<V> Lookup(const K& key) const = 0;
  // ResourceExhausted when the map is full.
  virtual absl::Status Update(const K& key, const V& value) = 0;
  // NotFound when absent.
  virtual absl::Status Delete(const K& key) = 0;
  // Every entry. Entries written concurrently may or may not appear.
  virtual absl::StatusOr<std::vector<std::pair<K, V>>> Dump() const = 0;
};

}  // namespace sockmesh::bpf

#endif  // SOCKMESH_USERSPACE_BPF_MAP_INTERFACE_H_
