// SPDX-License-Identifier: Apache-2.0
#include "services/platform/service_runner.h"

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "services/platform/health_server.h"
#include "userspace/log/log.h"
#include "userspace/sys/stop_signal.h"

namespace sockmesh::platform {

void AddServiceFlags(CLI::App& app, ServiceOptions& options) {
  app.add_option("--listen", options.listen, "gRPC listen address")
      ->type_name("ADDR:PORT")
      ->capture_default_str();
  app.add_option("--health-listen", options.health_listen,
                 "HTTP listen address for GET /health (empty: none)")
      ->type_name("ADDR:PORT")
      ->capture_default_str();
  app.add_option("--log-level", options.log_level, "debug, info, warning or error")
      ->capture_default_str();
}

bool ApplyLogLevel(const ServiceOptions& options) {
  log::Level level;
  if (!log::ParseLevel(options.log_level, &level)) {
    std::cerr << "--log-level: invalid value \"" << options.log_level
              << "\": must be debug, info, warning or error\n";
    return false;
  }
  log::SetMinLevel(level);
  return true;
}

int RunService(const ServiceOptions& options, const std::vector<grpc::Service*>& services) {
  const std::atomic<bool>& stop = sys::InstallStopSignalHandlers();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &grpc_port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || grpc_port == 0) {
    log::Error(options.name, "cannot listen for gRPC on ", options.listen);
    return 1;
  }
  std::unique_ptr<HealthServer> health;
  if (!options.health_listen.empty()) {
    absl::StatusOr<std::unique_ptr<HealthServer>> started =
        HealthServer::Start(options.name, options.health_listen);
    if (!started.ok()) {
      log::Error(options.name, "cannot serve /health: ", started.status().ToString());
      server->Shutdown();
      return 1;
    }
    health = std::move(*started);
  }
  log::Info(options.name, "serving gRPC on ", options.listen, ", GET /health on ",
            options.health_listen.empty() ? "(off)" : options.health_listen);
  while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  log::Info(options.name, "stop signal received, shutting down");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  health.reset();
  log::Info(options.name, "stopped");
  return 0;
}

}  // namespace sockmesh::platform
