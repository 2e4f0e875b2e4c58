// SPDX-License-Identifier: Apache-2.0
// The one place that turns the model (control_plane/model) into kernel ABI structs and back. No
// other code fills an sm_* struct by hand.
#ifndef SOCKMESH_USERSPACE_AGENT_ABI_CONVERSION_H_
#define SOCKMESH_USERSPACE_AGENT_ABI_CONVERSION_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "userspace/bpf/abi.h"

namespace sockmesh::agent {

sm_svc_key ToSvcKey(const model::Frontend& frontend);
absl::StatusOr<model::Frontend> FromSvcKey(const sm_svc_key& key);

sm_backend ToAbiBackend(const model::Backend& backend);
absl::StatusOr<model::Backend> FromAbiBackend(const sm_backend& backend);

sm_ip_identity_key ToIpIdentityKey(const model::IpAddress& ip);
absl::StatusOr<model::IpAddress> FromIpIdentityKey(const sm_ip_identity_key& key);
sm_identity ToAbiIdentity(uint32_t identity, bool local);

// A policy row's key under kernel set `set_id`. `prefix` (family 0 = none) is a source prefix of
// `prefix_len` bits; IPv4 is stored IPv4-mapped, so its length grows by 96 bits.
sm_policy_row_key ToPolicyRowKey(uint32_t set_id, uint32_t source_identity, uint16_t port,
                                 const model::IpAddress& prefix, uint32_t prefix_len);
sm_policy_row ToAbiPolicyRow(uint32_t deny_policy_id, uint32_t allow_policy_id,
                             uint32_t audit_policy_id);
sm_policy_endpoint ToAbiPolicyEndpoint(uint32_t endpoint_id, uint32_t set_id, bool has_allow,
                                       bool source_address_dependent);

uint8_t ToAbiAlgorithm(model::LbAlgorithm algorithm);

// A service's outlier detection as sm_outlier_cfg_v1 holds it; nullopt when it is off.
std::optional<sm_outlier_cfg> ToAbiOutlierConfig(const model::OutlierDetection& outlier);
absl::StatusOr<model::LbAlgorithm> FromAbiAlgorithm(uint8_t algo);

// A service as the kernel will hold it, before ids and revisions are assigned.
struct ServiceTables {
  std::vector<model::Backend> backends;  // the ready backends, in model order
  // slot -> index into `backends`; empty = refuse. Ends with the backend list (struct sm_svc in
  // abi.h) when the service has one.
  std::vector<uint32_t> lut;
  uint32_t lut_size = 0;  // sm_svc.lut_size: the selection table's slots, without an appended list
  uint8_t algo = SM_LB_RANDOM;
  uint32_t affinity_timeout_s = 0;     // 0 = no session affinity
  uint16_t max_conns_per_backend = 0;  // 0 = unlimited
};

// Whether a service keeps the one-slot-per-backend list that least-connections and the connection
// limit walk, and how many sm_lut_v1 slots it writes in all.
bool HasBackendList(const sm_svc& svc);
uint32_t LutSlotsWritten(const sm_svc& svc);

// Builds the selection table: one slot per backend for least-connections, Maglev over
// `maglev_table_size` slots, or a weighted table (plain [0..n) when all weights are equal); then
// appends the backend list when a connection limit needs it. Fails for a backend whose family
// differs from the VIP's, and for a list longer than SM_LB_MAX_LIST_BACKENDS.
absl::StatusOr<ServiceTables> BuildServiceTables(const model::ServiceEntry& entry,
                                                 uint32_t maglev_table_size);

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_ABI_CONVERSION_H_
