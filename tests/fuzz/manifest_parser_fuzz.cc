// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes as a manifest file through the standalone-mode parser, then
// the Service/EndpointSlice join and the workload/identity build, as ManifestDirectory does with a
// file an operator wrote. Both must answer with a Status, never crash, throw or hand out a state
// that breaks the model's invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "absl/status/statusor.h"
#include "control_plane/model/workload_conversion.h"
#include "control_plane/sources/desired_state_builder.h"
#include "control_plane/sources/manifest_parser.h"
#include "control_plane/sources/workload_builder.h"

namespace {

namespace model = sockmesh::model;
namespace sources = sockmesh::sources;

// A broken invariant is a bug even without a crash: make the fuzzer report it.
void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckState(const model::DesiredState& state) {
  for (const auto& [frontend, entry] : state) {
    Check(frontend == entry.frontend);
    Check(frontend.vip.is_v4() || frontend.vip.is_v6());
    Check(frontend.port != 0);
    for (const model::Backend& b : entry.backends) {
      Check(b.address.is_v4() || b.address.is_v6());
      Check(b.port != 0);
      Check(b.weight >= 1 && b.weight <= sources::kMaxWeight);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The directory reader refuses larger files before parsing; do the same.
  if (size > sources::kMaxManifestFileBytes) return 0;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sources::ParsedManifests> parsed = sources::ParseManifests(yaml, "fuzz.yaml");
  if (!parsed.ok()) return 0;
  for (const sources::ServiceManifest& svc : parsed->services) {
    Check(!svc.name.empty());
    Check(svc.cluster_ips.size() <= 2);
    for (const sources::ServicePortManifest& port : svc.ports) Check(port.port != 0);
  }
  absl::StatusOr<model::DesiredState> state =
      sources::BuildDesiredState(*parsed, model::DesiredState());
  if (state.ok()) {
    CheckState(*state);
    Check(model::CheckWorkloadState(state->workloads).ok());
  }
  return 0;
}
