// SPDX-License-Identifier: Apache-2.0
// `sockmeshctl status -o json` as tests read it.
#ifndef SOCKMESH_TESTS_SUPPORT_CONTROL_PLANE_STATUS_H_
#define SOCKMESH_TESTS_SUPPORT_CONTROL_PLANE_STATUS_H_

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace sockmesh::testing {

// Runs `ctl_bin status --control-plane address -o json` (inside `netns_fd` when >= 0) and parses
// its JSON; a null Json when it failed.
nlohmann::json ReadControlPlaneStatus(const std::string& ctl_bin, const std::string& address,
                                      const std::string& log_path, int netns_fd = -1);

// Polls `read` until `pred` holds for its result or `timeout` passes (then a gtest failure);
// returns the last status seen.
nlohmann::json WaitForStatus(const std::function<nlohmann::json()>& read,
                             const std::function<bool(const nlohmann::json&)>& pred,
                             absl::Duration timeout);

// The entry of agent `node` in a status, or nullptr.
const nlohmann::json* AgentStatus(const nlohmann::json& status, const std::string& node);

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_CONTROL_PLANE_STATUS_H_
