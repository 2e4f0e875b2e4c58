// SPDX-License-Identifier: Apache-2.0
// The objects the Kubernetes API currently holds, per kind, and the DesiredState they make.
//
// The list/watch loops feed it (Replace after a list, Apply per watch event). Every object
// (Services, EndpointSlices, Pods, Namespaces, TrafficPolicies) is converted by the standalone
// manifest parser, one at a time, so validation and error messages are identical to standalone
// mode, and an invalid object is rejected alone: the others still apply. Pods become workloads with
// identities.
//
// Thread-safe. Readers take a versioned Snapshot and can block in WaitForChange, which is how the
// control plane will stream changes to agents.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_OBJECT_CACHE_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_OBJECT_CACHE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control_plane/model/service_model.h"
#include "control_plane/sources/manifest_parser.h"
#include "nlohmann/json.hpp"

namespace sockmesh::sources::kubernetes {

enum class ObjectKind {
  kService,
  kEndpointSlice,
  kPod,
  kNamespace,
  kAuthorizationPolicy,
  kTrafficPolicy
};
inline constexpr ObjectKind kAllKinds[] = {
    ObjectKind::kService,   ObjectKind::kEndpointSlice,       ObjectKind::kPod,
    ObjectKind::kNamespace, ObjectKind::kAuthorizationPolicy, ObjectKind::kTrafficPolicy};
// A kind of sockmesh's own CRDs: a cluster without the CRD installed answers its list with 404,
// which counts as an empty list (so the other kinds still publish) while the list is retried.
bool IsCustomResourceKind(ObjectKind kind);
const char* ObjectKindName(ObjectKind kind);  // "Service", "EndpointSlice", ...

enum class EventType { kAdded, kModified, kDeleted };

// Every error message of an object starts with this label, in place of standalone mode's file
// name: "kubernetes-api: Service default/web: spec.ports[0].port: ...".
inline constexpr char kApiSourceLabel[] = "kubernetes-api";

struct Snapshot {
  // 0 until every kind has been listed once: a state built from Services without their slices
  // would refuse every connection, and one without Pods would give their addresses no identity.
  // Then it grows by one per published change.
  uint64_t version = 0;
  model::DesiredState state;
  // One message per rejected object (sorted by kind, namespace, name), then the join error when
  // the valid objects contradict each other (two Services on one frontend); in that case `state`
  // is the last one without contradictions. Repeated in every snapshot until fixed.
  std::vector<std::string> errors;
};

class ObjectCache {
 public:
  ObjectCache() = default;
  ObjectCache(const ObjectCache&) = delete;
  ObjectCache& operator=(const ObjectCache&) = delete;

  // Sets every object of `kind` to `items` (a fresh list; each item must carry kind, apiVersion
  // and metadata). Objects missing from `items` are gone.
  void Replace(ObjectKind kind, const std::vector<nlohmann::json>& items);
  // Applies one watch event. ADDED and MODIFIED insert or replace, DELETED removes.
  void Apply(ObjectKind kind, EventType type, const nlohmann::json& object);

  Snapshot Get() const;
  // Blocks until the version is greater than `after` or `timeout` passes; returns the current
  // snapshot either way (the caller compares versions).
  Snapshot WaitForChange(uint64_t after, absl::Duration timeout) const;

  // The raw objects of a kind, keyed by "namespace/name" ("name" for cluster-scoped kinds).
  std::map<std::string, nlohmann::json> Objects(ObjectKind kind) const;

 private:
  // An object as the parser saw it. An object that fails validation after it was
  // valid keeps its last good parse in force (as a manifest file does in standalone mode): the API
  // server accepted it, so the problem is sockmesh's stricter rules, and dropping the Service
  // would cut its traffic.
  struct Converted {
    std::optional<ParsedManifests> last_good;
    std::string error;  // why the current object is not in force; "" when it is
  };
  struct KindState {
    bool listed = false;
    std::map<std::string, nlohmann::json> objects;  // by key
    std::map<std::string, Converted> converted;     // by key, like objects
  };

  void Upsert(ObjectKind kind, KindState& ks, const std::string& key, const nlohmann::json& object)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Rebuild() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<ObjectKind, KindState> kinds_ ABSL_GUARDED_BY(mu_);
  Snapshot snapshot_ ABSL_GUARDED_BY(mu_);
};

// "namespace/name", or "name" for a cluster-scoped object; "" when metadata.name is missing.
std::string ObjectKey(const nlohmann::json& object);

}  // namespace sockmesh::sources::kubernetes

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_OBJECT_CACHE_H_
