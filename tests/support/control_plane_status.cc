// SPDX-License-Identifier: Apache-2.0
#include "tests/support/control_plane_status.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/agent_process.h"

namespace sockmesh::testing {

nlohmann::json ReadControlPlaneStatus(const std::string& ctl_bin, const std::string& address,
                                      const std::string& log_path, int netns_fd) {
  auto run = RunAgentToCompletion(ctl_bin, {"status", "--control-plane", address, "-o", "json"},
                                  log_path, "", absl::Seconds(15), netns_fd);
  if (!run.ok() || run->exit_code != 0) return nlohmann::json();
  size_t start = run->log.find('{');
  if (start == std::string::npos) return nlohmann::json();
  return nlohmann::json::parse(run->log.substr(start), nullptr, /*allow_exceptions=*/false);
}

nlohmann::json WaitForStatus(const std::function<nlohmann::json()>& read,
                             const std::function<bool(const nlohmann::json&)>& pred,
                             absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  nlohmann::json last;
  while (absl::Now() < deadline) {
    last = read();
    if (last.is_object() && pred(last)) return last;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ADD_FAILURE() << "status never reached the expected state; last:\n" << last.dump(2);
  return last;
}

const nlohmann::json* AgentStatus(const nlohmann::json& status, const std::string& node) {
  if (!status.is_object() || !status.contains("agents")) return nullptr;
  for (const nlohmann::json& a : status["agents"]) {
    if (a["node"] == node) return &a;
  }
  return nullptr;
}

}  // namespace sockmesh::testing
