// SPDX-License-Identifier: Apache-2.0
// sockmesh-control: reads the desired state from a source (a manifests directory) and streams
// versions of it to every sockmesh-agent started with --control-plane.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_join.h"
#include "control_plane/server/control_metrics.h"
#include "control_plane/server/control_plane_service.h"
#include "control_plane/server/versioned_state.h"
#include "control_plane/sources/manifest_directory.h"
#include "userspace/log/log.h"

namespace {

namespace cp = sockmesh::cp;
namespace log = sockmesh::log;
namespace sources = sockmesh::sources;

constexpr char kLog[] = "control";
// How long one wait for manifest changes lasts, so a stop request is seen promptly.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(250);

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

size_t BackendCount(const sockmesh::model::DesiredState& state) {
  size_t n = 0;
  for (const auto& [frontend, entry] : state) n += entry.backends.size();
  return n;
}

// Reloads the directory and publishes the result. Broken files keep their last good parse (see
// ManifestDirectory), so a typo never withdraws services from the agents.
void Reload(sources::ManifestDirectory& manifests, cp::VersionedState& state,
            cp::ControlMetrics& metrics) {
  absl::StatusOr<sources::ReloadResult> reload = manifests.Reload();
  if (!reload.ok()) {
    metrics.RecordSourceError();
    log::Error(kLog, "cannot read manifests: ", reload.status().message(),
               "; the current version stays");
    return;
  }
  for (const std::string& note : reload->notes) log::Info("manifests", note);
  for (const std::string& error : reload->errors) log::Error("manifests", error);
  if (!reload->errors.empty()) metrics.RecordSourceError();
  if (!reload->changed_files.empty()) {
    log::Info("manifests", "changed: ", absl::StrJoin(reload->changed_files, ", "));
  }
  bool changed = state.Update(reload->state);
  cp::StateVersion current = state.Current();
  metrics.SetState(current.version, current.state->size(), BackendCount(*current.state));
  if (changed) {
    log::Info(kLog, "version ", current.version, ": ", current.state->size(), " services, ",
              BackendCount(*current.state), " backends");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sockmesh-control: the sockmesh control plane. Reads Services and EndpointSlices from a\n"
      "manifests directory and streams versioned snapshots and deltas of them over gRPC\n"
      "(sockmesh.v1.ControlPlane) to every sockmesh-agent --control-plane ADDR."};
  std::string manifests_dir;
  std::string listen = "127.0.0.1:15010";
  std::string metrics_addr = "127.0.0.1:15014";
  std::string log_level = "info";
  app.add_option("--manifests", manifests_dir,
                 "Directory of Kubernetes-shaped YAML (v1 Service, discovery.k8s.io/v1 "
                 "EndpointSlice); reloaded when a file changes")
      ->check(CLI::ExistingDirectory)
      ->required();
  app.add_option("--listen", listen, "gRPC listen address ADDR:PORT (plaintext)")
      ->capture_default_str();
  app.add_option("--metrics-addr", metrics_addr,
                 "Serve Prometheus metrics on ADDR:PORT (port 0 = any free port; empty = off)")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  log::Level level;
  log::ParseLevel(log_level, &level);
  log::SetMinLevel(level);
  InstallSignalHandlers();

  absl::StatusOr<std::unique_ptr<cp::ControlMetrics>> metrics =
      cp::ControlMetrics::Create(metrics_addr);
  if (!metrics.ok()) {
    log::Error(kLog, metrics.status().message());
    return 1;
  }
  if ((*metrics)->port() != 0) {
    log::Info(kLog, "metrics on http://", metrics_addr.substr(0, metrics_addr.rfind(':')), ":",
              (*metrics)->port(), "/metrics");
  }

  cp::VersionedState state;
  sources::ManifestDirectory manifests(manifests_dir);
  absl::StatusOr<sources::ManifestWatcher> watcher =
      sources::ManifestWatcher::Create(manifests_dir);
  if (!watcher.ok()) {
    log::Error(kLog, watcher.status().message());
    return 1;
  }
  // The first version agents see is the directory's content, not the empty placeholder.
  Reload(manifests, state, **metrics);

  cp::ControlPlaneService service(&state, metrics->get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    log::Error(kLog, "--listen ", listen, ": cannot listen (address in use or invalid)");
    return 1;
  }
  log::Info(kLog, "serving sockmesh.v1.ControlPlane on ", listen.substr(0, listen.rfind(':')), ":",
            port);

  while (!g_stop.load()) {
    absl::StatusOr<bool> changed = watcher->WaitForChange(kWaitSlice);
    if (!changed.ok()) {
      log::Warn(kLog, "manifest watch: ", changed.status().message(), "; watching again");
      absl::SleepFor(absl::Seconds(1));
      auto again = sources::ManifestWatcher::Create(manifests_dir);
      if (again.ok()) watcher = std::move(again);
      continue;
    }
    if (*changed) Reload(manifests, state, **metrics);
  }
  log::Info(kLog, "stopping; agents keep their last good state");
  service.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
