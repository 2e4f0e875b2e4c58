// SPDX-License-Identifier: Apache-2.0
// The one place that converts the desired-state model to the sockmesh.v1 wire messages and back,
// and computes what changed between two states. The server builds its messages here; the agent
// reads them here, so both sides agree on what a field means.
#ifndef SOCKMESH_CONTROL_PLANE_MODEL_PROTO_CONVERSION_H_
#define SOCKMESH_CONTROL_PLANE_MODEL_PROTO_CONVERSION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::model {

v1::IpAddress ToProto(const IpAddress& ip);
v1::Frontend ToProto(const Frontend& frontend);
v1::Service ToProto(const ServiceEntry& entry);

// The inverse conversions validate what a peer sent: address length 4 or 16, ports 1..65535,
// weights 1..65535, known enum values. InvalidArgument names the field. Backends that are not
// ready are dropped (the model holds only ready ones); the rest are sorted as the model requires.
absl::StatusOr<IpAddress> FromProto(const v1::IpAddress& ip);
absl::StatusOr<Frontend> FromProto(const v1::Frontend& frontend);
absl::StatusOr<ServiceEntry> FromProto(const v1::Service& service);

v1::Snapshot MakeSnapshot(uint64_t version, const DesiredState& state);
absl::StatusOr<DesiredState> FromSnapshot(const v1::Snapshot& snapshot);

// The Delta that turns `base` (at `base_version`) into `target` (at `version`): every service that
// is new or differs in any field, whole, and the frontends that disappeared. Unchanged services
// are not sent.
v1::Delta MakeDelta(uint64_t base_version, const DesiredState& base, uint64_t version,
                    const DesiredState& target);
// Applies `delta` to `state` in place. The whole delta is validated first, so on error `state` is
// unchanged. A removed frontend that is not there is not an error (the result is the same). To
// undo an applied delta, see delta_apply.h.
absl::Status ApplyDelta(const v1::Delta& delta, DesiredState& state);

}  // namespace sockmesh::model

#endif  // SOCKMESH_CONTROL_PLANE_MODEL_PROTO_CONVERSION_H_
