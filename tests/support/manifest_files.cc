// SPDX-License-Identifier: Apache-2.0
#include "tests/support/manifest_files.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "gtest/gtest.h"

namespace sockmesh::testing {

void WriteManifest(const std::string& dir, const std::string& name, const std::string& content) {
  std::string tmp = absl::StrCat(dir, "/.", name, ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << "cannot write " << tmp;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, absl::StrCat(dir, "/", name), ec);
  ASSERT_FALSE(ec) << "rename " << tmp << ": " << ec.message();
}

std::string OneTcpServiceYaml(const std::string& name, const std::string& vip, uint16_t vip_port,
                              const std::vector<std::string>& endpoints, uint16_t target_port,
                              const std::string& algorithm) {
  std::string list;
  for (const std::string& ip : endpoints) absl::StrAppend(&list, "  - addresses: [\"", ip, "\"]\n");
  return absl::Substitute(R"(apiVersion: v1
kind: Service
metadata:
  name: $0
  namespace: test
  annotations:
    sockmesh.io/lb-algorithm: $4
spec:
  clusterIP: $1
  ports:
    - name: tcp
      port: $2
      targetPort: tcp
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $0-1
  namespace: test
  labels:
    kubernetes.io/service-name: $0
addressType: IPv4
endpoints:
$5ports:
  - name: tcp
    port: $3
    protocol: TCP
)",
                          name, vip, vip_port, target_port, algorithm, list);
}

}  // namespace sockmesh::testing
