// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/control_health.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace sockmesh::cp {

ControlHealth::ControlHealth(ControlHealthOptions options)
    : options_(std::move(options)), main_loop_("main loop", options_.stall_limit, options_.now) {}

void ControlHealth::Heartbeat() { main_loop_.Beat(); }

void ControlHealth::SetSourceSynced(bool synced) {
  absl::MutexLock lock(&mu_);
  source_synced_ = synced;
}

void ControlHealth::SetServing(const std::string& grpc_address) {
  absl::MutexLock lock(&mu_);
  grpc_address_ = grpc_address;
}

ControlHealthReport ControlHealth::Check() const {
  const uint64_t version = options_.version ? options_.version() : 0;
  ControlHealthReport r;
  std::optional<std::string> stalled = main_loop_.Stalled();
  r.live = !stalled.has_value();
  if (stalled) r.not_ready.push_back(absl::StrCat("not live: ", *stalled));
  absl::MutexLock lock(&mu_);
  if (!source_synced_) {
    r.not_ready.push_back(absl::StrCat("source not synced yet: ", options_.source));
  }
  if (grpc_address_.empty()) r.not_ready.push_back("gRPC API not serving yet");
  r.ready = r.not_ready.empty();
  nlohmann::json j;
  j["live"] = r.live;
  j["ready"] = r.ready;
  j["not_ready"] = r.not_ready;
  j["source"] = {{"name", options_.source}, {"synced", source_synced_}};
  j["grpc"] = grpc_address_.empty() ? nlohmann::json(nullptr) : nlohmann::json(grpc_address_);
  j["version"] = version;
  j["main_loop"] = {{"seconds_since_heartbeat", absl::ToDoubleSeconds(main_loop_.SinceLast())},
                    {"stall_limit_seconds", absl::ToDoubleSeconds(main_loop_.limit())}};
  r.json = j.dump(2) + "\n";
  return r;
}

void ControlHealth::ServeOn(metrics::MetricsServer& server) const {
  metrics::ServeHealth(server, [this] {
    ControlHealthReport r = Check();
    return metrics::HealthVerdict{.live = r.live, .ready = r.ready, .json = std::move(r.json)};
  });
}

}  // namespace sockmesh::cp
