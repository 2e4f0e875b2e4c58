// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_TESTS_SUPPORT_FAKE_MAP_H_
#define SOCKMESH_TESTS_SUPPORT_FAKE_MAP_H_

#include <array>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "userspace/bpf/map_interface.h"

namespace sockmesh::testing {

// An in-memory BPF hash map with the kernel's error codes: ResourceExhausted when full, NotFound
// for a missing key. Counts the calls so tests can assert that only differences were written;
// `on_lookup` lets a test change the map between a dump and a later lookup, as a concurrent writer
// would.
template <typename K, typename V>
class FakeMap final : public bpf::MapInterface<K, V> {
 public:
  explicit FakeMap(std::string name, uint32_t max_entries = 1 << 20)
      : name_(std::move(name)), max_(max_entries) {}

  const std::string& name() const override { return name_; }
  uint32_t max_entries() const override { return max_; }

  absl::StatusOr<V> Lookup(const K& key) const override {
    if (on_lookup) on_lookup();
    auto it = entries_.find(Bytes(key));
    if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("map ", name_, " lookup"));
    return it->second.second;
  }
  absl::Status Update(const K& key, const V& value) override {
    ++updates;
    auto bytes = Bytes(key);
    if (!entries_.contains(bytes) && entries_.size() >= max_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("map ", name_, " update: Argument list too long"));
    }
    entries_[bytes] = {key, value};
    return absl::OkStatus();
  }
  absl::Status Delete(const K& key) override {
    ++deletes;
    if (entries_.erase(Bytes(key)) == 0) {
      return absl::NotFoundError(absl::StrCat("map ", name_, " delete"));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::pair<K, V>>> Dump() const override {
    std::vector<std::pair<K, V>> out;
    for (const auto& [bytes, kv] : entries_) out.push_back(kv);
    return out;
  }

  size_t size() const { return entries_.size(); }
  void ResetCounts() { updates = deletes = 0; }

  int updates = 0;
  int deletes = 0;
  std::function<void()> on_lookup;

 private:
  static std::array<char, sizeof(K)> Bytes(const K& key) {
    std::array<char, sizeof(K)> b;
    std::memcpy(b.data(), &key, sizeof(K));
    return b;
  }

  std::string name_;
  uint32_t max_;
  std::map<std::array<char, sizeof(K)>, std::pair<K, V>> entries_;
};

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_FAKE_MAP_H_
