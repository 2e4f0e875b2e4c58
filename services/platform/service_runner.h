// SPDX-License-Identifier: Apache-2.0
// What every platform service binary shares: the gRPC and health listeners, logging, and an
// orderly stop on SIGTERM/SIGINT.
#ifndef SOCKMESH_SERVICES_PLATFORM_SERVICE_RUNNER_H_
#define SOCKMESH_SERVICES_PLATFORM_SERVICE_RUNNER_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "grpcpp/impl/service_type.h"

namespace sockmesh::platform {

struct ServiceOptions {
  std::string name;           // "user", "order", ...: in logs and the health document.
  std::string listen;         // gRPC, "A.B.C.D:PORT".
  std::string health_listen;  // HTTP /health, "A.B.C.D:PORT".
  std::string log_level = "info";
};

// Adds --listen, --health-listen and --log-level with the given defaults.
void AddServiceFlags(CLI::App& app, ServiceOptions& options);

// Parses --log-level; false (after printing why) when invalid.
bool ApplyLogLevel(const ServiceOptions& options);

// Serves `services` until SIGTERM or SIGINT, then stops the listeners (in-flight calls get up to
// 5 s). Returns the process exit code.
int RunService(const ServiceOptions& options, const std::vector<grpc::Service*>& services);

}  // namespace sockmesh::platform

#endif  // SOCKMESH_SERVICES_PLATFORM_SERVICE_RUNNER_H_
