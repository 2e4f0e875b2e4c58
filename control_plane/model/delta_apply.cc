// SPDX-License-Identifier: Apache-2.0
#include "control_plane/model/delta_apply.h"

#include "control_plane/model/policy_conversion.h"
#include "control_plane/model/proto_conversion.h"
#include "control_plane/model/workload_conversion.h"

namespace sockmesh::model {
namespace {

// Records what `frontend` holds now, then removes it from `state`.
void SaveAndErase(const Frontend& frontend, DesiredState& state, DeltaUndo& undo) {
  auto it = state.find(frontend);
  if (it == state.end()) {
    undo.services.emplace_back(frontend, std::nullopt);
    return;
  }
  undo.services.emplace_back(frontend, std::move(it->second));
  state.erase(it);
}

// Records what `entry`'s frontend holds now, then replaces it. A service already there is
// replaced in place: erasing and re-inserting it would walk and rebalance the tree of a large
// cluster's services twice, which was a tenth of the scale benchmark's agents' CPU per change.
void Upsert(ServiceEntry entry, DesiredState& state, DeltaUndo& undo) {
  auto [it, inserted] = state.try_emplace(entry.frontend);
  if (inserted) {
    undo.services.emplace_back(entry.frontend, std::nullopt);
  } else {
    undo.services.emplace_back(entry.frontend, std::move(it->second));
  }
  it->second = std::move(entry);
}

bool TouchesWorkloads(const v1::Delta& delta) {
  return delta.removed_workloads_size() > 0 || delta.upserted_workloads_size() > 0 ||
         delta.removed_principals_size() > 0 || delta.upserted_identities_size() > 0 ||
         delta.removed_namespaces_size() > 0 || delta.upserted_namespaces_size() > 0;
}

}  // namespace

absl::StatusOr<DecodedDelta> DecodeDelta(const v1::Delta& delta, const DesiredState& base) {
  DecodedDelta out;
  out.removed.reserve(delta.removed_frontends_size());
  for (const v1::Frontend& f : delta.removed_frontends()) {
    absl::StatusOr<Frontend> frontend = FromProto(f);
    if (!frontend.ok()) return frontend.status();
    out.removed.push_back(*frontend);
  }
  out.upserted.reserve(delta.upserted_services_size());
  for (const v1::Service& s : delta.upserted_services()) {
    absl::StatusOr<ServiceEntry> entry = FromProto(s);
    if (!entry.ok()) return entry.status();
    out.upserted.push_back(*std::move(entry));
  }
  if (TouchesWorkloads(delta)) {
    WorkloadState workloads = base.workloads;
    if (absl::Status s = ApplyWorkloadDelta(delta, workloads); !s.ok()) return s;
    out.workloads = std::move(workloads);
  }
  if (delta.has_policy()) {
    absl::StatusOr<CompiledPolicy> policy = FromProto(delta.policy());
    if (!policy.ok()) return policy.status();
    out.policy = *std::move(policy);
  }
  return out;
}

DeltaUndo ApplyDecodedDelta(DecodedDelta delta, DesiredState& state) {
  DeltaUndo undo;
  undo.services.reserve(delta.removed.size() + delta.upserted.size());
  for (const Frontend& frontend : delta.removed) SaveAndErase(frontend, state, undo);
  for (ServiceEntry& entry : delta.upserted) Upsert(std::move(entry), state, undo);
  if (delta.workloads.has_value()) {
    undo.workloads = std::move(state.workloads);
    state.workloads = *std::move(delta.workloads);
  }
  if (delta.policy.has_value()) {
    undo.policy = std::move(state.policy);
    state.policy = *std::move(delta.policy);
  }
  return undo;
}

void RevertDelta(DeltaUndo undo, DesiredState& state) {
  // Newest first, so a frontend the delta touched twice ends as it was before the first touch.
  for (auto it = undo.services.rbegin(); it != undo.services.rend(); ++it) {
    state.erase(it->first);
    if (it->second.has_value()) state.emplace(it->first, std::move(*it->second));
  }
  if (undo.workloads.has_value()) state.workloads = *std::move(undo.workloads);
  if (undo.policy.has_value()) state.policy = *std::move(undo.policy);
}

}  // namespace sockmesh::model
