// SPDX-License-Identifier: Apache-2.0
// Turns parsed Pods, WorkloadEntries and Namespaces into the model's workloads, numbering each
// principal with the identity allocator so numbers stay put from one build to the next.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_WORKLOAD_BUILDER_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_WORKLOAD_BUILDER_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "control_plane/model/service_model.h"
#include "control_plane/sources/manifest_parser.h"

namespace sockmesh::sources {

// One workload per Pod and WorkloadEntry, keyed by namespace/name; the identity table holds every
// principal that has a workload. `previous_identities` (the last state's table) keeps existing
// principals on their numbers. Fails with InvalidArgument, naming both objects and their files,
// when two workloads (of either kind) or two Namespaces share a name.
absl::StatusOr<model::WorkloadState> BuildWorkloads(
    const ParsedManifests& objects, const std::map<std::string, uint32_t>& previous_identities);

// BuildDesiredState for the services plus BuildWorkloads: the whole state of everything parsed.
absl::StatusOr<model::DesiredState> BuildDesiredState(const ParsedManifests& objects,
                                                      const model::DesiredState& previous);

// Appends every object of `from` to `into` (notes too).
void AppendManifests(const ParsedManifests& from, ParsedManifests& into);

}  // namespace sockmesh::sources

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_WORKLOAD_BUILDER_H_
