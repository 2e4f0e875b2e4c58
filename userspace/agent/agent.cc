// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/agent.h"

#include <algorithm>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "userspace/agent/cgroup.h"
#include "userspace/agent/control_plane_client.h"
#include "userspace/agent/embedded_control_plane.h"
#include "userspace/agent/short_circuit_probe.h"
#include "userspace/agent/workload_cgroup.h"
#include "userspace/lb/maglev.h"
#include "userspace/log/log.h"

namespace sockmesh::agent {
namespace {

constexpr char kLog[] = "agent";

// How long one wait for manifest changes lasts, so a stop request is seen promptly.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(250);

// How often the workload cgroups under the mesh cgroup are listed (`sockmeshctl exec --workload`
// creates them at any time). A poll rather than inotify: cgroupfs reports no directory creation
// events to inotify, and listing two directory levels costs microseconds.
constexpr absl::Duration kCgroupScanInterval = absl::Seconds(1);

bool SameCgroups(const std::vector<WorkloadCgroup>& a, const std::vector<WorkloadCgroup>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i].workload == b[i].workload) || a[i].cgroup_id != b[i].cgroup_id) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> PrepareCgroup(const std::string& arg, bool allow_root) {
  absl::StatusOr<std::string> mount = FindCgroup2Mount();
  if (!mount.ok()) return mount.status();
  absl::StatusOr<std::string> path = ResolveCgroupPath(arg, *mount);
  if (!path.ok()) return path.status();
  if (*path == *mount && !allow_root) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cgroup: \"", arg, "\" is the root cgroup (", *mount,
        "): that would balance every process on the machine; pass --allow-root-cgroup if you mean "
        "it (a DaemonSet on a dedicated node), or use a child cgroup"));
  }
  if (absl::Status s = EnsureCgroup(*path); !s.ok()) return s;
  return path;
}

bool Agent::StartShortCircuit() {
  if (!options_.datapath.short_circuit) {
    log::Info(kLog, "short-circuit: disabled by --short-circuit=off",
              datapath_->report().short_circuit_detached
                  ? "; detached the one an earlier run attached"
                  : "");
    return false;
  }
  Datapath* dp = datapath_.get();
  absl::Time start = absl::Now();
  ShortCircuitProbeOptions probe_options;
  probe_options.cgroup_path = options_.datapath.cgroup_path;
  probe_options.timeout = options_.short_circuit_probe_timeout;
  probe_options.check_back_pressure = options_.short_circuit_require_back_pressure;
  probe_options.redirects = [dp]() -> absl::StatusOr<uint64_t> {
    absl::StatusOr<std::vector<uint64_t>> c = dp->ReadCounters();
    if (!c.ok()) return c.status();
    return (*c)[SM_CNT_SC_REDIRECT];
  };
  absl::Status probe = ProbeShortCircuit(probe_options);
  if (probe.ok()) {
    log::Info(kLog, "short-circuit: enabled (probe: 1 MiB each way between loopback sockets in ",
              options_.datapath.cgroup_path, " arrived intact through the redirect",
              options_.short_circuit_require_back_pressure
                  ? " and a non-reading peer held the sender back"
                  : "; back-pressure NOT checked: forced by --short-circuit=on",
              ", in ", absl::FormatDuration(absl::Now() - start), ")");
    return true;
  }
  absl::Status off = datapath_->DisableShortCircuit();
  log::Warn(kLog, "short-circuit: disabled: start-up probe failed: ", probe.message(),
            absl::StartsWith(probe.message(), kNoBackPressure)
                ? " (--short-circuit=on forces it, at the risk of unbounded socket memory)"
                : "",
            off.ok() ? "" : absl::StrCat(" (and detaching it failed: ", off.message(), ")"));
  return false;
}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(const AgentOptions& options) {
  if (!lb::IsSupportedMaglevTableSize(options.table_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--table-size: invalid value ", options.table_size,
                     ": must be one of 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521"));
  }
  std::unique_ptr<Agent> agent(new Agent(options));
  absl::StatusOr<std::string> cgroup = PrepareCgroup(options.cgroup, options.allow_root_cgroup);
  if (!cgroup.ok()) return cgroup.status();
  agent->options_.datapath.cgroup_path = *cgroup;

  absl::StatusOr<std::unique_ptr<Datapath>> dp = Datapath::Start(agent->options_.datapath);
  if (!dp.ok()) return dp.status();
  agent->datapath_ = *std::move(dp);
  const AttachReport& r = agent->datapath_->report();
  log::Info(kLog, "datapath instance \"", options.datapath.instance, "\" on cgroup ", *cgroup, ": ",
            r.attached.size(), " programs attached, ", r.adopted.size(), " adopted from pins, ",
            r.removed.size(), " stale links removed",
            r.removed.empty() ? "" : absl::StrCat(" (", absl::StrJoin(r.removed, ","), ")"),
            "; maps reused: ", r.reused_maps.empty() ? "none" : absl::StrJoin(r.reused_maps, ","));
  // Before the metrics server: the probe forks, and the child should not inherit its threads.
  bool short_circuit = agent->StartShortCircuit();

  Datapath* raw = agent->datapath_.get();
  auto metrics =
      metrics::AgentMetrics::Create(options.metrics_addr, [raw] { return raw->ReadCounters(); });
  if (!metrics.ok()) return metrics.status();
  agent->metrics_ = *std::move(metrics);
  agent->metrics_->SetProgramsAttached(agent->datapath_->programs_attached());
  agent->metrics_->SetShortCircuitEnabled(short_circuit);
  agent->health_ = std::make_unique<AgentHealth>(AgentHealthOptions{
      .programs_expected = agent->datapath_->load_balancer_programs(),
      .programs_attached = [raw] { return raw->LoadBalancerProgramsAttached(); },
      .control_plane = options.control_plane.empty() ? "embedded" : options.control_plane});
  agent->health_->SetShortCircuit(short_circuit);
  if (metrics::MetricsServer* server = agent->metrics_->server()) agent->health_->ServeOn(*server);
  agent->conn_labels_ = std::make_unique<ConnStatsLabeler>(raw, *cgroup);
  agent->metrics_->AddKernelMetrics([labels = agent->conn_labels_.get()] { return labels->Read(); },
                                    [dir = raw->maps_dir()] { return ReadMapFills(dir); });
  agent->policy_labels_ = std::make_unique<PolicyDecisionLabeler>(raw->maps().policy_decisions_fd);
  agent->metrics_->AddPolicyMetrics(
      [labels = agent->policy_labels_.get()] { return labels->Read(); });
  if (agent->metrics_->port() != 0) {
    log::Info(kLog, "metrics on http://",
              options.metrics_addr.substr(0, options.metrics_addr.rfind(':')), ":",
              agent->metrics_->port(), "/metrics");
  }

  absl::StatusOr<MapSync> sync = MapSync::Recover(agent->service_maps(), options.table_size);
  if (!sync.ok()) return sync.status();
  agent->sync_.emplace(*std::move(sync));
  DatapathMaps& maps = agent->datapath_->maps();
  absl::StatusOr<IdentitySync> identities = IdentitySync::Recover(
      IdentityMaps{.ips = &maps.ip_identity, .cgroups = &maps.cgroup_identity});
  if (!identities.ok()) return identities.status();
  agent->identity_sync_.emplace(*std::move(identities));
  absl::StatusOr<PolicySync> policy =
      PolicySync::Recover(PolicyMaps{.rows = &maps.policy_rows,
                                     .ips = &maps.ip_policy_endpoint,
                                     .cgroups = &maps.cgroup_policy_endpoint,
                                     .flow_gate = &maps.flow_gate});
  if (!policy.ok()) return policy.status();
  agent->policy_sync_.emplace(*std::move(policy));
  log::Info(kLog, "recovered ", agent->sync_->service_count(), " services from the kernel maps",
            agent->sync_->orphans_removed() ? absl::StrCat(" (", agent->sync_->orphans_removed(),
                                                           " half-written entries removed)")
                                            : "");
  return agent;
}

ServiceMaps Agent::service_maps() { return ServiceMapsOf(datapath_->maps()); }

absl::Status Agent::Run(const std::atomic<bool>& stop) {
  if (!options_.control_plane.empty()) return RunClient(stop, nullptr);
  // Standalone: the manifests go through an in-process control plane, and the agent follows it
  // exactly as it follows a remote one.
  auto embedded = EmbeddedControlPlane::Start(options_.manifests_dir,
                                              [this](size_t files_in_error, bool unreadable) {
                                                if (unreadable || files_in_error > 0)
                                                  metrics_->RecordManifestError();
                                                if (!unreadable)
                                                  metrics_->SetManifestFilesInError(files_in_error);
                                              });
  if (!embedded.ok()) return embedded.status();
  log::Info(kLog, "standalone: manifests in ", options_.manifests_dir,
            " served by the embedded control plane");
  return RunClient(stop, embedded->get());
}

absl::Status Agent::ApplyVersion(const model::DesiredState& state,
                                 const v1::CompiledPolicy& policy) {
  absl::MutexLock lock(&client_mu_);
  // Checked before anything is written, so an invalid policy leaves the services untouched too.
  if (absl::Status s = ValidateCompiledPolicy(policy); !s.ok()) {
    log::Error("policy", s.message());
    return s;
  }
  SyncReport report = sync_->Apply(state);
  metrics_->RecordSync(report.failed == 0, report.entries_written, report.entries_deleted,
                       report.failed);
  if (report.failed == 0) {
    if (absl::Status s = ApplyPolicy(policy); !s.ok()) {
      health_->RecordSync(std::string(s.message()));
      if (have_good_state_) (void)sync_->Apply(good_state_);
      metrics_->SetServices(sync_->service_count());
      return s;
    }
    health_->RecordSync("");
    conn_labels_->SetServices(state);
    policy_labels_->SetNames(NamePolicy(policy, state.workloads));
    good_state_ = state;
    have_good_state_ = true;
    SyncIdentities(&state.workloads);
    metrics_->SetServices(sync_->service_count());
    log::Info("sync", report.Summary());
    return absl::OkStatus();
  }
  for (const std::string& e : report.errors) log::Error("sync", e);
  // Services of this version that did apply are rolled back too: the datapath runs one version,
  // the one the control plane was told about, not a mix. Before the first good version there is
  // nothing to roll back to (the maps hold a previous agent's work, which the model cannot be
  // rebuilt from), so the failed services simply keep what the kernel has.
  if (have_good_state_) {
    SyncReport rollback = sync_->Apply(good_state_);
    for (const std::string& e : rollback.errors) log::Error("sync", "rolling back: ", e);
  }
  metrics_->SetServices(sync_->service_count());
  absl::Status failed = absl::FailedPreconditionError(
      absl::StrCat(report.failed, " of ", state.size(),
                   " services cannot be written: ", absl::StrJoin(report.errors, "; ")));
  health_->RecordSync(std::string(failed.message()));
  return failed;
}

absl::Status Agent::ApplyPolicy(const v1::CompiledPolicy& policy) {
  absl::MutexLock lock(&identity_mu_);
  absl::StatusOr<std::vector<WorkloadCgroup>> cgroups =
      ListWorkloadCgroups(options_.datapath.cgroup_path);
  absl::StatusOr<PolicySyncReport> report =
      policy_sync_->Apply(policy, cgroups.ok() ? *cgroups : identity_cgroups_);
  if (!report.ok()) {
    log::Error("policy", report.status().message(), " (the previous policy stays in force)");
    return report.status();
  }
  for (const std::string& w : report->warnings) log::Warn("policy", w);
  status_policy_dirty_ = true;
  status_policy_.Clear();
  *status_policy_.mutable_policies() = policy.policies();
  *status_policy_.mutable_endpoints() = policy.endpoints();
  if (report->rows_written + report->rows_deleted + report->endpoints_written +
          report->endpoints_deleted >
      0) {
    log::Info("policy", report->Summary(), " (", policy.policies_size(), " policies, ",
              policy.sets_size(), " sets, ", policy.endpoints_size(), " endpoints)");
  }
  return absl::OkStatus();
}

void Agent::RepairDrift() {
  absl::MutexLock lock(&client_mu_);
  if (!have_good_state_) return;
  absl::StatusOr<MapSync> fresh = MapSync::Recover(service_maps(), options_.table_size);
  if (!fresh.ok()) {
    log::Error(kLog, "cannot re-read kernel maps: ", fresh.status().message());
    health_->RecordSync(
        absl::StrCat("drift repair: cannot re-read kernel maps: ", fresh.status().message()));
    return;
  }
  sync_.emplace(*std::move(fresh));
  SyncReport report = sync_->Apply(good_state_);
  SyncIdentities(&good_state_.workloads, /*reread_kernel=*/true);
  for (const std::string& e : report.errors) log::Error("sync", e);
  metrics_->RecordSync(report.failed == 0, report.entries_written, report.entries_deleted,
                       report.failed);
  health_->RecordSync(report.failed == 0 ? ""
                                         : absl::StrCat("drift repair: ", report.failed,
                                                        " services cannot be written: ",
                                                        absl::StrJoin(report.errors, "; ")));
  if (report.added + report.updated + report.removed + report.failed == 0) {
    log::Debug("sync", report.Summary());
  } else {
    log::Info("sync", "drift repaired: ", report.Summary());
  }
}

absl::Status Agent::RunClient(const std::atomic<bool>& stop, EmbeddedControlPlane* embedded) {
  ControlPlaneClient client(
      ControlPlaneClientOptions{
          .address = embedded != nullptr ? "embedded" : options_.control_plane,
          .make_channel =
              embedded != nullptr
                  ? [embedded](
                        const grpc::ChannelArguments& args) { return embedded->Channel(args); }
                  : std::function<std::shared_ptr<grpc::Channel>(const grpc::ChannelArguments&)>(),
          .node_name = options_.node_name,
          .agent_version = SOCKMESH_AGENT_VERSION,
          .on_connection =
              [this](bool up) {
                metrics_->SetControlPlaneConnected(up);
                health_->SetControlPlaneConnected(up);
              },
          .on_answer =
              [this](uint64_t version, bool acked) {
                metrics_->RecordControlPlaneAnswer(version, acked);
                health_->RecordVersion(version, acked);
              }},
      [this](const model::DesiredState& state, const v1::CompiledPolicy& policy) {
        return ApplyVersion(state, policy);
      });
  if (embedded == nullptr) {
    log::Info(kLog, "following the control plane at ", options_.control_plane, " as node \"",
              options_.node_name, "\"");
  }
  std::thread follower([&client, &stop] { client.Run(stop); });
  absl::Time next_resync = absl::Now() + options_.resync_interval;
  while (!stop.load()) {
    health_->Heartbeat();
    absl::SleepFor(kWaitSlice);
    ScanCgroupsIfDue();
    if (absl::Now() >= next_resync) {
      RepairDrift();
      next_resync = absl::Now() + options_.resync_interval;
    }
  }
  follower.join();
  log::Info(kLog, "stopping; the datapath stays attached and keeps its last state");
  return absl::OkStatus();
}

void Agent::SyncIdentities(const model::WorkloadState* workloads, bool reread_kernel) {
  absl::MutexLock lock(&identity_mu_);
  absl::StatusOr<std::vector<WorkloadCgroup>> cgroups =
      ListWorkloadCgroups(options_.datapath.cgroup_path);
  if (!cgroups.ok()) {
    log::Warn(kLog, "cannot list workload cgroups: ", cgroups.status().message());
    cgroups = identity_cgroups_;
  }
  // Before the first model (a restarted agent waiting for the control plane) the maps keep what
  // the previous agent wrote: an empty plan would wipe them.
  if (workloads == nullptr && !identity_model_known_) return;
  if (workloads == nullptr && !reread_kernel && SameCgroups(*cgroups, identity_cgroups_)) return;
  if (workloads != nullptr &&
      (!identity_model_known_ || !(*workloads == identity_model_) || status_policy_dirty_)) {
    identity_model_ = *workloads;
    status_policy_dirty_ = false;
    const std::string path = WorkloadStatusPath(options_.run_dir, options_.datapath.instance);
    if (absl::Status s = WriteWorkloadStatus(path, identity_model_, status_policy_); !s.ok()) {
      log::Warn(kLog, "sockmeshctl identities will lack names: ", s.message());
    }
  }
  identity_model_known_ = true;
  identity_cgroups_ = *std::move(cgroups);
  if (reread_kernel) {
    DatapathMaps& maps = datapath_->maps();
    absl::StatusOr<IdentitySync> fresh = IdentitySync::Recover(
        IdentityMaps{.ips = &maps.ip_identity, .cgroups = &maps.cgroup_identity});
    if (fresh.ok()) {
      identity_sync_.emplace(*std::move(fresh));
    } else {
      log::Error(kLog, "cannot re-read identity maps: ", fresh.status().message());
    }
  }
  IdentityPlan plan = PlanIdentities(identity_model_, options_.node_name, identity_cgroups_);
  for (const std::string& c : plan.conflicts) log::Warn("identity", c);
  IdentitySyncReport report = identity_sync_->Apply(plan);
  for (const std::string& e : report.errors) log::Error("identity", e);
  // A workload cgroup that appeared (or left) moves its policy endpoint with it.
  absl::StatusOr<PolicySyncReport> policy = policy_sync_->UpdateCgroups(identity_cgroups_);
  if (!policy.ok()) log::Error("policy", "local workload cgroups: ", policy.status().message());
  if (report.written + report.deleted + report.errors.size() > 0) {
    log::Info("identity", report.Summary(), " (", identity_model_.workloads.size(), " workloads, ",
              identity_model_.identities.size(), " identities, ", identity_cgroups_.size(),
              " local workload cgroups)");
  }
}

void Agent::ScanCgroupsIfDue() {
  const absl::Time now = absl::Now();
  if (now < next_cgroup_scan_) return;
  next_cgroup_scan_ = now + kCgroupScanInterval;
  SyncIdentities(nullptr);
}

}  // namespace sockmesh::agent
