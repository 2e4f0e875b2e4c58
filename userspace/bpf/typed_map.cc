// SPDX-License-Identifier: Apache-2.0
#include "userspace/bpf/typed_map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <vector>

namespace sockmesh::bpf {

absl::StatusOr<MapInfo> GetMapInfo(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return sys::ErrnoToStatus(errno, "map info");
  return MapInfo{.name = info.name,
                 .type = info.type,
                 .key_size = info.key_size,
                 .value_size = info.value_size,
                 .max_entries = info.max_entries};
}

absl::StatusOr<sys::UniqueFd> OpenPinned(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return sys::ErrnoToStatus(errno, absl::StrCat("open pinned ", path));
  return sys::UniqueFd(fd);
}

absl::StatusOr<uint64_t> CountMapEntries(int fd, uint32_t key_size) {
  std::vector<uint8_t> key(key_size);
  std::vector<uint8_t> next(key_size);
  const void* prev = nullptr;
  uint64_t n = 0;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    ++n;
    key.swap(next);
    prev = key.data();
  }
  if (errno != ENOENT) return sys::ErrnoToStatus(errno, "iterate map keys");
  return n;
}

absl::StatusOr<std::vector<uint64_t>> ReadPerCpuCounters(int fd, uint32_t count) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return sys::ErrnoToStatus(cpus, "count possible CPUs");
  std::vector<uint64_t> totals(count, 0);
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  for (uint32_t i = 0; i < count; ++i) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0) {
      return sys::ErrnoToStatus(errno, absl::StrCat("read counter ", i));
    }
    for (uint64_t v : per_cpu) totals[i] += v;
  }
  return totals;
}

}  // namespace sockmesh::bpf
