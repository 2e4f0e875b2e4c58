// SPDX-License-Identifier: Apache-2.0
// Workload identities through the sockmesh-agent binary in standalone mode: manifests with a Pod
// (known by address) and WorkloadEntries (one known by address, local ones by their cgroup
// <mesh cgroup>/<namespace>/<name>) fill sm_ip_identity_v1 and sm_cgroup_identity_v1; edits, a
// workload cgroup created later and a bad object are followed; `sockmeshctl identities` names the
// entries. Workload addresses are in 127.0.71.0/24 and carry no traffic.
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "control_plane/model/identity_allocator.h"
#include "control_plane/model/workload_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sockmesh/consts.h"
#include "tests/support/agent_process.h"
#include "tests/support/manifest_files.h"
#include "tests/support/scoped_cgroup.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/abi_conversion.h"
#include "userspace/agent/cgroup.h"
#include "userspace/bpf/typed_map.h"

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kAgentBin[] = SOCKMESH_AGENT_BIN;
constexpr char kCtlBin[] = SOCKMESH_CTL_BIN;
constexpr char kBpffs[] = "/sys/fs/bpf";
constexpr absl::Duration kStartTimeout = absl::Seconds(30);
// inotify debounce or the 1 s cgroup scan, with slack for a loaded machine.
constexpr absl::Duration kChangeTimeout = absl::Seconds(15);

constexpr char kNamespaceYaml[] = R"(
apiVersion: v1
kind: Namespace
metadata: {name: idt, labels: {team: t}}
)";
constexpr char kClientYaml[] = R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: client, namespace: idt}
spec: {serviceAccount: client}
)";
constexpr char kWebPodYaml[] = R"(
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: idt, labels: {app: web}}
spec: {serviceAccountName: web, nodeName: elsewhere}
status: {podIP: 127.0.71.5}
)";
constexpr char kVmYaml[] = R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: vm, namespace: idt}
spec: {address: 127.0.71.6, serviceAccount: billing}
)";
constexpr char kLateYaml[] = R"(
apiVersion: sockmesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: late, namespace: idt}
spec: {serviceAccount: client}
)";

// What the control plane numbers a principal when nothing collides with it (the test's principals
// are few, so nothing does).
uint32_t IdentityOf(const std::string& ns, const std::string& sa) {
  return model::PreferredIdentity(model::Principal(ns, sa));
}

struct KernelIdentities {
  std::map<std::string, sm_identity> ips;  // address text -> value
  std::map<uint64_t, sm_identity> cgroups;
};

absl::StatusOr<KernelIdentities> ReadKernelIdentities(const std::string& instance) {
  const std::string dir = absl::StrCat(kBpffs, "/sockmesh/", instance, "/maps/");
  auto ips = bpf::TypedMap<sm_ip_identity_key, sm_identity>::FromPinned(dir + "sm_ip_identity_v1");
  if (!ips.ok()) return ips.status();
  auto cgroups = bpf::TypedMap<uint64_t, sm_identity>::FromPinned(dir + "sm_cgroup_identity_v1");
  if (!cgroups.ok()) return cgroups.status();
  KernelIdentities out;
  auto ip_entries = ips->Dump();
  if (!ip_entries.ok()) return ip_entries.status();
  for (const auto& [key, value] : *ip_entries) {
    absl::StatusOr<model::IpAddress> ip = agent::FromIpIdentityKey(key);
    if (!ip.ok()) return ip.status();
    out.ips[ip->ToString()] = value;
  }
  auto cgroup_entries = cgroups->Dump();
  if (!cgroup_entries.ok()) return cgroup_entries.status();
  for (const auto& [id, value] : *cgroup_entries) out.cgroups[id] = value;
  return out;
}

// "identity/flags" per entry, so a failing comparison prints readably.
std::map<std::string, std::string> Show(const std::map<std::string, sm_identity>& m) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : m) out[k] = absl::StrCat(v.identity, "/", v.flags);
  return out;
}
std::map<uint64_t, std::string> Show(const std::map<uint64_t, sm_identity>& m) {
  std::map<uint64_t, std::string> out;
  for (const auto& [k, v] : m) out[k] = absl::StrCat(v.identity, "/", v.flags);
  return out;
}

// A workload cgroup <mesh>/<ns>/<name>, removed (with the namespace level when empty) at the end.
class WorkloadCgroupDir {
 public:
  WorkloadCgroupDir(const std::string& mesh, const std::string& ns, const std::string& name)
      : ns_dir_(absl::StrCat(mesh, "/", ns)), path_(absl::StrCat(ns_dir_, "/", name)) {
    ok_ = agent::EnsureCgroup(ns_dir_).ok() && agent::EnsureCgroup(path_).ok();
  }
  ~WorkloadCgroupDir() {
    ::rmdir(path_.c_str());
    ::rmdir(ns_dir_.c_str());  // fails while another workload of the namespace remains
  }
  WorkloadCgroupDir(const WorkloadCgroupDir&) = delete;
  WorkloadCgroupDir& operator=(const WorkloadCgroupDir&) = delete;
  bool ok() const { return ok_; }
  uint64_t id() const { return agent::CgroupId(path_).value_or(0); }

 private:
  std::string ns_dir_;
  std::string path_;
  bool ok_ = false;
};

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    home_cgroup_ = CurrentCgroup();
    ASSERT_FALSE(home_cgroup_.empty()) << "no cgroup v2 entry in /proc/self/cgroup";
    absl::StatusOr<ScopedCgroup> cg = ScopedCgroup::Create();
    ASSERT_TRUE(cg.ok()) << "needs root and cgroup v2: " << cg.status();
    cgroup_.emplace(*std::move(cg));
    // Joined so the cgroup is never empty (another test's ScopedCgroup::Create() removes empty
    // sockmesh-test-* cgroups); agents run back in home_cgroup_.
    ASSERT_TRUE(cgroup_->Join().ok());
    instance_ = UniqueInstanceName();
    manifests_ = tmp_.path() + "/manifests";
    fs::create_directory(manifests_);
  }

  void TearDown() override {
    if (agent_ != nullptr) EXPECT_TRUE(agent_->Terminate().ok());
    agent_.reset();
    absl::StatusOr<AgentRun> cleanup =
        RunAgentToCompletion(kAgentBin, {"--cleanup", "--instance", instance_, "--bpffs", kBpffs},
                             tmp_.path() + "/cleanup.log", home_cgroup_);
    EXPECT_TRUE(cleanup.ok() && cleanup->exit_code == 0)
        << (cleanup.ok() ? cleanup->log : cleanup.status().ToString());
    EXPECT_FALSE(fs::exists(absl::StrCat("/run/sockmesh/", instance_)));
    if (cgroup_) EXPECT_TRUE(cgroup_->Leave().ok());
  }

  void StartAgent() {
    absl::StatusOr<std::unique_ptr<AgentProcess>> p = AgentProcess::Start(
        kAgentBin,
        {"--manifests", manifests_, "--cgroup", cgroup_->path(), "--instance", instance_, "--bpffs",
         kBpffs, "--metrics-addr", "", "--resync-interval", "3600", "--short-circuit", "off"},
        tmp_.path() + "/agent.log", home_cgroup_);
    ASSERT_TRUE(p.ok()) << p.status();
    agent_ = *std::move(p);
    absl::Status up = agent_->WaitForLog("identity: ", kStartTimeout);
    ASSERT_TRUE(up.ok()) << up;
  }

  // Polls the kernel maps until `done` holds; returns the last read.
  KernelIdentities WaitFor(const std::function<bool(const KernelIdentities&)>& done) {
    const absl::Time deadline = absl::Now() + kChangeTimeout;
    KernelIdentities last;
    while (absl::Now() < deadline) {
      absl::StatusOr<KernelIdentities> k = ReadKernelIdentities(instance_);
      EXPECT_TRUE(k.ok()) << k.status();
      if (!k.ok()) break;
      last = *std::move(k);
      if (done(last)) return last;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return last;
  }

  nlohmann::json CtlIdentities() {
    absl::StatusOr<AgentRun> run =
        RunAgentToCompletion(kCtlBin,
                             {"identities", "--instance", instance_, "--bpffs", kBpffs, "--cgroup",
                              cgroup_->path(), "-o", "json"},
                             tmp_.path() + "/ctl.log", home_cgroup_);
    EXPECT_TRUE(run.ok() && run->exit_code == 0) << (run.ok() ? run->log : run.status().ToString());
    // The log starts with the command line ("$ sockmeshctl ..."); the JSON follows.
    const size_t start = run.ok() ? run->log.find('{') : std::string::npos;
    if (start == std::string::npos) return nlohmann::json();
    return nlohmann::json::parse(run->log.substr(start), nullptr, false);
  }

  TempDir tmp_{"sockmesh-identity-test"};
  std::string home_cgroup_;
  std::optional<ScopedCgroup> cgroup_;
  std::string instance_;
  std::string manifests_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(IdentityTest, StandaloneAgentFillsAndFollowsIdentityMaps) {
  WorkloadCgroupDir client(cgroup_->path(), "idt", "client");
  ASSERT_TRUE(client.ok());
  const uint32_t web = IdentityOf("idt", "web");
  const uint32_t client_id = IdentityOf("idt", "client");
  const uint32_t billing = IdentityOf("idt", "billing");
  WriteManifest(manifests_, "workloads.yaml",
                absl::StrCat(kNamespaceYaml, "---", kClientYaml, "---", kWebPodYaml));
  ASSERT_NO_FATAL_FAILURE(StartAgent());

  // The Pod by address (another node's: not local), the local WorkloadEntry by cgroup.
  KernelIdentities k = WaitFor([](const KernelIdentities& k) { return !k.cgroups.empty(); });
  EXPECT_EQ(Show(k.ips),
            (std::map<std::string, std::string>{{"127.0.71.5", absl::StrCat(web, "/0")}}));
  EXPECT_EQ(Show(k.cgroups),
            (std::map<uint64_t, std::string>{
                {client.id(), absl::StrCat(client_id, "/", SM_IDENTITY_F_LOCAL)}}));

  // sockmeshctl names what the kernel holds.
  nlohmann::json ctl = CtlIdentities();
  ASSERT_TRUE(ctl.is_object()) << ctl;
  ASSERT_EQ(ctl["entries"].size(), 2u) << ctl.dump(2);
  EXPECT_EQ(ctl["entries"][0]["key"], "127.0.71.5");
  EXPECT_EQ(ctl["entries"][0]["principal"], "cluster.local/ns/idt/sa/web");
  EXPECT_EQ(ctl["entries"][0]["workloads"][0], "idt/web-1");
  EXPECT_EQ(ctl["entries"][1]["map"], "cgroup");
  EXPECT_EQ(ctl["entries"][1]["principal"], "cluster.local/ns/idt/sa/client");
  EXPECT_EQ(ctl["entries"][1]["workloads"][0], "idt/client");
  EXPECT_EQ(ctl["entries"][1]["local"], true);

  // The Pod leaves and a VM arrives: one address out, one in.
  WriteManifest(manifests_, "workloads.yaml",
                absl::StrCat(kNamespaceYaml, "---", kClientYaml, "---", kVmYaml));
  k = WaitFor([](const KernelIdentities& k) {
    return k.ips.contains("127.0.71.6") && !k.ips.contains("127.0.71.5");
  });
  EXPECT_EQ(Show(k.ips),
            (std::map<std::string, std::string>{{"127.0.71.6", absl::StrCat(billing, "/0")}}));
  EXPECT_EQ(k.cgroups.size(), 1u);

  // A workload whose cgroup appears after the model named it: found by the periodic scan.
  WriteManifest(manifests_, "late.yaml", kLateYaml);
  ASSERT_TRUE(agent_->WaitForLog("changed: late.yaml", kChangeTimeout).ok());
  std::optional<WorkloadCgroupDir> late;
  late.emplace(cgroup_->path(), "idt", "late");
  ASSERT_TRUE(late->ok());
  const uint64_t late_id = late->id();
  k = WaitFor([&](const KernelIdentities& k) { return k.cgroups.contains(late_id); });
  ASSERT_TRUE(k.cgroups.contains(late_id));
  EXPECT_EQ(k.cgroups.at(late_id).identity, client_id);  // same principal, same number

  // A bad object rejects its file; the file's last good objects stay in force.
  const size_t before = agent_->Log().size();
  WriteManifest(manifests_, "workloads.yaml",
                absl::StrCat(kNamespaceYaml, "---", kClientYaml, "---", kVmYaml,
                             "---\napiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: "
                             "idt}\nstatus: {podIP: 127.0.71.300}\n"));
  absl::Status rejected = agent_->WaitForLog(
      "Pod idt/bad: status.podIP: invalid value \"127.0.71.300\"", kChangeTimeout, before);
  ASSERT_TRUE(rejected.ok()) << rejected;
  absl::StatusOr<KernelIdentities> kept = ReadKernelIdentities(instance_);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(Show(kept->ips), Show(k.ips));
  EXPECT_EQ(Show(kept->cgroups), Show(k.cgroups));

  // The late workload's cgroup goes away: its entry leaves with it.
  late.reset();
  k = WaitFor([&](const KernelIdentities& k) { return !k.cgroups.contains(late_id); });
  EXPECT_EQ(Show(k.cgroups),
            (std::map<uint64_t, std::string>{
                {client.id(), absl::StrCat(client_id, "/", SM_IDENTITY_F_LOCAL)}}));
}

}  // namespace
}  // namespace sockmesh::testing
