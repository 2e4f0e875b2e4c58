// SPDX-License-Identifier: Apache-2.0
// The kernel connection metrics as an operator sees them: sockmesh-agent's /metrics, labelled with
// the source workload (a process started in the workload cgroup <mesh>/<ns>/<name>) and the
// destination Service, plus the map fill ratios. VIP 127.10.230.20, backend 127.0.230.20.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/agent_process.h"
#include "tests/support/manifest_files.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/name_server.h"
#include "tests/support/scoped_cgroup.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/workload_cgroup.h"

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kAgentBin[] = SOCKMESH_AGENT_BIN;
constexpr char kVip[] = "127.10.230.20";
constexpr char kBackend[] = "127.0.230.20";

// Runs `n` dials to kVip:80 in a child process that first moves into `cgroup`; returns how many
// got the backend's reply.
int DialFromCgroup(const std::string& cgroup, int n) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    std::ofstream(cgroup + "/cgroup.procs") << ::getpid() << std::flush;
    char ok = 0;
    for (int i = 0; i < n; ++i) ok += DialTcp(kVip, 80).error == 0 ? 1 : 0;
    (void)::write(pipefd[1], &ok, 1);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  char ok = -1;
  if (::read(pipefd[0], &ok, 1) != 1) ok = -1;
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return ok;
}

// Removes the workload cgroups (inner first) and the agent's pins, also when the test failed.
struct Teardown {
  std::vector<std::string> cgroups;
  std::string instance;
  std::string log;
  ~Teardown() {
    for (auto it = cgroups.rbegin(); it != cgroups.rend(); ++it) ::rmdir(it->c_str());
    if (!instance.empty()) {
      (void)RunAgentToCompletion(kAgentBin, {"--cleanup", "--instance", instance}, log);
    }
  }
};

TEST(ConnMetricsAgentTest, ScrapeShowsSourceWorkloadAndService) {
  absl::StatusOr<ScopedCgroup> mesh = ScopedCgroup::Create();
  ASSERT_TRUE(mesh.ok()) << "needs root and cgroup v2: " << mesh.status();
  TempDir tmp("sockmesh-conn-metrics");
  Teardown teardown{.cgroups = {}, .instance = UniqueInstanceName(), .log = tmp.path() + "/c.log"};
  const agent::WorkloadName workload{.namespace_name = "shop", .name = "frontend"};
  const std::string workload_cgroup = agent::WorkloadCgroupPath(mesh->path(), workload);
  for (const std::string& dir : {mesh->path() + "/shop", workload_cgroup}) {
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir << ": " << std::strerror(errno);
    teardown.cgroups.push_back(dir);
  }

  auto backend = NameServer::Start("web-0", NameServer::Kind::kTcp, kBackend);
  ASSERT_TRUE(backend.ok()) << backend.status();
  const std::string manifests = tmp.path() + "/manifests";
  fs::create_directories(manifests);
  WriteManifest(manifests, "web.yaml",
                OneTcpServiceYaml("web", kVip, 80, {kBackend}, (*backend)->port()));

  auto agent = AgentProcess::Start(
      kAgentBin,
      {"--manifests", manifests, "--cgroup", mesh->path(), "--instance", teardown.instance,
       "--metrics-addr", "127.0.0.1:0", "--short-circuit", "off", "--resync-interval", "3600"},
      tmp.path() + "/agent.log");
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_TRUE((*agent)->WaitForLog("sync: ", absl::Seconds(20)).ok()) << (*agent)->Log();
  std::smatch m;
  const std::string log = (*agent)->Log();
  ASSERT_TRUE(
      std::regex_search(log, m, std::regex(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)")))
      << log;
  const uint16_t port = static_cast<uint16_t>(std::stoi(m[1]));

  constexpr int kDials = 3;
  ASSERT_EQ(DialFromCgroup(workload_cgroup, kDials), kDials);

  const std::string labels =
      R"({reporter="source",source_workload="frontend",source_namespace="shop",)"
      R"(destination_service="web.test.svc.cluster.local",destination_service_name="web",)"
      R"(destination_service_namespace="test",destination_workload="unknown"})";
  std::string text;
  for (int i = 0; i < 100; ++i) {  // closes land in softirq just after the child exits
    text = Scrape(port);
    if (MetricValue(text, "sockmesh_tcp_connections_closed_total" + labels) == kDials) break;
    ::usleep(30 * 1000);
  }
  std::printf("%s\n", text.c_str());
  EXPECT_EQ(MetricValue(text, "sockmesh_tcp_connections_opened_total" + labels), kDials) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_tcp_connections_closed_total" + labels), kDials) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_tcp_connections_failed_total" + labels), 0) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_tcp_connections_active" + labels), 0) << text;
  EXPECT_EQ(MetricValue(text, "sockmesh_tcp_connect_duration_seconds_count" + labels), kDials)
      << text;
  EXPECT_GT(MetricValue(text, "sockmesh_tcp_received_bytes_total" + labels).value_or(0), 0) << text;
  // The service map holds one frontend; the connection stats one (cgroup, service) pair.
  EXPECT_GT(MetricValue(text, R"(sockmesh_map_fill_ratio{map="sm_svc_v1"})").value_or(0), 0)
      << text;
  EXPECT_GT(MetricValue(text, R"(sockmesh_map_fill_ratio{map="sm_conn_stats_v1"})").value_or(0), 0)
      << text;
  EXPECT_TRUE((*agent)->Terminate().ok());
}

}  // namespace
}  // namespace sockmesh::testing
