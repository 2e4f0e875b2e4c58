// SPDX-License-Identifier: Apache-2.0
// Runs tests/support/fake_kube_apiserver.py as a child process: an HTTPS server on 127.0.0.1 that
// replays a scripted list/watch conversation in the Kubernetes API's JSON shape and logs every
// request. The certificates are made at test time with the openssl CLI: a CA that signed the
// server's certificate (for IP 127.0.0.1), and a second, unrelated CA for refusal tests.
#ifndef SOCKMESH_TESTS_SUPPORT_FAKE_KUBE_APISERVER_H_
#define SOCKMESH_TESTS_SUPPORT_FAKE_KUBE_APISERVER_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace sockmesh::testing {

class FakeKubeApiServer {
 public:
  static constexpr char kToken[] = "test-token-3f9a";

  // Starts the server on `script` (see the .py file for its format). Waits up to 10 s for it.
  static absl::StatusOr<std::unique_ptr<FakeKubeApiServer>> Start(const nlohmann::json& script);
  FakeKubeApiServer(const FakeKubeApiServer&) = delete;
  FakeKubeApiServer& operator=(const FakeKubeApiServer&) = delete;
  // Kills the server (by its PID only) and removes the temporary directory.
  ~FakeKubeApiServer();

  std::string url() const;  // "https://127.0.0.1:<port>"
  const std::filesystem::path& ca_file() const { return ca_file_; }
  const std::filesystem::path& other_ca_file() const { return other_ca_file_; }
  const std::filesystem::path& token_file() const { return token_file_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Every request so far, in order: {"method", "path", "query": {...}, "authorization"}.
  std::vector<nlohmann::json> Requests() const;

 private:
  explicit FakeKubeApiServer(std::filesystem::path dir) : dir_(std::move(dir)) {}

  std::filesystem::path dir_;
  std::filesystem::path ca_file_, other_ca_file_, token_file_, log_file_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// Helpers that build objects in the API's JSON shape.
nlohmann::json ServiceJson(const std::string& ns, const std::string& name,
                           const std::string& cluster_ip, int port, int target_port,
                           const std::string& resource_version);
nlohmann::json SliceJson(const std::string& ns, const std::string& name, const std::string& service,
                         const std::vector<std::string>& addresses, int port,
                         const std::string& resource_version);
// A ServiceList/EndpointSliceList/...: items lose kind and apiVersion, as in the real API.
nlohmann::json ListJson(const std::string& list_kind, const std::string& api_version,
                        const std::string& resource_version, std::vector<nlohmann::json> items);
nlohmann::json EventJson(const std::string& type, const nlohmann::json& object);
nlohmann::json BookmarkJson(const std::string& kind, const std::string& api_version,
                            const std::string& resource_version);
nlohmann::json GoneJson();  // ERROR event carrying a Status with code 410

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_FAKE_KUBE_APISERVER_H_
