// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_USERSPACE_BPF_TYPED_MAP_H_
#define SOCKMESH_USERSPACE_BPF_TYPED_MAP_H_

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "userspace/bpf/abi.h"
#include "userspace/bpf/map_interface.h"
#include "userspace/sys/errno_status.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::bpf {

// Facts about a map fd, read from the kernel.
struct MapInfo {
  std::string name;
  uint32_t type = 0;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
};
absl::StatusOr<MapInfo> GetMapInfo(int fd);

// Opens a pinned object (map or link) by path.
absl::StatusOr<sys::UniqueFd> OpenPinned(const std::string& path);

// A BPF map with its key and value types checked against the kernel's idea of their sizes. Either
// borrows the fd of a skeleton's map (the skeleton must outlive it) or owns an fd opened from a
// pin.
template <typename K, typename V>
class TypedMap final : public MapInterface<K, V> {
  static_assert(kAbiSafe<K>, "map keys must be ABI structs or integers");

 public:
  static absl::StatusOr<TypedMap> FromSkeleton(const struct bpf_map* map) {
    int fd = bpf_map__fd(map);
    if (fd < 0)
      return sys::ErrnoToStatus(fd, absl::StrCat("map ", bpf_map__name(map), " is not loaded"));
    return FromFd(fd, /*owned=*/false);
  }
  static absl::StatusOr<TypedMap> FromPinned(const std::string& path) {
    absl::StatusOr<sys::UniqueFd> fd = OpenPinned(path);
    if (!fd.ok()) return fd.status();
    return FromFd(fd->Release(), /*owned=*/true);
  }

  TypedMap(TypedMap&&) noexcept = default;
  TypedMap& operator=(TypedMap&&) noexcept = default;

  int fd() const { return fd_; }
  const std::string& name() const override { return info_.name; }
  uint32_t max_entries() const override { return info_.max_entries; }

  absl::StatusOr<V> Lookup(const K& key) const override {
    V value{};
    if (bpf_map_lookup_elem(fd_, &key, &value) != 0) return Error("lookup");
    return value;
  }
  absl::Status Update(const K& key, const V& value) override {
    if (bpf_map_update_elem(fd_, &key, &value, BPF_ANY) != 0) return Error("update");
    return absl::OkStatus();
  }
  absl::Status Delete(const K& key) override {
    if (bpf_map_delete_elem(fd_, &key) != 0) return Error("delete");
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::pair<K, V>>> Dump() const override {
    std::vector<std::pair<K, V>> out;
    K key{};
    K next{};
    const K* prev = nullptr;
    while (bpf_map_get_next_key(fd_, prev, &next) == 0) {
      V value{};
      // An entry deleted between the two calls is simply skipped.
      if (bpf_map_lookup_elem(fd_, &next, &value) == 0) out.emplace_back(next, value);
      key = next;
      prev = &key;
    }
    if (errno != ENOENT) return Error("iterate");
    return out;
  }

 private:
  TypedMap(int fd, std::shared_ptr<sys::UniqueFd> owner, MapInfo info)
      : fd_(fd), owner_(std::move(owner)), info_(std::move(info)) {}

  static absl::StatusOr<TypedMap> FromFd(int fd, bool owned) {
    auto owner = owned ? std::make_shared<sys::UniqueFd>(fd) : nullptr;
    absl::StatusOr<MapInfo> info = GetMapInfo(fd);
    if (!info.ok()) return info.status();
    if (info->key_size != sizeof(K) || info->value_size != sizeof(V)) {
      return absl::FailedPreconditionError(
          absl::StrCat("map ", info->name, ": kernel has key/value size ", info->key_size, "/",
                       info->value_size, ", this binary expects ", sizeof(K), "/", sizeof(V),
                       " (ABI version mismatch; run sockmesh-agent --cleanup)"));
    }
    return TypedMap(fd, std::move(owner), *std::move(info));
  }

  absl::Status Error(absl::string_view op) const {
    return sys::ErrnoToStatus(errno, absl::StrCat("map ", info_.name, " ", op));
  }

  int fd_ = -1;
  std::shared_ptr<sys::UniqueFd> owner_;  // null when borrowed from a skeleton
  MapInfo info_;
};

// Entries in a hash-like map (hash, LRU, per-CPU hash, sockhash), by walking its keys.
absl::StatusOr<uint64_t> CountMapEntries(int fd, uint32_t key_size);

// Sums a per-CPU array of __u64 counters.
absl::StatusOr<std::vector<uint64_t>> ReadPerCpuCounters(int fd, uint32_t count);

}  // namespace sockmesh::bpf

#endif  // SOCKMESH_USERSPACE_BPF_TYPED_MAP_H_
