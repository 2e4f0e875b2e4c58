// SPDX-License-Identifier: Apache-2.0
// Where the Kubernetes API server is and how to authenticate to it: either the in-cluster
// convention (environment variables set by the kubelet plus the mounted service-account secret) or
// an explicit server URL, token file and CA file given on the command line.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_IN_CLUSTER_CONFIG_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_IN_CLUSTER_CONFIG_H_

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace sockmesh::sources::kubernetes {

// Where the kubelet mounts a Pod's service-account token, CA bundle and namespace.
inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct KubeApiConfig {
  std::string server;  // "https://10.96.0.1:443", no trailing slash
  // Read again before every request rather than once: the kubelet rotates projected
  // service-account tokens (about hourly), and a cached token would start failing with 401.
  // Empty means no Authorization header.
  std::filesystem::path token_file;
  // PEM bundle that must have signed the server's certificate. Never empty: the client refuses to
  // talk to an API server it cannot verify.
  std::filesystem::path ca_file;
};

// The in-cluster configuration: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (an
// IPv6 host is bracketed), `token` and `ca.crt` in `service_account_dir`. FailedPrecondition when
// the variables are unset (not running in a Pod); NotFound / PermissionDenied naming the file
// when the token or CA cannot be read.
absl::StatusOr<KubeApiConfig> InClusterConfig(
    const std::filesystem::path& service_account_dir = kServiceAccountDir);

// An explicit configuration (for flags such as --kube-server, --kube-token-file, --kube-ca-file).
// `server` must be an https:// URL; `token_file` may be empty; both files must be readable.
absl::StatusOr<KubeApiConfig> ExplicitConfig(std::string server, std::filesystem::path token_file,
                                             std::filesystem::path ca_file);

// The token with surrounding whitespace removed ("" when config.token_file is empty).
absl::StatusOr<std::string> ReadToken(const KubeApiConfig& config);

}  // namespace sockmesh::sources::kubernetes

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_KUBERNETES_IN_CLUSTER_CONFIG_H_
