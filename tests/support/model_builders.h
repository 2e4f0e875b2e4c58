// SPDX-License-Identifier: Apache-2.0
// Builders for the desired-state model in tests. Header-only: unit tests use it without linking
// the datapath.
#ifndef SOCKMESH_TESTS_SUPPORT_MODEL_BUILDERS_H_
#define SOCKMESH_TESTS_SUPPORT_MODEL_BUILDERS_H_

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "control_plane/model/service_model.h"

namespace sockmesh::testing {

inline model::Backend MakeBackend(const std::string& ip, uint16_t port, uint32_t weight = 1) {
  return model::Backend{.address = *model::IpAddress::Parse(ip), .port = port, .weight = weight};
}

// A Service `test/svc` on one frontend; backends sorted, as the manifest layer delivers them.
inline model::ServiceEntry MakeService(const std::string& vip, uint16_t port,
                                       model::Protocol protocol,
                                       std::vector<model::Backend> backends,
                                       model::LbAlgorithm algorithm = model::LbAlgorithm::kRandom) {
  std::sort(backends.begin(), backends.end());
  model::ServiceEntry e;
  e.namespace_name = "test";
  e.service_name = "svc";
  e.frontend =
      model::Frontend{.vip = *model::IpAddress::Parse(vip), .port = port, .protocol = protocol};
  e.algorithm = algorithm;
  e.backends = std::move(backends);
  return e;
}

inline void AddService(model::DesiredState& state, model::ServiceEntry entry) {
  model::Frontend f = entry.frontend;
  state[f] = std::move(entry);
}

inline model::DesiredState StateOf(std::vector<model::ServiceEntry> entries) {
  model::DesiredState state;
  for (model::ServiceEntry& e : entries) AddService(state, std::move(e));
  return state;
}

// A TCP service on `vip`:80 over `backend_ips`, all on port 8080.
inline model::ServiceEntry Port80Service(const std::string& vip,
                                         const std::vector<std::string>& backend_ips) {
  std::vector<model::Backend> backends;
  for (const std::string& ip : backend_ips) backends.push_back(MakeBackend(ip, 8080));
  return MakeService(vip, 80, model::Protocol::kTcp, std::move(backends));
}

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_MODEL_BUILDERS_H_
