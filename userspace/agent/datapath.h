// SPDX-License-Identifier: Apache-2.0
// The loaded socket load balancer: BPF programs attached to one cgroup, maps pinned so that the
// datapath outlives the agent. Starting again adopts what is pinned: maps are reused with their
// contents, and pinned links get the new programs atomically (the cgroup is never left without).
#ifndef SOCKMESH_USERSPACE_AGENT_DATAPATH_H_
#define SOCKMESH_USERSPACE_AGENT_DATAPATH_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/agent/bpffs.h"
#include "userspace/bpf/typed_map.h"

struct sm_sock_lb;
struct bpf_link;

namespace sockmesh::agent {

// Map capacities. 0 keeps the size of an already pinned map, or the built-in default.
struct MapSizes {
  uint32_t services = 0;
  uint32_t backends = 0;
  uint32_t lut = 0;
  uint32_t affinity = 0;
  uint32_t revnat = 0;
};

struct DatapathOptions {
  std::string bpffs_root = "/sys/fs/bpf";
  std::string instance = "default";
  std::string cgroup_path;  // absolute cgroup v2 directory; must exist
  MapSizes sizes;
};

// Typed views of the pinned maps. They borrow the skeleton's fds: the Datapath owns them.
struct DatapathMaps {
  bpf::TypedMap<sm_svc_key, sm_svc> services;
  bpf::TypedMap<sm_be_key, sm_backend> backends;
  bpf::TypedMap<sm_lut_key, uint32_t> lut;
  bpf::TypedMap<sm_aff_key, sm_aff_val> affinity;
  bpf::TypedMap<sm_revnat_key, sm_revnat_val> revnat;
  int counters_fd = -1;
};

struct AttachReport {
  std::vector<std::string> attached;  // programs attached fresh
  std::vector<std::string> adopted;   // pinned links that now run the new program
  std::vector<std::string> reused_maps;
};

class Datapath {
 public:
  static absl::StatusOr<std::unique_ptr<Datapath>> Start(const DatapathOptions& options);
  ~Datapath();  // closes fds only; pins keep the datapath running
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  DatapathMaps& maps() { return *maps_; }
  const AttachReport& report() const { return report_; }
  size_t programs_attached() const { return links_.size(); }
  // SM_CNT_* counters summed over CPUs.
  absl::StatusOr<std::vector<uint64_t>> ReadCounters() const;

 private:
  struct SkeletonDeleter {
    void operator()(sm_sock_lb* skel) const;
  };
  struct LinkDeleter {
    void operator()(bpf_link* link) const;
  };
  using SkeletonPtr = std::unique_ptr<sm_sock_lb, SkeletonDeleter>;
  using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

  Datapath() = default;
  absl::Status Load(const DatapathOptions& options, const PinLayout& layout);
  absl::Status AttachAll(const DatapathOptions& options, const PinLayout& layout);

  SkeletonPtr skel_;
  std::vector<LinkPtr> links_;
  std::unique_ptr<DatapathMaps> maps_;
  AttachReport report_;
};

// Detaches every program of the instance and removes its pins (sockmesh-agent --cleanup).
absl::Status CleanupInstance(const std::string& bpffs_root, const std::string& instance);

// Names of the maps and programs, as pinned (for sockmeshctl and tests).
inline constexpr char kServicesMap[] = "sm_svc_v1";
inline constexpr char kBackendsMap[] = "sm_be_v1";
inline constexpr char kLutMap[] = "sm_lut_v1";
inline constexpr char kAffinityMap[] = "sm_aff_v1";
inline constexpr char kRevNatMap[] = "sm_revnat_v1";
inline constexpr char kCountersMap[] = "sm_counters_v1";

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_DATAPATH_H_
