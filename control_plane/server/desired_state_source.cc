// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/desired_state_source.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_join.h"
#include "control_plane/sources/authorization_policy_builder.h"
#include "userspace/log/log.h"

namespace sockmesh::cp {
namespace {

constexpr char kLog[] = "control";

// One line per AuthorizationPolicy whose status is new or changed: a warning when it is refused or
// its references resolve to nothing, so an operator sees at once why a policy does not act.
void LogPolicyStatusChanges(const std::vector<model::PolicyStatus>& before,
                            const std::vector<model::PolicyStatus>& after) {
  std::map<std::pair<std::string, std::string>, const model::PolicyStatus*> old;
  for (const model::PolicyStatus& p : before) old[{p.namespace_name, p.name}] = &p;
  for (const model::PolicyStatus& p : after) {
    auto it = old.find({p.namespace_name, p.name});
    if (it != old.end() && *it->second == p) continue;
    const bool healthy = std::all_of(p.conditions.begin(), p.conditions.end(),
                                     [](const model::PolicyCondition& c) { return c.status; });
    if (healthy) {
      log::Info("policy", sources::DescribePolicyStatus(p));
    } else {
      log::Warn("policy", sources::DescribePolicyStatus(p));
    }
  }
}

}  // namespace

void PublishDesiredState(model::DesiredState next, VersionedState& state, ControlMetrics& metrics) {
  const StateVersion before = state.Current();
  bool changed = state.Update(std::move(next));
  StateVersion current = state.Current();
  if (changed) LogPolicyStatusChanges(before.state->policy_status, current.state->policy_status);
  metrics.SetState(current.version, current.state->size(), BackendCount(*current.state));
  if (changed) {
    log::Info(kLog, "version ", current.version, ": ", current.state->size(), " services, ",
              BackendCount(*current.state), " backends");
  }
}

size_t BackendCount(const model::DesiredState& state) {
  size_t n = 0;
  for (const auto& [frontend, entry] : state) n += entry.backends.size();
  return n;
}

absl::StatusOr<std::unique_ptr<ManifestDirectorySource>> ManifestDirectorySource::Create(
    const std::filesystem::path& dir, ReloadObserver on_reload) {
  absl::StatusOr<sources::ManifestWatcher> watcher = sources::ManifestWatcher::Create(dir);
  if (!watcher.ok()) return watcher.status();
  return std::unique_ptr<ManifestDirectorySource>(
      new ManifestDirectorySource(dir, *std::move(watcher), std::move(on_reload)));
}

ManifestDirectorySource::ManifestDirectorySource(std::filesystem::path dir,
                                                 sources::ManifestWatcher watcher,
                                                 ReloadObserver on_reload)
    : manifests_(std::move(dir)), on_reload_(std::move(on_reload)), watcher_(std::move(watcher)) {}

void ManifestDirectorySource::WaitAndPublish(absl::Duration timeout, VersionedState& state,
                                             ControlMetrics& metrics) {
  if (!loaded_) {
    loaded_ = true;
    Reload(state, metrics);
    return;
  }
  absl::StatusOr<bool> changed = watcher_->WaitForChange(timeout);
  if (!changed.ok()) {
    log::Warn(kLog, "manifest watch: ", changed.status().message(), "; watching again");
    absl::SleepFor(absl::Seconds(1));
    auto again = sources::ManifestWatcher::Create(manifests_.dir());
    if (again.ok()) watcher_ = *std::move(again);
    return;
  }
  if (*changed) Reload(state, metrics);
}

// Broken files keep their last good parse (see ManifestDirectory), so a typo never withdraws
// services from the agents.
void ManifestDirectorySource::Reload(VersionedState& state, ControlMetrics& metrics) {
  absl::StatusOr<sources::ReloadResult> reload = manifests_.Reload();
  if (!reload.ok()) {
    metrics.RecordSourceError();
    log::Error(kLog, "cannot read manifests: ", reload.status().message(),
               "; the current version stays");
    if (on_reload_) on_reload_(0, /*unreadable=*/true);
    return;
  }
  for (const std::string& note : reload->notes) log::Info("manifests", note);
  for (const std::string& error : reload->errors) log::Error("manifests", error);
  if (!reload->errors.empty()) metrics.RecordSourceError();
  if (on_reload_) on_reload_(reload->errors.size(), /*unreadable=*/false);
  if (!reload->changed_files.empty()) {
    log::Info("manifests", "changed: ", absl::StrJoin(reload->changed_files, ", "));
  }
  PublishDesiredState(std::move(reload->state), state, metrics);
  published_ = true;
}

}  // namespace sockmesh::cp
