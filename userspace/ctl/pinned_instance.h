// SPDX-License-Identifier: Apache-2.0
// Opens the maps a running (or stopped: pins outlive the agent) datapath instance left under
// <bpffs>/sockmesh/<instance>/maps/, for sockmeshctl to read. A missing instance is reported with
// its pin path and what to do about it, since that is the first thing a new user hits.
#ifndef SOCKMESH_USERSPACE_CTL_PINNED_INSTANCE_H_
#define SOCKMESH_USERSPACE_CTL_PINNED_INSTANCE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "userspace/bpf/typed_map.h"
#include "userspace/ctl/service_dump.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::ctl {

// CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns().
uint64_t MonotonicNowNs();

// The service maps of one instance. sockmeshctl only reads them: reader() hands out const views.
struct PinnedServiceMaps {
  bpf::TypedMap<sm_svc_key, sm_svc> services;
  bpf::TypedMap<sm_be_key, sm_backend> backends;
  bpf::TypedMap<sm_lut_key, uint32_t> lut;
  bpf::TypedMap<sm_be_conn_key, uint64_t> conns;
  std::optional<bpf::TypedMap<sm_be_conn_key, sm_be_outlier>> outliers;  // absent: older agent

  ServiceMapsReader reader() const {
    return ServiceMapsReader{.services = &services,
                             .backends = &backends,
                             .lut = &lut,
                             .conns = &conns,
                             .outliers = outliers ? &*outliers : nullptr,
                             .now_ns = MonotonicNowNs()};
  }
};

// The identity maps of one instance.
struct PinnedIdentityMaps {
  bpf::TypedMap<sm_ip_identity_key, sm_identity> ips;
  bpf::TypedMap<uint64_t, sm_identity> cgroups;
};

// <bpffs_root>/sockmesh/<instance>/maps/<map>
std::string MapPinPath(const std::string& bpffs_root, const std::string& instance,
                       const std::string& map);

// NotFound (naming the pin path, the pinned instances and sockmesh-agent) when the instance
// has no pins; InvalidArgument for a malformed instance name.
absl::StatusOr<PinnedServiceMaps> OpenPinnedServiceMaps(const std::string& bpffs_root,
                                                        const std::string& instance);
absl::StatusOr<PinnedIdentityMaps> OpenPinnedIdentityMaps(const std::string& bpffs_root,
                                                          const std::string& instance);
// Any pinned map of the instance by name (agent::k*Map), with the same explanations.
absl::StatusOr<sys::UniqueFd> OpenPinnedMap(const std::string& bpffs_root,
                                            const std::string& instance, const char* map);
absl::StatusOr<sys::UniqueFd> OpenPinnedCounters(const std::string& bpffs_root,
                                                 const std::string& instance);
absl::StatusOr<sys::UniqueFd> OpenPinnedConnStats(const std::string& bpffs_root,
                                                  const std::string& instance);

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_PINNED_INSTANCE_H_
