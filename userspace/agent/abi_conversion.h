// SPDX-License-Identifier: Apache-2.0
// The one place that turns the model (control_plane/model) into kernel ABI structs and back. No
// other code fills an sm_* struct by hand.
#ifndef SOCKMESH_USERSPACE_AGENT_ABI_CONVERSION_H_
#define SOCKMESH_USERSPACE_AGENT_ABI_CONVERSION_H_

#include <cstdint>
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

uint8_t ToAbiAlgorithm(model::LbAlgorithm algorithm);
absl::StatusOr<model::LbAlgorithm> FromAbiAlgorithm(uint8_t algo);

// A service as the kernel will hold it, before ids and revisions are assigned.
struct ServiceTables {
  std::vector<model::Backend> backends;  // the ready backends, in model order
  std::vector<uint32_t> lut;             // slot -> index into `backends`; empty = refuse
  uint8_t algo = SM_LB_RANDOM;
  uint32_t affinity_timeout_s = 0;  // 0 = no session affinity
};

// Builds the selection table: Maglev over `maglev_table_size` slots, or a weighted table (plain
// [0..n) when all weights are equal). Fails for a backend whose family differs from the VIP's.
absl::StatusOr<ServiceTables> BuildServiceTables(const model::ServiceEntry& entry,
                                                 uint32_t maglev_table_size);

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_ABI_CONVERSION_H_
