// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/kubernetes/object_cache.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "control_plane/sources/workload_builder.h"

namespace sockmesh::sources::kubernetes {
namespace {

std::string StringAt(const nlohmann::json& object, const char* field) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  auto it = meta->find(field);
  return it != meta->end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

const char* ObjectKindName(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kService:
      return "Service";
    case ObjectKind::kEndpointSlice:
      return "EndpointSlice";
    case ObjectKind::kPod:
      return "Pod";
    case ObjectKind::kNamespace:
      return "Namespace";
    case ObjectKind::kAuthorizationPolicy:
      return "AuthorizationPolicy";
    case ObjectKind::kTrafficPolicy:
      return "TrafficPolicy";
  }
  return "?";
}

bool IsCustomResourceKind(ObjectKind kind) {
  return kind == ObjectKind::kAuthorizationPolicy || kind == ObjectKind::kTrafficPolicy;
}

std::string ObjectKey(const nlohmann::json& object) {
  if (!object.is_object()) return "";
  const std::string name = StringAt(object, "name");
  const std::string ns = StringAt(object, "namespace");
  if (name.empty()) return "";
  return ns.empty() ? name : absl::StrCat(ns, "/", name);
}

void ObjectCache::Upsert(ObjectKind kind, KindState& ks, const std::string& key,
                         const nlohmann::json& object) {
  ks.objects[key] = object;
  Converted& c = ks.converted[key];
  // The parser reads JSON because JSON is YAML; going through it keeps one definition of what a
  // valid Service or EndpointSlice is. dump() cannot throw here: the text came from a JSON parse.
  absl::StatusOr<ParsedManifests> parsed = ParseManifests(
      object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kApiSourceLabel);
  if (parsed.ok()) {
    c.last_good = *std::move(parsed);
    c.error.clear();
  } else {
    c.error = std::string(parsed.status().message());
  }
}

void ObjectCache::Replace(ObjectKind kind, const std::vector<nlohmann::json>& items) {
  absl::MutexLock lock(&mu_);
  KindState fresh;
  fresh.listed = true;
  KindState& old = kinds_[kind];
  for (const nlohmann::json& item : items) {
    const std::string key = ObjectKey(item);
    if (key.empty()) continue;
    // Keep the last good parse of objects that survive the relist.
    if (auto it = old.converted.find(key); it != old.converted.end()) {
      fresh.converted[key] = it->second;
    }
    Upsert(kind, fresh, key, item);
  }
  old = std::move(fresh);
  Rebuild();
}

void ObjectCache::Apply(ObjectKind kind, EventType type, const nlohmann::json& object) {
  const std::string key = ObjectKey(object);
  if (key.empty()) return;
  absl::MutexLock lock(&mu_);
  KindState& ks = kinds_[kind];
  if (type == EventType::kDeleted) {
    ks.objects.erase(key);
    ks.converted.erase(key);
  } else {
    Upsert(kind, ks, key, object);
  }
  Rebuild();
}

void ObjectCache::Rebuild() {
  for (ObjectKind kind : kAllKinds) {
    if (!kinds_[kind].listed) return;
  }

  ParsedManifests all;
  std::vector<std::string> errors;
  for (ObjectKind kind : kAllKinds) {
    for (const auto& [key, c] : kinds_[kind].converted) {
      if (!c.error.empty()) errors.push_back(c.error);
      if (c.last_good.has_value()) AppendManifests(*c.last_good, all);
    }
  }
  absl::StatusOr<model::DesiredState> state = BuildDesiredState(all, snapshot_.state);
  Snapshot next;
  next.state = state.ok() ? *std::move(state) : snapshot_.state;
  if (!state.ok()) errors.emplace_back(state.status().message());
  next.errors = std::move(errors);
  if (snapshot_.version != 0 && next.state == snapshot_.state && next.errors == snapshot_.errors) {
    return;  // an event that changes nothing the datapath sees (a status update, a bookmark)
  }
  next.version = snapshot_.version + 1;
  snapshot_ = std::move(next);
}

Snapshot ObjectCache::Get() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

Snapshot ObjectCache::WaitForChange(uint64_t after, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto changed = [this, after]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return snapshot_.version > after; };
  mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
  return snapshot_;
}

std::map<std::string, nlohmann::json> ObjectCache::Objects(ObjectKind kind) const {
  absl::MutexLock lock(&mu_);
  auto it = kinds_.find(kind);
  return it == kinds_.end() ? std::map<std::string, nlohmann::json>() : it->second.objects;
}

}  // namespace sockmesh::sources::kubernetes
