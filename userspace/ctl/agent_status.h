// SPDX-License-Identifier: Apache-2.0
// `sockmeshctl status`: which agents follow the control plane and whether they run its current
// version (like `istioctl proxy-status`).
#ifndef SOCKMESH_USERSPACE_CTL_AGENT_STATUS_H_
#define SOCKMESH_USERSPACE_CTL_AGENT_STATUS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::ctl {

// Calls ListAgents on the control plane at `address`. Unavailable / DeadlineExceeded name it.
absl::StatusOr<v1::ListAgentsResponse> FetchAgentStatus(const std::string& address,
                                                        absl::Duration timeout);

// "SYNCED" (ACKed the current version), "NACKED" (refused the newest version it was sent and runs
// an older one), "STALE" (a newer version is in flight or not yet sent).
std::string SyncState(const v1::AgentStatus& agent, uint64_t current_version);

std::string FormatAgentStatusTable(const v1::ListAgentsResponse& response, absl::Time now);
std::string FormatAgentStatusJson(const v1::ListAgentsResponse& response);

}  // namespace sockmesh::ctl

#endif  // SOCKMESH_USERSPACE_CTL_AGENT_STATUS_H_
