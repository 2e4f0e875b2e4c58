// SPDX-License-Identifier: Apache-2.0
// Joins parsed Services with their EndpointSlices into the model's DesiredState, the way
// kube-proxy does: one entry per (cluster IP, Service port), backed by the ready endpoints of the
// Service's slices of the same address family.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_DESIRED_STATE_BUILDER_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_DESIRED_STATE_BUILDER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "control_plane/sources/manifest_parser.h"

namespace sockmesh::sources {

// For each Service port and cluster IP, a ServiceEntry whose frontend is (cluster IP, port,
// protocol). Its backends are the first address of every ready endpoint in the slices labelled
// with the Service (same namespace, same address family as the cluster IP), on the port of the
// slice port with the Service port's name and protocol, or else on a numeric targetPort; a slice
// offering neither contributes nothing to that port. Backends are sorted by (address, port); one
// address and port offered by two slices keeps the larger weight. A Service without slices gets
// an entry with no backends, which the datapath refuses.
//
// Fails with InvalidArgument, naming both objects and their files, when two Services claim the
// same frontend or the same Service or EndpointSlice is defined twice.
absl::StatusOr<model::DesiredState> BuildDesiredState(
    const std::vector<ServiceManifest>& services, const std::vector<EndpointSliceManifest>& slices);

}  // namespace sockmesh::sources

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_DESIRED_STATE_BUILDER_H_
