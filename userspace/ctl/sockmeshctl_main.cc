// SPDX-License-Identifier: Apache-2.0
// sockmeshctl: looks at a sockmesh datapath from the outside. Reads only the pinned maps, so it
// works while the agent is stopped, and shows what the kernel does rather than what the agent
// meant to write. Also asks the control plane which agents follow it (status), and validates
// manifests offline (validate).
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "userspace/agent/cgroup.h"
#include "userspace/ctl/agent_status.h"
#include "userspace/ctl/cgroup_exec.h"
#include "userspace/ctl/counters_dump.h"
#include "userspace/ctl/manifest_validation.h"
#include "userspace/ctl/pinned_instance.h"
#include "userspace/ctl/service_dump.h"

namespace {

namespace ctl = sockmesh::ctl;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitExecFailed = 127;  // what a shell returns for a command it cannot run

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
  sub->add_option("-o,--output", flags.output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
}

int Fail(const absl::Status& status) {
  std::cerr << "sockmeshctl: " << status.message() << "\n";
  return kExitError;
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

int RunValidate(const std::string& path, const std::string& output) {
  absl::StatusOr<ctl::ValidationResult> result = ctl::ValidateManifests(path);
  if (!result.ok()) return Fail(result.status());
  std::cout << (output == "json" ? ctl::FormatValidationJson(path, *result)
                                 : ctl::FormatValidationText(path, *result));
  std::cout.flush();
  return result->valid() ? 0 : kExitError;
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
      "algorithm, session affinity, revision of the live backend set, and per backend its\n"
      "weight and share of the selection table (the fraction of connects it receives).");
  AddInstanceFlags(services, services_flags);

  InstanceFlags counters_flags;
  CLI::App* counters =
      app.add_subcommand("counters", "Show the datapath's event counters (summed over CPUs)");
  AddInstanceFlags(counters, counters_flags);

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

  std::string status_address = "127.0.0.1:15010";
  std::string status_output = "table";
  CLI::App* status = app.add_subcommand(
      "status", "List the agents following the control plane and their versions");
  status->footer(
      "STATUS is SYNCED when the agent ACKed the control plane's current version, NACKED when it\n"
      "refused the newest version it was sent (it keeps running the ACKED one; LAST NACK says\n"
      "why), STALE while a newer version is on its way.");
  status->add_option("--control-plane", status_address, "sockmesh-control gRPC address")
      ->capture_default_str();
  status->add_option("-o,--output", status_output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();

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
  if (*exec) return RunExec(cgroup, workload, command);
  if (*status) return RunStatus(status_address, status_output);
  if (*validate) return RunValidate(validate_path, validate_output);
  return kExitUsage;
}
