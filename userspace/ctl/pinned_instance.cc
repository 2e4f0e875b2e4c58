// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/pinned_instance.h"

#include <time.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/agent/bpffs.h"
#include "userspace/agent/datapath.h"

namespace sockmesh::ctl {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> PinnedInstances(const std::string& bpffs_root) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(bpffs_root) / "sockmesh", ec)) {
    if (entry.is_directory(ec)) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Rewrites the NotFound of a missing pin into advice; other errors (EPERM without root, an ABI
// mismatch) already say what is wrong.
absl::Status Explain(const absl::Status& status, const std::string& bpffs_root,
                     const std::string& instance, const std::string& path) {
  if (!absl::IsNotFound(status)) return status;
  std::vector<std::string> others = PinnedInstances(bpffs_root);
  std::string found = others.empty() ? "none is pinned under this bpffs"
                                     : absl::StrCat("pinned: ", absl::StrJoin(others, ", "));
  return absl::NotFoundError(absl::StrCat(
      "no datapath instance \"", instance, "\": ", path,
      " does not exist. Start one with `sockmesh-agent --instance ", instance,
      " ...`, or pick another with --instance (", found, "; --bpffs ", bpffs_root, ")"));
}

template <typename K, typename V>
absl::StatusOr<bpf::TypedMap<K, V>> OpenMap(const std::string& bpffs_root,
                                            const std::string& instance, const char* name) {
  std::string path = MapPinPath(bpffs_root, instance, name);
  absl::StatusOr<bpf::TypedMap<K, V>> map = bpf::TypedMap<K, V>::FromPinned(path);
  if (!map.ok()) return Explain(map.status(), bpffs_root, instance, path);
  return map;
}

}  // namespace

uint64_t MonotonicNowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string MapPinPath(const std::string& bpffs_root, const std::string& instance,
                       const std::string& map) {
  return absl::StrCat(agent::MakePinLayout(bpffs_root, instance).maps_dir, "/", map);
}

absl::StatusOr<PinnedServiceMaps> OpenPinnedServiceMaps(const std::string& bpffs_root,
                                                        const std::string& instance) {
  // Also keeps "../" out of the path built from it.
  if (absl::Status s = agent::ValidateInstanceName(instance); !s.ok()) return s;
  auto services = OpenMap<sm_svc_key, sm_svc>(bpffs_root, instance, agent::kServicesMap);
  if (!services.ok()) return services.status();
  auto backends = OpenMap<sm_be_key, sm_backend>(bpffs_root, instance, agent::kBackendsMap);
  if (!backends.ok()) return backends.status();
  auto lut = OpenMap<sm_lut_key, uint32_t>(bpffs_root, instance, agent::kLutMap);
  if (!lut.ok()) return lut.status();
  auto conns = OpenMap<sm_be_conn_key, uint64_t>(bpffs_root, instance, agent::kBackendConnsMap);
  if (!conns.ok()) return conns.status();
  PinnedServiceMaps maps{.services = *std::move(services),
                         .backends = *std::move(backends),
                         .lut = *std::move(lut),
                         .conns = *std::move(conns)};
  auto outliers = bpf::TypedMap<sm_be_conn_key, sm_be_outlier>::FromPinned(
      MapPinPath(bpffs_root, instance, agent::kBackendOutlierMap));
  if (outliers.ok()) maps.outliers = *std::move(outliers);
  return maps;
}

absl::StatusOr<PinnedIdentityMaps> OpenPinnedIdentityMaps(const std::string& bpffs_root,
                                                          const std::string& instance) {
  if (absl::Status s = agent::ValidateInstanceName(instance); !s.ok()) return s;
  auto ips = OpenMap<sm_ip_identity_key, sm_identity>(bpffs_root, instance, agent::kIpIdentityMap);
  if (!ips.ok()) return ips.status();
  auto cgroups = OpenMap<uint64_t, sm_identity>(bpffs_root, instance, agent::kCgroupIdentityMap);
  if (!cgroups.ok()) return cgroups.status();
  return PinnedIdentityMaps{.ips = *std::move(ips), .cgroups = *std::move(cgroups)};
}

absl::StatusOr<sys::UniqueFd> OpenPinnedMap(const std::string& bpffs_root,
                                            const std::string& instance, const char* map) {
  if (absl::Status s = agent::ValidateInstanceName(instance); !s.ok()) return s;
  std::string path = MapPinPath(bpffs_root, instance, map);
  absl::StatusOr<sys::UniqueFd> fd = bpf::OpenPinned(path);
  if (!fd.ok()) return Explain(fd.status(), bpffs_root, instance, path);
  return fd;
}

absl::StatusOr<sys::UniqueFd> OpenPinnedCounters(const std::string& bpffs_root,
                                                 const std::string& instance) {
  return OpenPinnedMap(bpffs_root, instance, agent::kCountersMap);
}

absl::StatusOr<sys::UniqueFd> OpenPinnedConnStats(const std::string& bpffs_root,
                                                  const std::string& instance) {
  return OpenPinnedMap(bpffs_root, instance, agent::kConnStatsMap);
}

}  // namespace sockmesh::ctl
