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
#include "userspace/agent/map_sync.h"
#include "userspace/bpf/typed_map.h"

struct sm_sock_lb;
struct sm_short_circuit;
struct bpf_link;
struct bpf_program;

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
  // Same-node short-circuit (sm_short_circuit: sockops + sk_msg). When false it is not loaded, and
  // whatever an earlier run of this instance attached is detached.
  bool short_circuit = false;
};

// Typed views of the pinned maps. They borrow the skeleton's fds: the Datapath owns them.
struct DatapathMaps {
  bpf::TypedMap<sm_svc_key, sm_svc> services;
  bpf::TypedMap<sm_be_key, sm_backend> backends;
  bpf::TypedMap<sm_lut_key, uint32_t> lut;
  bpf::TypedMap<sm_aff_key, sm_aff_val> affinity;
  bpf::TypedMap<sm_revnat_key, sm_revnat_val> revnat;
  bpf::TypedMap<sm_be_conn_key, uint64_t> conns;
  bpf::TypedMap<sm_ip_identity_key, sm_identity> ip_identity;
  bpf::TypedMap<uint64_t, sm_identity> cgroup_identity;
  bpf::TypedMap<sm_policy_row_key, sm_policy_row> policy_rows;
  bpf::TypedMap<sm_ip_identity_key, sm_policy_endpoint> ip_policy_endpoint;
  bpf::TypedMap<uint64_t, sm_policy_endpoint> cgroup_policy_endpoint;
  int policy_decisions_fd = -1;  // sm_policy_decisions_v1 (per-CPU hash, read by metrics)
  int policy_denials_fd = -1;    // sm_policy_denials_v1 (ring buffer)
  bpf::TypedMap<uint32_t, sm_outlier_cfg> outlier_config;
  bpf::TypedMap<sm_be_conn_key, sm_be_outlier> outliers;
  bpf::TypedMap<uint32_t, sm_svc_ejections> ejections;
  bpf::TypedMap<uint32_t, uint32_t> flow_gate;  // sm_flow_gate_v1, key 0: SM_FLOW_GATE_*
  int counters_fd = -1;
  int conn_stats_fd = -1;  // sm_conn_stats_v1 (per-CPU hash, read by metrics)
};

// The maps MapSync writes, borrowed from `m`.
ServiceMaps ServiceMapsOf(DatapathMaps& m);

struct AttachReport {
  std::vector<std::string> attached;  // programs attached fresh
  std::vector<std::string> adopted;   // pinned links that now run the new program
  // Pinned links of programs this build no longer has (an upgrade), detached and unpinned.
  std::vector<std::string> removed;
  std::vector<std::string> reused_maps;
  // --no-short-circuit found and detached the short-circuit of an earlier run.
  bool short_circuit_detached = false;
};

class Datapath {
 public:
  static absl::StatusOr<std::unique_ptr<Datapath>> Start(const DatapathOptions& options);
  ~Datapath();  // closes fds only; pins keep the datapath running
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  DatapathMaps& maps() { return *maps_; }
  // Read-only views for the metrics server's thread.
  const bpf::TypedMap<sm_svc_key, sm_svc>& services_map() const { return maps_->services; }
  int conn_stats_fd() const { return maps_->conn_stats_fd; }
  std::string maps_dir() const { return MakePinLayout(bpffs_root_, instance_).maps_dir; }
  const AttachReport& report() const { return report_; }
  size_t programs_attached() const { return links_.size() + (sc_skel_ ? 1 : 0); }
  // The load balancer's programs (every program of its object; Start() attached them all), and
  // how many of them are attached to the cgroup now, asked of the kernel: a link detached behind
  // the agent's back (`sockmesh-agent --cleanup` of the instance) no longer names a cgroup.
  size_t load_balancer_programs() const { return links_.size(); }
  absl::StatusOr<size_t> LoadBalancerProgramsAttached() const;
  // SM_CNT_* counters summed over CPUs.
  absl::StatusOr<std::vector<uint64_t>> ReadCounters() const;

  bool short_circuit_attached() const { return sc_skel_ != nullptr; }
  // The sockhash of the short-circuit, -1 when it is not attached (tests iterate it).
  int sock_pairs_fd() const;
  // Detaches the short-circuit and removes its pins (the start-up probe failed).
  absl::Status DisableShortCircuit();

 private:
  struct SkeletonDeleter {
    void operator()(sm_sock_lb* skel) const;
    void operator()(sm_short_circuit* skel) const;
  };
  struct LinkDeleter {
    void operator()(bpf_link* link) const;
  };
  using SkeletonPtr = std::unique_ptr<sm_sock_lb, SkeletonDeleter>;
  using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;
  using ShortCircuitPtr = std::unique_ptr<sm_short_circuit, SkeletonDeleter>;

  Datapath() = default;
  absl::Status Load(const DatapathOptions& options, const PinLayout& layout);
  absl::Status AttachAll(const DatapathOptions& options, const PinLayout& layout);
  // Detaches and unpins the links in links/ that are neither this object's programs nor the
  // short-circuit's, once AttachAll() has attached their replacements.
  absl::Status RemoveStaleLinks(const PinLayout& layout);
  absl::Status StartShortCircuit(const DatapathOptions& options, const PinLayout& layout);
  // Attaches `prog` to the cgroup through a link pinned in links/, or adopts the pinned link.
  absl::StatusOr<LinkPtr> AttachCgroupProgram(bpf_program* prog, const DatapathOptions& options,
                                              const PinLayout& layout, int cgroup_fd,
                                              uint64_t cgroup_id);

  std::string bpffs_root_;
  std::string instance_;
  SkeletonPtr skel_;
  std::vector<LinkPtr> links_;
  ShortCircuitPtr sc_skel_;
  LinkPtr sc_link_;
  std::unique_ptr<DatapathMaps> maps_;
  AttachReport report_;
};

// Detaches every program of the instance and removes its pins (sockmesh-agent --cleanup).
absl::Status CleanupInstance(const std::string& bpffs_root, const std::string& instance);

// Detaches a pinned short-circuit of the instance (sockops link and the sk_msg program on the
// sockhash) and removes those pins. Returns whether there was anything to detach.
absl::StatusOr<bool> DetachShortCircuit(const std::string& bpffs_root, const std::string& instance);

// Names of the maps and programs, as pinned (for sockmeshctl and tests).
inline constexpr char kServicesMap[] = "sm_svc_v1";
inline constexpr char kBackendsMap[] = "sm_be_v1";
inline constexpr char kLutMap[] = "sm_lut_v1";
inline constexpr char kAffinityMap[] = "sm_aff_v1";
inline constexpr char kRevNatMap[] = "sm_revnat_v1";
inline constexpr char kBackendConnsMap[] = "sm_be_conns_v1";
inline constexpr char kCountersMap[] = "sm_counters_v1";
inline constexpr char kIpIdentityMap[] = "sm_ip_identity_v1";
inline constexpr char kCgroupIdentityMap[] = "sm_cgroup_identity_v1";
inline constexpr char kSockPairsMap[] = "sm_sock_pairs_v1";
inline constexpr char kConnStatsMap[] = "sm_conn_stats_v1";
inline constexpr char kPolicyRowsMap[] = "sm_policy_rows_v1";
inline constexpr char kIpPolicyEndpointMap[] = "sm_ip_policy_endpoint_v1";
inline constexpr char kCgroupPolicyEndpointMap[] = "sm_cgroup_policy_endpoint_v1";
inline constexpr char kPolicyDecisionsMap[] = "sm_policy_decisions_v1";
inline constexpr char kFlowIdentityMap[] = "sm_flow_identity_v1";
inline constexpr char kPolicyDenialsMap[] = "sm_policy_denials_v1";
inline constexpr char kOutlierConfigMap[] = "sm_outlier_cfg_v1";
inline constexpr char kBackendOutlierMap[] = "sm_be_outlier_v1";
inline constexpr char kServiceEjectionsMap[] = "sm_svc_ejected_v1";
inline constexpr char kSockopsLink[] = "sm_sockops";

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_DATAPATH_H_
