// SPDX-License-Identifier: Apache-2.0
// Writes AuthorizationPolicy status conditions back to the Kubernetes API (PATCH of the status
// subresource, a JSON merge patch of status.conditions), so `kubectl get sap` shows whether each
// policy was accepted. Only policies that came from the API, and only when their conditions
// changed since the last successful write; lastTransitionTime moves only when a condition's
// status does (metav1.Condition's rule).
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_POLICY_STATUS_WRITER_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_POLICY_STATUS_WRITER_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "control_plane/model/authorization_policy.h"
#include "control_plane/sources/kubernetes/kube_client.h"

namespace sockmesh::sources::kubernetes {

// "/apis/sockmesh.io/v1alpha1/namespaces/NS/authorizationpolicies/NAME/status"
std::string PolicyStatusPath(const std::string& namespace_name, const std::string& name);

class PolicyStatusWriter {
 public:
  explicit PolicyStatusWriter(const KubeClient* client) : client_(client) {}

  // Patches what changed; returns one message per failed write (retried on the next call).
  std::vector<std::string> Write(const std::vector<model::PolicyStatus>& statuses,
                                 absl::Time now = absl::Now());

  // The merge patch for `status`, with the transition times of `previous` (by condition type:
  // status and time) kept where the status did not change. Exposed for tests.
  struct Transition {
    bool status = false;
    std::string time;  // RFC 3339
  };
  static std::string Patch(const model::PolicyStatus& status,
                           std::map<std::string, Transition>& transitions, absl::Time now);

 private:
  struct Written {
    std::vector<model::PolicyCondition> conditions;
    std::map<std::string, Transition> transitions;  // by condition type
  };
  const KubeClient* client_;
  std::map<std::pair<std::string, std::string>, Written> written_;
};

}  // namespace sockmesh::sources::kubernetes

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_POLICY_STATUS_WRITER_H_
