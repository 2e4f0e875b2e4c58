// SPDX-License-Identifier: Apache-2.0
// sockmeshctl: looks at a sockmesh datapath from the outside. Reads only the pinned maps, so it
// works while the agent is stopped, and shows what the kernel does rather than what the agent
// meant to write. Also asks the control plane which agents follow it (status), and validates
// manifests offline (validate).
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "control_plane/model/policy_conversion.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/agent/cgroup.h"
#include "userspace/agent/workload_cgroup.h"
#include "userspace/agent/workload_status_file.h"
#include "userspace/ctl/agent_status.h"
#include "userspace/ctl/cgroup_exec.h"
#include "userspace/ctl/counters_dump.h"
#include "userspace/ctl/identity_dump.h"
#include "userspace/ctl/manifest_validation.h"
#include "userspace/ctl/pinned_instance.h"
#include "userspace/ctl/policy_monitor.h"
#include "userspace/ctl/policy_status_view.h"
#include "userspace/ctl/service_dump.h"
#include "userspace/ctl/top_view.h"

namespace {

namespace ctl = sockmesh::ctl;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitExecFailed = 127;  // what a shell returns for a command it cannot run

void AddTableOrJsonFlag(CLI::App* sub, std::string& output) {
  sub->add_option("-o,--output", output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
}

struct InstanceFlags {
  std::string instance = "default";
  std::string bpffs = "/sys/fs/bpf";
  std::string output = "table";
};

void AddInstanceFlags(CLI::App* sub, InstanceFlags& flags) {
  sub->add_option("--instance", flags.instance,
                  "Datapath instance, as passed to sockmesh-agent --instance")
      ->capture_default_str();
  sub->add_option("--bpffs", flags.bpffs, "bpffs mount point the instance is pinned under")
      ->capture_default_str();
  AddTableOrJsonFlag(sub, flags.output);
}

int Fail(const absl::Status& status) {
  std::cerr << "sockmeshctl: " << status.message() << "\n";
  return kExitError;
}

// Flags of the subcommands that ask sockmesh-control over gRPC.
struct ControlPlaneFlags {
  std::string address = "127.0.0.1:15010";
  std::string output = "table";
};

void AddControlPlaneFlags(CLI::App* sub, ControlPlaneFlags& flags) {
  sub->add_option("--control-plane", flags.address, "sockmesh-control gRPC address")
      ->capture_default_str();
  AddTableOrJsonFlag(sub, flags.output);
}

int RunServices(const InstanceFlags& flags) {
  absl::StatusOr<ctl::PinnedServiceMaps> maps =
      ctl::OpenPinnedServiceMaps(flags.bpffs, flags.instance);
  if (!maps.ok()) return Fail(maps.status());
  absl::StatusOr<ctl::ServiceDump> dump = ctl::ReadServices(maps->reader(), flags.instance);
  if (!dump.ok()) return Fail(dump.status());
  std::cout << (flags.output == "json" ? ctl::FormatServicesJson(*dump)
                                       : ctl::FormatServicesTable(*dump));
  return std::cout.flush() ? 0 : kExitError;
}

int RunCounters(const InstanceFlags& flags) {
  absl::StatusOr<sockmesh::sys::UniqueFd> fd = ctl::OpenPinnedCounters(flags.bpffs, flags.instance);
  if (!fd.ok()) return Fail(fd.status());
  absl::StatusOr<ctl::CountersDump> dump = ctl::ReadCounters(fd->get(), flags.instance);
  if (!dump.ok()) return Fail(dump.status());
  std::cout << (flags.output == "json" ? ctl::FormatCountersJson(*dump)
                                       : ctl::FormatCountersTable(*dump));
  return std::cout.flush() ? 0 : kExitError;
}

int RunStatus(const std::string& address, const std::string& output) {
  absl::StatusOr<sockmesh::v1::ListAgentsResponse> response =
      ctl::FetchAgentStatus(address, absl::Seconds(5));
  if (!response.ok()) return Fail(response.status());
  std::cout << (output == "json" ? ctl::FormatAgentStatusJson(*response)
                                 : ctl::FormatAgentStatusTable(*response, absl::Now()));
  return std::cout.flush() ? 0 : kExitError;
}

int RunPolicies(const std::string& address, const std::string& output) {
  absl::StatusOr<sockmesh::v1::ListPoliciesResponse> response =
      ctl::FetchPolicies(address, absl::Seconds(5));
  if (!response.ok()) return Fail(response.status());
  std::vector<sockmesh::model::PolicyStatus> policies;
  for (const auto& p : response->policies()) policies.push_back(sockmesh::model::FromProto(p));
  std::cout << (output == "json" ? ctl::FormatPoliciesJson(response->current_version(), policies)
                                 : ctl::FormatPolicyTable(policies));
  std::cout.flush();
  return 0;
}

int RunValidate(const std::string& path, const std::string& output) {
  absl::StatusOr<ctl::ValidationResult> result = ctl::ValidateManifests(path);
  if (!result.ok()) return Fail(result.status());
  std::cout << (output == "json" ? ctl::FormatValidationJson(path, *result)
                                 : ctl::FormatValidationText(path, *result));
  std::cout.flush();
  return result->valid() ? 0 : kExitError;
}

// cgroup id -> namespace/name for the workload cgroups under `cgroup_arg` ("" = none given).
std::map<uint64_t, std::string> CgroupWorkloads(const std::string& cgroup_arg) {
  std::map<uint64_t, std::string> out;
  if (cgroup_arg.empty()) return out;
  absl::StatusOr<std::string> mount = sockmesh::agent::FindCgroup2Mount();
  if (!mount.ok()) return out;
  absl::StatusOr<std::string> path = sockmesh::agent::ResolveCgroupPath(cgroup_arg, *mount);
  if (!path.ok()) return out;
  auto cgroups = sockmesh::agent::ListWorkloadCgroups(*path);
  if (!cgroups.ok()) return out;
  for (const auto& c : *cgroups) out[c.cgroup_id] = c.workload.ToString();
  return out;
}

volatile std::sig_atomic_t g_stop_monitor = 0;

int RunMonitor(const InstanceFlags& flags, const std::string& run_dir, int count,
               double timeout_s) {
  std::signal(SIGINT, [](int) { g_stop_monitor = 1; });
  ctl::MonitorOptions options{
      .bpffs = flags.bpffs,
      .instance = flags.instance,
      .run_dir = run_dir,
      .count = count,
      .timeout = timeout_s > 0 ? absl::Seconds(timeout_s) : absl::InfiniteDuration(),
      .json = flags.output == "json",
      .stop = [] { return g_stop_monitor != 0; }};
  absl::StatusOr<int> printed = ctl::RunPolicyMonitor(options, [](const std::string& line) {
    std::cout << line;
    std::cout.flush();
  });
  if (!printed.ok()) return Fail(printed.status());
  return 0;
}

int RunIdentities(const InstanceFlags& flags, const std::string& run_dir,
                  const std::string& cgroup_arg) {
  absl::StatusOr<ctl::PinnedIdentityMaps> maps =
      ctl::OpenPinnedIdentityMaps(flags.bpffs, flags.instance);
  if (!maps.ok()) return Fail(maps.status());
  absl::StatusOr<sockmesh::model::WorkloadState> names = sockmesh::agent::ReadWorkloadStatus(
      sockmesh::agent::WorkloadStatusPath(run_dir, flags.instance));
  absl::StatusOr<ctl::IdentityDump> dump = ctl::ReadIdentityDump(
      flags.instance, maps->ips, maps->cgroups, names, CgroupWorkloads(cgroup_arg));
  if (!dump.ok()) return Fail(dump.status());
  std::cout << (flags.output == "json" ? ctl::FormatIdentitiesJson(*dump)
                                       : ctl::FormatIdentitiesTable(*dump));
  return std::cout.flush() ? 0 : kExitError;
}

volatile std::sig_atomic_t g_stop_top = 0;

// svc_id -> "VIP:port/PROTO", from the pinned service map.
absl::StatusOr<std::map<uint32_t, std::string>> FrontendNames(const ctl::PinnedServiceMaps& maps) {
  auto dump = maps.services.Dump();
  if (!dump.ok()) return dump.status();
  std::map<uint32_t, std::string> names;
  for (const auto& [key, svc] : *dump) {
    absl::StatusOr<sockmesh::model::Frontend> f = sockmesh::agent::FromSvcKey(key);
    if (f.ok()) names[svc.svc_id] = f->ToString();
  }
  return names;
}

int RunTop(const InstanceFlags& flags, bool once, double interval) {
  absl::StatusOr<sockmesh::sys::UniqueFd> fd =
      ctl::OpenPinnedConnStats(flags.bpffs, flags.instance);
  if (!fd.ok()) return Fail(fd.status());
  absl::StatusOr<ctl::PinnedServiceMaps> maps =
      ctl::OpenPinnedServiceMaps(flags.bpffs, flags.instance);
  if (!maps.ok()) return Fail(maps.status());
  std::signal(SIGINT, [](int) { g_stop_top = 1; });
  absl::StatusOr<std::vector<sockmesh::bpf::ConnStatsEntry>> before =
      sockmesh::bpf::ReadConnStats(fd->get());
  if (!before.ok()) return Fail(before.status());
  auto start = std::chrono::steady_clock::now();
  while (!g_stop_top) {
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    auto now = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<sockmesh::bpf::ConnStatsEntry>> after =
        sockmesh::bpf::ReadConnStats(fd->get());
    if (!after.ok()) return Fail(after.status());
    absl::StatusOr<std::map<uint32_t, std::string>> names = FrontendNames(*maps);
    if (!names.ok()) return Fail(names.status());
    double seconds = std::chrono::duration<double>(now - start).count();
    std::vector<ctl::TopRow> rows = ctl::ComputeTop(*before, *after, *names, seconds);
    if (flags.output == "json") {
      std::cout << ctl::FormatTopJson(rows, seconds);
    } else {
      if (!once) std::cout << "\033[H\033[2J";  // home and clear, like top(1)
      std::cout << ctl::FormatTopTable(rows, seconds);
    }
    std::cout.flush();
    if (once) break;
    before = std::move(after);
    start = now;
  }
  return 0;
}

int RunExec(const std::string& cgroup_arg, const std::string& workload,
            const std::vector<std::string>& command) {
  absl::StatusOr<std::string> mount = sockmesh::agent::FindCgroup2Mount();
  if (!mount.ok()) return Fail(mount.status());
  absl::StatusOr<std::string> cgroup = ctl::ResolveExecCgroup(cgroup_arg, *mount);
  if (!cgroup.ok()) return Fail(cgroup.status());
  if (!workload.empty()) cgroup = ctl::EnsureWorkloadCgroup(*cgroup, workload);
  if (!cgroup.ok()) return Fail(cgroup.status());
  if (absl::Status s = ctl::EnterCgroup(*cgroup); !s.ok()) return Fail(s);
  absl::Status s = ctl::ExecCommand(command);
  std::cerr << "sockmeshctl: " << s.message() << "\n";
  return kExitExecFailed;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sockmeshctl: inspect a sockmesh datapath through its pinned BPF maps, and run commands\n"
      "inside the cgroup it balances."};
  app.require_subcommand(1);

  InstanceFlags services_flags;
  CLI::App* services =
      app.add_subcommand("services", "List the frontends and backends the kernel holds");
  services->footer(
      "Reads <bpffs>/sockmesh/<instance>/maps/ (read only). Per frontend: VIP:port/protocol,\n"
      "algorithm, session affinity, per-backend connection limit, revision of the live backend\n"
      "set, and per backend its weight, share of the selection table (the fraction of connects\n"
      "it receives; \"-\" for least-connections) and live TCP connections counted by the kernel.");
  AddInstanceFlags(services, services_flags);

  InstanceFlags counters_flags;
  CLI::App* counters =
      app.add_subcommand("counters", "Show the datapath's event counters (summed over CPUs)");
  AddInstanceFlags(counters, counters_flags);

  InstanceFlags identities_flags;
  std::string identities_run_dir = sockmesh::agent::kDefaultRunDir;
  std::string identities_cgroup;
  CLI::App* identities = app.add_subcommand(
      "identities", "List the workload identities the kernel maps hold (by IP and by cgroup)");
  identities->footer(
      "Reads sm_ip_identity_v1 and sm_cgroup_identity_v1 under <bpffs>/sockmesh/<instance>/maps/.\n"
      "Principals and workload names come from the agent's <run-dir>/<instance>/workloads.json;\n"
      "--cgroup (the agent's mesh cgroup) names the workload of each cgroup entry.");
  AddInstanceFlags(identities, identities_flags);
  identities->add_option("--run-dir", identities_run_dir, "Where the agent writes its state")
      ->capture_default_str();
  identities->add_option("--cgroup", identities_cgroup,
                         "The agent's mesh cgroup (absolute or relative to the cgroup2 mount)");

  InstanceFlags top_flags;
  bool top_once = false;
  double top_interval = 1.0;
  CLI::App* top = app.add_subcommand(
      "top", "Live per-service request rate, latency percentiles, connection rate and failures");
  top->footer(
      "Reads the kernel's per-service totals (pinned sm_conn_stats_v1) every --interval and\n"
      "shows the difference: REQ/S and P50/P99 of request latency (first request byte to first\n"
      "response byte), CONN/S new connections, FAILED/S connects never established, ACTIVE open\n"
      "connections. --once prints one interval and exits (with -o json: one JSON document).");
  AddInstanceFlags(top, top_flags);
  top->add_flag("--once", top_once, "Print one interval and exit");
  top->add_option("--interval", top_interval, "Seconds between snapshots")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();

  std::string cgroup;
  std::string workload;
  std::vector<std::string> command;
  CLI::App* exec = app.add_subcommand("exec", "Run a command inside a cgroup v2");
  exec->footer(
      "Usage: sockmeshctl exec --cgroup PATH [--workload NS/NAME] -- CMD [ARGS...]\n"
      "Moves itself into PATH (e.g. the cgroup sockmesh-agent --cgroup attached to), or with\n"
      "--workload into PATH/NS/NAME (created if missing; the agent's metrics then name NS/NAME\n"
      "as source_namespace/source_workload), then replaces itself with CMD, whose connections\n"
      "then go through the mesh. Exits 127 when CMD cannot be run.");
  exec->add_option("--cgroup", cgroup,
                   "cgroup v2 directory, absolute or relative to the cgroup2 mount (not the root)")
      ->required();
  exec->add_option("--workload", workload,
                   "Run as workload NS/NAME: in the cgroup PATH/NS/NAME, created if missing");
  exec->add_option("command", command, "The command and its arguments (after --)")->required();

  ControlPlaneFlags status_flags;
  CLI::App* status = app.add_subcommand(
      "status", "List the agents following the control plane and their versions");
  status->footer(
      "STATUS is SYNCED when the agent ACKed the control plane's current version, NACKED when it\n"
      "refused the newest version it was sent (it keeps running the ACKED one; LAST NACK says\n"
      "why), STALE while a newer version is on its way.");
  AddControlPlaneFlags(status, status_flags);

  InstanceFlags monitor_flags;
  std::string monitor_run_dir = sockmesh::agent::kDefaultRunDir;
  int monitor_count = 0;
  double monitor_timeout = 0;
  CLI::App* monitor =
      app.add_subcommand("monitor", "Stream the authorization policy denials the kernel reports");
  monitor->footer(
      "Reads the sm_policy_denials_v1 ring buffer under <bpffs>/sockmesh/<instance>/maps/. One\n"
      "line per denial: time, source (workload or principal, identity, address), destination\n"
      "workload and address/protocol, the DENY policy or \"no ALLOW match\", and the side that\n"
      "decided (client: connect()/sendmsg() failed with EPERM; destination: SYN or datagram\n"
      "dropped). Names come from the agent's <run-dir>/<instance>/workloads.json. The buffer has\n"
      "one reader: a backlog left while nobody watched is printed first.");
  AddInstanceFlags(monitor, monitor_flags);
  monitor->add_option("--run-dir", monitor_run_dir, "Where the agent writes its state")
      ->capture_default_str();
  monitor->add_option("--count", monitor_count, "Exit after N denials (0 = no limit)")
      ->check(CLI::NonNegativeNumber);
  monitor->add_option("--timeout", monitor_timeout, "Exit after this many seconds (0 = never)")
      ->check(CLI::NonNegativeNumber);
  ControlPlaneFlags policies_flags;
  CLI::App* policies = app.add_subcommand(
      "policies", "List the AuthorizationPolicies the control plane holds and their status");
  policies->footer(
      "ACCEPTED is False when the policy is refused whole (REASON UnsupportedField: an L7 field;\n"
      "Invalid: a malformed value) and not applied; REASON then names why. An accepted policy\n"
      "shows its ResolvedRefs reason (NoMatchingWorkloads, UnknownPrincipal, UnknownNamespace).\n"
      "-o json prints every condition with its message.");
  AddControlPlaneFlags(policies, policies_flags);

  std::string validate_path;
  std::string validate_output = "text";
  CLI::App* validate = app.add_subcommand(
      "validate", "Check manifests offline with the control plane's parser and validation");
  validate->footer("Exits 0 when valid, 1 with the errors (file, object, field, value) when not.");
  validate->add_option("-f,--filename", validate_path, "A manifest file or a directory of them")
      ->required();
  validate->add_option("-o,--output", validate_output, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports through exceptions; they stop here.
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  if (*services) return RunServices(services_flags);
  if (*counters) return RunCounters(counters_flags);
  if (*identities) return RunIdentities(identities_flags, identities_run_dir, identities_cgroup);
  if (*top) return RunTop(top_flags, top_once, top_interval);
  if (*exec) return RunExec(cgroup, workload, command);
  if (*status) return RunStatus(status_flags.address, status_flags.output);
  if (*validate) return RunValidate(validate_path, validate_output);
  if (*monitor) {
    return RunMonitor(monitor_flags, monitor_run_dir, monitor_count, monitor_timeout);
  }
  if (*policies) return RunPolicies(policies_flags.address, policies_flags.output);
  return kExitUsage;
}
