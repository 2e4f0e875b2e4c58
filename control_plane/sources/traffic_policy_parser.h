// SPDX-License-Identifier: Apache-2.0
// Parses one sockmesh.io/v1alpha1 TrafficPolicy document. Every field sockmesh cannot honour is
// refused by name rather than ignored (an Istio DestinationRule field that needs L7, for one), so a
// policy in force always means what it says. Errors name the file, the object, the field path and
// the value, like every other kind's (manifest_fields.h).
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_TRAFFIC_POLICY_PARSER_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_TRAFFIC_POLICY_PARSER_H_

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "control_plane/sources/manifest_fields.h"
#include "control_plane/sources/traffic_policy_manifest.h"

namespace sockmesh::sources {

absl::StatusOr<TrafficPolicyManifest> ParseTrafficPolicy(fields::Reporter& r,
                                                         const YAML::Node& object,
                                                         absl::string_view file);

// A duration as Istio writes one ("30s", "500ms", "1.5s", "2m", "1h"), in milliseconds; nullopt
// for anything else or a value below 1 ms.
std::optional<uint64_t> ParseDurationMs(absl::string_view text);

}  // namespace sockmesh::sources

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_TRAFFIC_POLICY_PARSER_H_
