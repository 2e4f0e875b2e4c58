// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/agent_status.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "sockmesh/v1/control_plane.grpc.pb.h"
#include "userspace/ctl/control_plane_call.h"
#include "userspace/ctl/text_table.h"

namespace sockmesh::ctl {
namespace {

std::string Ago(int64_t unix_ms, absl::Time now) {
  if (unix_ms == 0) return "-";
  absl::Duration d = now - absl::FromUnixMillis(unix_ms);
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  return absl::StrCat(absl::FormatDuration(absl::Trunc(d, absl::Seconds(1))), " ago");
}

std::string Rfc3339(int64_t unix_ms) {
  if (unix_ms == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<v1::ListAgentsResponse> FetchAgentStatus(const std::string& address,
                                                        absl::Duration timeout) {
  return CallControlPlane<v1::ListAgentsResponse>(
      address, timeout, [](auto& stub, grpc::ClientContext& context, auto& response) {
        return stub.ListAgents(&context, v1::ListAgentsRequest(), &response);
      });
}

std::string SyncState(const v1::AgentStatus& agent, uint64_t current_version) {
  if (agent.last_acked_version() == current_version) return "SYNCED";
  if (agent.last_nacked_version() != 0 &&
      agent.last_nacked_version() == agent.last_sent_version()) {
    return "NACKED";
  }
  return "STALE";
}

std::string FormatAgentStatusTable(const v1::ListAgentsResponse& response, absl::Time now) {
  TextTable table({"NODE", "STATUS", "ACKED", "CONNECTED", "LAST CONTACT", "LAST NACK"});
  for (const v1::AgentStatus& a : response.agents()) {
    std::string nack = a.last_nacked_version() == 0
                           ? "-"
                           : absl::StrCat("v", a.last_nacked_version(), ": ", a.last_nack_error());
    table.AddRow({a.node_name(), SyncState(a, response.current_version()),
                  a.last_acked_version() == 0 ? "-" : absl::StrCat("v", a.last_acked_version()),
                  Ago(a.connected_since_unix_ms(), now), Ago(a.last_contact_unix_ms(), now)},
                 nack);
  }
  return absl::StrCat("control plane version v", response.current_version(), ", ",
                      response.agents_size(), " agents connected\n", table.Render());
}

std::string FormatAgentStatusJson(const v1::ListAgentsResponse& response) {
  using Json = nlohmann::ordered_json;
  Json agents = Json::array();
  for (const v1::AgentStatus& a : response.agents()) {
    agents.push_back(Json{{"node", a.node_name()},
                          {"agent_version", a.agent_version()},
                          {"status", SyncState(a, response.current_version())},
                          {"connected_since", Rfc3339(a.connected_since_unix_ms())},
                          {"last_contact", Rfc3339(a.last_contact_unix_ms())},
                          {"last_sent_version", a.last_sent_version()},
                          {"last_acked_version", a.last_acked_version()},
                          {"last_nacked_version", a.last_nacked_version()},
                          {"last_nack_error", a.last_nack_error()}});
  }
  Json out{{"current_version", response.current_version()}, {"agents", std::move(agents)}};
  return out.dump(2) + "\n";
}

}  // namespace sockmesh::ctl
