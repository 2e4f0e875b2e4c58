// SPDX-License-Identifier: Apache-2.0
// sockmesh-control: reads the desired state from a source (a manifests directory or the Kubernetes
// API) and streams versions of it to every sockmesh-agent started with --control-plane.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "control_plane/server/control_health.h"
#include "control_plane/server/control_metrics.h"
#include "control_plane/server/control_plane_service.h"
#include "control_plane/server/desired_state_source.h"
#include "control_plane/server/kubernetes_api_source.h"
#include "control_plane/server/stream_transport.h"
#include "control_plane/server/versioned_state.h"
#include "control_plane/sources/kubernetes/in_cluster_config.h"
#include "userspace/log/log.h"
#include "userspace/sys/stop_signal.h"

namespace {

namespace cp = sockmesh::cp;
namespace log = sockmesh::log;
namespace k8s = sockmesh::sources::kubernetes;

constexpr char kLog[] = "control";
// How long one wait for source changes lasts, so a stop request is seen promptly.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(250);

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sockmesh-control: the sockmesh control plane. Reads Services, EndpointSlices, Pods,\n"
      "Namespaces and WorkloadEntries from a manifests directory or the Kubernetes API and "
      "streams\n"
      "versioned snapshots and deltas of them (services, workloads, identities) over gRPC\n"
      "(sockmesh.v1.ControlPlane) to every sockmesh-agent --control-plane ADDR."};
  std::string manifests_dir;
  std::string listen = "127.0.0.1:15010";
  std::string metrics_addr = "127.0.0.1:15014";
  std::string log_level = "info";
  app.add_option("--manifests", manifests_dir,
                 "Directory of Kubernetes-shaped YAML (v1 Service, discovery.k8s.io/v1 "
                 "EndpointSlice); reloaded when a file changes")
      ->check(CLI::ExistingDirectory);
  bool in_cluster = false;
  std::string kube_server, kube_token_file, kube_ca_file;
  app.add_flag("--kubernetes", in_cluster,
               "Follow the Kubernetes API with the Pod's service account (in-cluster config)");
  app.add_option("--kube-server", kube_server,
                 "Follow the Kubernetes API at this https:// URL (with --kube-ca-file)");
  app.add_option("--kube-token-file", kube_token_file,
                 "Bearer token file for --kube-server (re-read before every request)");
  app.add_option("--kube-ca-file", kube_ca_file,
                 "PEM CA bundle that signed --kube-server's certificate");
  app.add_option("--listen", listen, "gRPC listen address ADDR:PORT (plaintext)")
      ->capture_default_str();
  app.add_option("--metrics-addr", metrics_addr,
                 "Serve Prometheus metrics on ADDR:PORT (port 0 = any free port; empty = off)")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Exactly one source. Checked here rather than with CLI11's excludes() so the messages can say
  // what to do.
  const bool explicit_kube =
      !kube_server.empty() || !kube_token_file.empty() || !kube_ca_file.empty();
  const int sources_given =
      (manifests_dir.empty() ? 0 : 1) + (in_cluster ? 1 : 0) + (explicit_kube ? 1 : 0);
  if (sources_given != 1) {
    std::cerr << "sockmesh-control: "
              << (sources_given == 0 ? "no source: " : "conflicting sources: ")
              << "give exactly one of --manifests DIR, --kubernetes, or --kube-server URL "
                 "--kube-ca-file FILE [--kube-token-file FILE]\n";
    return 2;
  }
  if (explicit_kube && (kube_server.empty() || kube_ca_file.empty())) {
    std::cerr << "sockmesh-control: --kube-server and --kube-ca-file are both required when "
                 "following an explicit API server (--kube-token-file is optional)\n";
    return 2;
  }

  // Debian's Abseil is built with its debug-mode lock-order checking on: every absl::Mutex lock,
  // gRPC's own included, then updates a process-wide lock graph under a global lock. With a
  // thousand agent streams that showed as several percent of the control plane's CPU in a profile.
  // The unit tests keep the checking on, and that is where lock-order mistakes are caught.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  log::Level level;
  log::ParseLevel(log_level, &level);
  log::SetMinLevel(level);
  const std::atomic<bool>& stop = sockmesh::sys::InstallStopSignalHandlers();

  cp::VersionedState state;
  // Before the metrics listener that serves it, so it outlives the listener's threads.
  cp::ControlHealth health(
      cp::ControlHealthOptions{.source = !manifests_dir.empty() ? "manifests " + manifests_dir
                                         : in_cluster           ? "Kubernetes API (in-cluster)"
                                                                : "Kubernetes API " + kube_server,
                               .version = [&state] { return state.Current().version; }});
  absl::StatusOr<std::unique_ptr<cp::ControlMetrics>> metrics =
      cp::ControlMetrics::Create(metrics_addr);
  if (!metrics.ok()) {
    log::Error(kLog, metrics.status().message());
    return 1;
  }
  if ((*metrics)->port() != 0) {
    log::Info(kLog, "metrics on http://", metrics_addr.substr(0, metrics_addr.rfind(':')), ":",
              (*metrics)->port(), "/metrics (health: /healthz, /readyz)");
  }
  if ((*metrics)->server() != nullptr) health.ServeOn(*(*metrics)->server());

  std::unique_ptr<cp::DesiredStateSource> source;
  if (!manifests_dir.empty()) {
    auto manifests = cp::ManifestDirectorySource::Create(manifests_dir);
    if (!manifests.ok()) {
      log::Error(kLog, "--manifests ", manifests_dir, ": ", manifests.status().message());
      return 1;
    }
    source = *std::move(manifests);
    log::Info(kLog, "source: manifests in ", manifests_dir);
  } else {
    absl::StatusOr<k8s::KubeApiConfig> config =
        in_cluster ? k8s::InClusterConfig()
                   : k8s::ExplicitConfig(kube_server, kube_token_file, kube_ca_file);
    if (!config.ok()) {
      log::Error(kLog, in_cluster ? "--kubernetes" : "--kube-server", ": ",
                 config.status().message());
      return 1;
    }
    std::string server_url = config->server;
    auto kube = cp::KubernetesApiSource::Start(*std::move(config));
    if (!kube.ok()) {
      log::Error(kLog, "Kubernetes API ", server_url, ": ", kube.status().message());
      return 1;
    }
    source = *std::move(kube);
    log::Info(kLog, "source: Kubernetes API at ", server_url);
  }
  // The manifests source publishes the directory's content here; the API source its first
  // complete list if it is already in.
  source->WaitAndPublish(absl::ZeroDuration(), state, **metrics);
  health.SetSourceSynced(source->Synced());

  cp::ControlPlaneService service(&state, metrics->get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  cp::ApplyStreamTransport(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    log::Error(kLog, "--listen ", listen, ": cannot listen (address in use or invalid)");
    return 1;
  }
  const std::string serving = absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
  log::Info(kLog, "serving sockmesh.v1.ControlPlane on ", serving);
  health.SetServing(serving);

  while (!stop.load()) {
    health.Heartbeat();
    source->WaitAndPublish(kWaitSlice, state, **metrics);
    health.SetSourceSynced(source->Synced());
  }
  log::Info(kLog, "stopping; agents keep their last good state");
  service.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
