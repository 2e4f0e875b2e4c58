// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/kubernetes/in_cluster_config.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::sources::kubernetes {
namespace {

// Service-account tokens are about 1 KiB; a CA bundle a few KiB. Anything far larger is not one.
constexpr std::streamsize kMaxFileBytes = 1024 * 1024;

absl::StatusOr<std::string> ReadSmallFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return sys::ErrnoToStatus(errno, absl::StrCat("cannot read ", path.string()));
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), kMaxFileBytes + 1);
  text.resize(in.gcount());
  if (in.bad()) return sys::ErrnoToStatus(errno, absl::StrCat("cannot read ", path.string()));
  if (static_cast<std::streamsize>(text.size()) > kMaxFileBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(path.string(), ": larger than 1 MiB"));
  }
  return text;
}

absl::Status CheckReadable(const std::filesystem::path& path, absl::string_view what) {
  absl::StatusOr<std::string> text = ReadSmallFile(path);
  if (!text.ok()) return text.status();
  if (absl::StripAsciiWhitespace(*text).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path.string(), " is empty"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KubeApiConfig> InClusterConfig(const std::filesystem::path& service_account_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return absl::FailedPreconditionError(
        "not running in a Kubernetes Pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
        "must be set");
  }
  const absl::string_view host_view(host);
  // An IPv6 literal needs brackets in a URL, or its colons read as the port separator.
  const bool ipv6 = absl::StrContains(host_view, ':') && !absl::StartsWith(host_view, "[");
  std::string server = ipv6 ? absl::StrCat("https://[", host_view, "]:", port)
                            : absl::StrCat("https://", host_view, ":", port);
  return ExplicitConfig(std::move(server), service_account_dir / "token",
                        service_account_dir / "ca.crt");
}

absl::StatusOr<KubeApiConfig> ExplicitConfig(std::string server, std::filesystem::path token_file,
                                             std::filesystem::path ca_file) {
  if (!absl::StartsWith(server, "https://") || server.size() == 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("Kubernetes API server \"", server, "\": must be an https:// URL"));
  }
  while (absl::EndsWith(server, "/")) server.pop_back();
  if (ca_file.empty()) {
    return absl::InvalidArgumentError("Kubernetes API server: a CA file is required");
  }
  if (absl::Status s = CheckReadable(ca_file, "CA file"); !s.ok()) return s;
  if (!token_file.empty()) {
    if (absl::Status s = CheckReadable(token_file, "token file"); !s.ok()) return s;
  }
  return KubeApiConfig{std::move(server), std::move(token_file), std::move(ca_file)};
}

absl::StatusOr<std::string> ReadToken(const KubeApiConfig& config) {
  if (config.token_file.empty()) return std::string();
  absl::StatusOr<std::string> text = ReadSmallFile(config.token_file);
  if (!text.ok()) return text.status();
  return std::string(absl::StripAsciiWhitespace(*text));
}

}  // namespace sockmesh::sources::kubernetes
