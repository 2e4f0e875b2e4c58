// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/agent_health.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace sockmesh::agent {
namespace {

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

AgentHealth::AgentHealth(AgentHealthOptions options)
    : options_(std::move(options)),
      started_(options_.now()),
      main_loop_("main loop", options_.stall_limit, options_.now) {}

void AgentHealth::Heartbeat() { main_loop_.Beat(); }

void AgentHealth::SetShortCircuit(bool enabled) {
  absl::MutexLock lock(&mu_);
  short_circuit_ = enabled;
}

void AgentHealth::SetControlPlaneConnected(bool connected) {
  absl::MutexLock lock(&mu_);
  connected_ = connected;
}

void AgentHealth::RecordVersion(uint64_t version, bool acked) {
  absl::MutexLock lock(&mu_);
  newest_nacked_ = !acked;
  (acked ? acked_version_ : nacked_version_) = version;
}

void AgentHealth::RecordSync(const std::string& error) {
  absl::MutexLock lock(&mu_);
  last_sync_ = options_.now();
  last_sync_error_ = error;
}

AgentHealthReport AgentHealth::Check() const {
  // Asked of the kernel outside the lock: it is the slow part.
  absl::StatusOr<size_t> attached =
      options_.programs_attached ? options_.programs_attached() : absl::StatusOr<size_t>(0);
  const absl::Time now = options_.now();
  AgentHealthReport r;
  if (std::optional<std::string> stalled = main_loop_.Stalled()) r.not_live.push_back(*stalled);
  absl::MutexLock lock(&mu_);
  if (!attached.ok()) {
    r.not_ready.push_back(
        absl::StrCat("cannot read the attached programs: ", attached.status().message()));
  } else if (*attached < options_.programs_expected) {
    r.not_ready.push_back(absl::StrCat(*attached, " of ", options_.programs_expected,
                                       " programs attached to the mesh cgroup"));
  }
  if (acked_version_ == 0) {
    r.not_ready.push_back(absl::StrCat("no version from the control plane (",
                                       options_.control_plane, ") applied yet"));
  }
  if (newest_nacked_) {
    r.not_ready.push_back(absl::StrCat(
        "the newest version, ", nacked_version_, ", was NACKed",
        acked_version_ != 0 ? absl::StrCat(": version ", acked_version_, " stays applied") : ""));
  }
  if (!last_sync_error_.empty()) {
    r.not_ready.push_back(absl::StrCat("last map sync failed: ", last_sync_error_));
  }
  r.live = r.not_live.empty();
  r.ready = r.live && r.not_ready.empty();
  if (!r.live) r.not_ready.insert(r.not_ready.begin(), "not live");

  nlohmann::json j;
  j["live"] = r.live;
  j["ready"] = r.ready;
  j["not_live"] = r.not_live;
  j["not_ready"] = r.not_ready;
  j["programs"] = {{"attached", attached.ok() ? *attached : 0},
                   {"expected", options_.programs_expected}};
  j["control_plane"] = {{"address", options_.control_plane},
                        {"connected", connected_},
                        {"acked_version", acked_version_},
                        {"newest_nacked", newest_nacked_}};
  if (nacked_version_ != 0) j["control_plane"]["last_nacked_version"] = nacked_version_;
  j["last_sync"] =
      last_sync_ == absl::InfinitePast()
          ? nlohmann::json{{"time", nullptr}, {"error", nullptr}}
          : nlohmann::json{{"time", Rfc3339(last_sync_)},
                           {"age_seconds", absl::ToDoubleSeconds(now - last_sync_)},
                           {"error", last_sync_error_.empty() ? nlohmann::json(nullptr)
                                                              : nlohmann::json(last_sync_error_)}};
  j["short_circuit"] = {{"enabled", short_circuit_}};
  j["main_loop"] = {{"seconds_since_heartbeat", absl::ToDoubleSeconds(main_loop_.SinceLast())},
                    {"stall_limit_seconds", absl::ToDoubleSeconds(main_loop_.limit())}};
  j["started"] = Rfc3339(started_);
  r.json = j.dump(2) + "\n";
  return r;
}

void AgentHealth::ServeOn(metrics::MetricsServer& server) const {
  metrics::ServeHealth(server, [this] {
    AgentHealthReport r = Check();
    return metrics::HealthVerdict{.live = r.live, .ready = r.ready, .json = std::move(r.json)};
  });
}

}  // namespace sockmesh::agent
