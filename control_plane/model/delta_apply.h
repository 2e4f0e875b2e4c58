// SPDX-License-Identifier: Apache-2.0
// A Delta applied in place, with what it replaced kept aside so the change can be undone. The
// agent's client follows a stream this way: copying its whole state for every delta (10,000
// services and more) would make each small change cost as much as a snapshot.
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_DELTA_APPLY_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_DELTA_APPLY_H_

#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::model {

// A Delta's content, validated (see FromProto in proto_conversion.h) before anything is changed.
struct DecodedDelta {
  std::vector<Frontend> removed;
  std::vector<ServiceEntry> upserted;
  // The whole workload table after the delta, when the delta touches it. The table is small next to
  // the services, and checking it needs all of it (identities against workloads).
  std::optional<WorkloadState> workloads;
  std::optional<CompiledPolicy> policy;  // the whole compiled policy, when the delta replaces it
};

// `base` is the state the delta will be applied to: its workload table is the delta's starting
// point (the services are decoded on their own).
absl::StatusOr<DecodedDelta> DecodeDelta(const v1::Delta& delta, const DesiredState& base);

// What the delta replaced: each frontend it touched with what it held before (nullopt: absent), in
// the order the delta touched them, and the previous workload table if the delta replaced it.
struct DeltaUndo {
  std::vector<std::pair<Frontend, std::optional<ServiceEntry>>> services;
  std::optional<WorkloadState> workloads;
  std::optional<CompiledPolicy> policy;
};

// Removals first, then upserts, as in ApplyDelta. Costs O(size of the delta * log state).
DeltaUndo ApplyDecodedDelta(DecodedDelta delta, DesiredState& state);
// Puts back what ApplyDecodedDelta replaced.
void RevertDelta(DeltaUndo undo, DesiredState& state);

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_DELTA_APPLY_H_
