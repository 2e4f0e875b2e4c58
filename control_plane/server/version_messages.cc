// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/version_messages.h"

#include "control_plane/model/policy_conversion.h"
#include "control_plane/model/proto_conversion.h"
#include "control_plane/model/workload_conversion.h"

namespace sockmesh::cp {
namespace {

// The delta from the version right before `target`: what MakeDelta would find, without comparing
// the whole model (the workload table, small, is compared whole).
v1::Delta DeltaFromPrevious(const StateVersion& base, const StateVersion& target) {
  v1::Delta out;
  out.set_version(target.version);
  out.set_base_version(base.version);
  for (const model::Frontend& frontend : *target.changed_since_previous) {
    auto it = target.state->find(frontend);
    if (it != target.state->end()) {
      *out.add_upserted_services() = model::ToProto(it->second);
    } else {
      *out.add_removed_frontends() = model::ToProto(frontend);
    }
  }
  model::AddWorkloadDelta(base.state->workloads, target.state->workloads, out);
  model::AddPolicyDelta(base.state->policy, target.state->policy, out);
  return out;
}

}  // namespace

std::shared_ptr<const v1::ServerMessage> VersionMessages::Snapshot(const StateVersion& target) {
  absl::MutexLock lock(&mu_);
  if (snapshot_ == nullptr) {
    auto msg = std::make_shared<v1::ServerMessage>();
    *msg->mutable_snapshot() = model::MakeSnapshot(target.version, *target.state);
    snapshot_ = std::move(msg);
  }
  return snapshot_;
}

std::shared_ptr<const v1::ServerMessage> VersionMessages::Delta(const StateVersion& base,
                                                                const StateVersion& target) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<const v1::ServerMessage>& cached = deltas_[base.version];
  if (cached == nullptr) {
    auto msg = std::make_shared<v1::ServerMessage>();
    if (target.changed_since_previous != nullptr && base.version + 1 == target.version) {
      *msg->mutable_delta() = DeltaFromPrevious(base, target);
    } else {
      *msg->mutable_delta() =
          model::MakeDelta(base.version, *base.state, target.version, *target.state);
    }
    cached = std::move(msg);
  }
  return cached;
}

}  // namespace sockmesh::cp
