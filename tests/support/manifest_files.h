// SPDX-License-Identifier: Apache-2.0
// Manifests for tests that drive the agent or the control plane through a directory.
#ifndef SOCKMESH_TESTS_SUPPORT_MANIFEST_FILES_H_
#define SOCKMESH_TESTS_SUPPORT_MANIFEST_FILES_H_

#include <cstdint>
#include <string>
#include <vector>

namespace sockmesh::testing {

// Writes through a dot-file and a rename, as editors and ConfigMap volumes do, so a reader never
// sees half a file (the directory reader skips dot-files). A failure is a gtest fatal failure.
void WriteManifest(const std::string& dir, const std::string& name, const std::string& content);

// A Service `test/<name>` with one TCP port (`vip`:`vip_port`, port name "tcp") and its
// EndpointSlice: one IPv4 endpoint per address, all on `target_port`.
std::string OneTcpServiceYaml(const std::string& name, const std::string& vip, uint16_t vip_port,
                              const std::vector<std::string>& endpoints, uint16_t target_port,
                              const std::string& algorithm = "random");

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_MANIFEST_FILES_H_
