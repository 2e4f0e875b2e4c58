// SPDX-License-Identifier: Apache-2.0
// sockmesh-agent: the node agent.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdlib>
#include <iostream>

#include "userspace/agent/agent.h"
#include "userspace/agent/workload_status_file.h"
#include "userspace/log/log.h"
#include "userspace/sys/stop_signal.h"

int main(int argc, char** argv) {
  using sockmesh::agent::AgentOptions;
  namespace log = sockmesh::log;

  CLI::App app{
      "sockmesh-agent: loads the sockmesh socket load balancer into the kernel, attaches it to a\n"
      "cgroup v2 and keeps its maps equal to the desired state. The datapath is pinned under\n"
      "<bpffs>/sockmesh/<instance>/ and keeps working while the agent is stopped or restarted."};
  AgentOptions opts;
  bool standalone = true;
  bool cleanup = false;
  double resync_seconds = 30;
  std::string log_level = "info";
  opts.metrics_addr = "127.0.0.1:9464";

  app.add_flag("--standalone", standalone,
               "Serve a manifests directory from a control plane embedded in the agent (the same "
               "server and client code as with sockmesh-control); the default unless "
               "--control-plane is given");
  app.add_option("--control-plane", opts.control_plane,
                 "Follow sockmesh-control at ADDR:PORT instead of reading manifests: apply each "
                 "version it streams, ACK or NACK it, reconnect with backoff when it is away");
  app.add_option("--node-name", opts.node_name,
                 "Name this agent reports to the control plane (default: the host name, plus "
                 "/<instance> when --instance is not \"default\")");
  app.add_option("--manifests", opts.manifests_dir,
                 "Directory of Kubernetes-shaped YAML (v1 Service, discovery.k8s.io/v1 "
                 "EndpointSlice); reloaded when a file changes")
      ->check(CLI::ExistingDirectory);
  app.add_option("--cgroup", opts.cgroup,
                 "cgroup v2 directory whose processes use the mesh: absolute, or relative to the "
                 "cgroup2 mount; created if missing");
  app.add_flag("--allow-root-cgroup", opts.allow_root_cgroup,
               "Permit attaching to the root cgroup (every process on the machine)");
  app.add_option("--instance", opts.datapath.instance,
                 "Name of this datapath instance (pin directory name)")
      ->capture_default_str();
  app.add_option("--bpffs", opts.datapath.bpffs_root, "bpffs mount point (mounted if absent)")
      ->capture_default_str();
  app.add_option("--table-size", opts.table_size,
                 "Slots in each service's selection table (Maglev M): a prime from 251 to 65521")
      ->capture_default_str();
  app.add_option("--metrics-addr", opts.metrics_addr,
                 "Serve Prometheus metrics on ADDR:PORT (port 0 = any free port; empty = off)")
      ->capture_default_str();
  app.add_option("--resync-interval", resync_seconds,
                 "Seconds between re-reads of the kernel maps that repair drift")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  app.add_option("--max-services", opts.datapath.sizes.services,
                 "Capacity of the services map (0 = keep pinned size or default 16384)");
  app.add_option("--max-backends", opts.datapath.sizes.backends,
                 "Capacity of the backends map (0 = keep pinned size or default 65536)");
  app.add_option("--max-lut-entries", opts.datapath.sizes.lut,
                 "Capacity of the selection-table map (0 = keep pinned size or default 1048576)");
  std::string short_circuit = "auto";
  app.add_option("--short-circuit", short_circuit,
                 "Same-node loopback TCP of the mesh cgroup straight from socket to socket "
                 "(sockops + sk_msg). auto: on if the start-up probe shows intact data AND "
                 "back-pressure; on: data integrity only (a peer that stops reading may queue "
                 "without limit on kernels without back-pressure); off: not loaded, and one an "
                 "earlier run attached is detached")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  bool no_short_circuit = false;
  app.add_flag("--no-short-circuit", no_short_circuit, "Same as --short-circuit=off");
  double probe_timeout_ms = 2000;
  // Hidden: tests set 0 to exercise the failed-probe path.
  app.add_option("--short-circuit-probe-timeout-ms", probe_timeout_ms,
                 "Time limit of the short-circuit start-up probe")
      ->check(CLI::Range(0.0, 60000.0))
      ->group("");
  app.add_flag("--cleanup", cleanup,
               "Detach every program of --instance and remove its pins, then exit");
  app.add_option("--log-level", log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  log::Level level;
  log::ParseLevel(log_level, &level);
  log::SetMinLevel(level);

  if (cleanup) {
    absl::Status s =
        sockmesh::agent::CleanupInstance(opts.datapath.bpffs_root, opts.datapath.instance);
    if (s.ok()) s = sockmesh::agent::RemoveWorkloadStatus(opts.run_dir, opts.datapath.instance);
    if (!s.ok()) {
      log::Error("agent", "cleanup failed: ", s.message());
      return 1;
    }
    log::Info("agent", "instance \"", opts.datapath.instance,
              "\": programs detached and pins removed");
    return 0;
  }
  if (!opts.control_plane.empty()) {
    if (!opts.manifests_dir.empty() || app.count("--standalone") > 0) {
      std::cerr << "--control-plane excludes --standalone and --manifests (see --help)\n";
      return 2;
    }
    if (opts.cgroup.empty()) {
      std::cerr << "--cgroup is required (see --help)\n";
      return 2;
    }
  } else if (opts.manifests_dir.empty() || opts.cgroup.empty()) {
    std::cerr << "--manifests and --cgroup are required (see --help)\n";
    return 2;
  }
  // Standalone mode follows its embedded control plane under the same name.
  if (opts.node_name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    opts.node_name = host;
    if (opts.datapath.instance != "default") opts.node_name += "/" + opts.datapath.instance;
  }
  opts.resync_interval = absl::Seconds(resync_seconds);
  if (no_short_circuit) short_circuit = "off";
  opts.datapath.short_circuit = short_circuit != "off";
  opts.short_circuit_require_back_pressure = short_circuit == "auto";
  opts.short_circuit_probe_timeout = absl::Milliseconds(probe_timeout_ms);

  const std::atomic<bool>& stop = sockmesh::sys::InstallStopSignalHandlers();
  absl::StatusOr<std::unique_ptr<sockmesh::agent::Agent>> agent =
      sockmesh::agent::Agent::Start(opts);
  if (!agent.ok()) {
    log::Error("agent", agent.status().message());
    return 1;
  }
  absl::Status s = (*agent)->Run(stop);
  if (!s.ok()) {
    log::Error("agent", s.message());
    return 1;
  }
  return 0;
}
