// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes as one sockmesh.v1 ServerMessage through the agent's path
// (userspace/agent/control_plane_client.cc): decode, snapshot -> state or delta on top of the
// agent's current state, then the per-service tables MapSync would write to the kernel. Garbage
// must come back as a Status (which the agent NACKs), never a crash or an invalid model.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control_plane/model/proto_conversion.h"
#include "control_plane/model/workload_conversion.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/lb/maglev.h"

namespace {

namespace model = sockmesh::model;
namespace agent = sockmesh::agent;

void Check(bool ok) {
  if (!ok) std::abort();
}

model::ServiceEntry Entry(const char* vip, uint16_t port, std::vector<const char*> backends,
                          model::LbAlgorithm algorithm) {
  model::ServiceEntry e;
  e.namespace_name = "ns";
  e.service_name = std::string("svc-") + vip;
  e.frontend = {.vip = *model::IpAddress::Parse(vip), .port = port};
  e.algorithm = algorithm;
  for (const char* b : backends) {
    e.backends.push_back({.address = *model::IpAddress::Parse(b), .port = 8080, .weight = 3});
  }
  return e;
}

// The state the agent holds when a delta arrives; the corpus's deltas are based on it (version 3).
const model::DesiredState& Base() {
  static const model::DesiredState* base = [] {
    auto* state = new model::DesiredState;
    for (model::ServiceEntry e :
         {Entry("10.0.0.1", 80, {"10.1.0.1", "10.1.0.2"}, model::LbAlgorithm::kRandom),
          Entry("10.0.0.2", 53, {}, model::LbAlgorithm::kRandom),
          Entry("fd00::1", 443, {"fd00::2", "fd00::3"}, model::LbAlgorithm::kMaglev)}) {
      (*state)[e.frontend] = e;
    }
    return state;
  }();
  return *base;
}

void CheckAndBuildTables(const model::DesiredState& state) {
  for (const auto& [frontend, entry] : state) {
    Check(frontend == entry.frontend);
    Check(frontend.vip.is_v4() || frontend.vip.is_v6());
    Check(frontend.port != 0);
    for (const model::Backend& b : entry.backends) {
      Check(b.address.is_v4() || b.address.is_v6());
      Check(b.port != 0);
      Check(b.weight >= 1 && b.weight <= 65535);
    }
    // The smallest supported Maglev table keeps each input fast; MapSync does the same per service.
    absl::StatusOr<agent::ServiceTables> tables =
        agent::BuildServiceTables(entry, sockmesh::lb::kSupportedMaglevTableSizes[0]);
    if (!tables.ok()) continue;
    for (uint32_t slot : tables->lut) Check(slot < tables->backends.size());
  }
  // What the identity maps are planned from: consistent, numbers outside the reserved range.
  Check(model::CheckWorkloadState(state.workloads).ok());
  for (const auto& [key, w] : state.workloads.workloads) {
    Check(w.identity >= model::kFirstAllocatedIdentity && w.identity < model::kIdentitySpace);
    for (const model::IpAddress& ip : w.ips) Check(ip.is_v4() || ip.is_v6());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sockmesh::v1::ServerMessage msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (msg.has_snapshot()) {
    absl::StatusOr<model::DesiredState> state = model::FromSnapshot(msg.snapshot());
    if (state.ok()) CheckAndBuildTables(*state);
  } else if (msg.has_delta()) {
    model::DesiredState state = Base();
    if (model::ApplyDelta(msg.delta(), state).ok()) CheckAndBuildTables(state);
  }
  return 0;
}
