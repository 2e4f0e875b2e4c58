// SPDX-License-Identifier: Apache-2.0
// sockmesh-control with two sockmesh-agent --control-plane followers, each on its own cgroup and
// datapath instance, as processes: edits propagate to both kernels, a version one agent cannot
// write is NACKed while traffic keeps the old state, and a control plane killed with SIGKILL under
// traffic costs no connection and is followed again when it returns. Traffic only goes to
// 127.0.0.0/8: backends are NameServers on 127.0.0.x, VIPs are in 127.10.0.0/16.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/agent_process.h"
#include "tests/support/control_plane_status.h"
#include "tests/support/fake_kube_apiserver.h"
#include "tests/support/manifest_files.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/name_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/cgroup.h"
#include "userspace/sys/unique_fd.h"

#if !defined(SOCKMESH_AGENT_BIN) || !defined(SOCKMESH_CONTROL_BIN) || !defined(SOCKMESH_CTL_BIN)
#error \
    "SOCKMESH_{AGENT,CONTROL,CTL}_BIN must name the binaries (set by tests/privileged/CMakeLists)"
#endif

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;
using ::sockmesh::testing::HttpAnswer;
using ::sockmesh::testing::HttpGet;
using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr char kAgentBin[] = SOCKMESH_AGENT_BIN;
constexpr char kControlBin[] = SOCKMESH_CONTROL_BIN;
constexpr char kCtlBin[] = SOCKMESH_CTL_BIN;
constexpr char kBpffs[] = "/sys/fs/bpf";
constexpr uint16_t kVipPort = 80;
// Program loads take a fraction of a second, but the machine is shared with other builds.
constexpr absl::Duration kStartTimeout = absl::Seconds(20);
// inotify + 200 ms debounce + a push and an ACK, with slack for a loaded machine.
constexpr absl::Duration kPropagateTimeout = absl::Seconds(10);

// Moves this whole process (every thread) into `cgroup`.
bool MoveTo(const std::string& cgroup) {
  std::ofstream procs(cgroup + "/cgroup.procs");
  procs << ::getpid();
  procs.flush();
  return procs.good();
}

// One agent's cgroup. Not named sockmesh-test-*: ScopedCgroup::Create() in another test process
// removes empty cgroups with that prefix, and these are empty while the test dials from the
// other one. Removed when destroyed (the test has moved back home by then).
class TestCgroup {
 public:
  explicit TestCgroup(const std::string& name) {
    absl::StatusOr<std::string> mount = agent::FindCgroup2Mount();
    if (!mount.ok()) return;
    std::string path = absl::StrCat(*mount, "/sockmesh-cptest-", ::getpid(), "-", name);
    if (agent::EnsureCgroup(path).ok()) path_ = path;
  }
  ~TestCgroup() {
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A Service with one TCP port and its EndpointSlice, in one file.
std::string ServiceYaml(const std::string& name, const std::string& vip,
                        const std::vector<std::string>& endpoints, uint16_t target_port,
                        const std::string& algorithm = "random") {
  return OneTcpServiceYaml(name, vip, kVipPort, endpoints, target_port, algorithm);
}

// TCP NameServers (they answer with their IP) on one port.
struct Backends {
  uint16_t port = 0;
  std::vector<std::unique_ptr<NameServer>> servers;
};

absl::StatusOr<Backends> StartBackends(const std::vector<std::string>& ips) {
  absl::Status last = absl::UnknownError("no attempt");
  for (int attempt = 0; attempt < 20; ++attempt) {
    Backends b;
    for (const std::string& ip : ips) {
      auto s = NameServer::Start(ip, NameServer::Kind::kTcp, ip, b.port);
      if (!s.ok()) {
        last = s.status();
        break;
      }
      b.port = (*s)->port();
      b.servers.push_back(*std::move(s));
    }
    if (b.servers.size() == ips.size()) return b;
  }
  return last;
}

struct Tally {
  std::set<std::string> backends;
  int answered = 0;
  int failed = 0;
  std::string first_failure;
  void Add(const DialResult& r) {
    if (r.error == 0 && !r.reply.empty()) {
      ++answered;
      backends.insert(r.reply);
    } else if (failed++ == 0) {
      first_failure = absl::StrCat("errno ", r.error, " (", std::strerror(r.error), ")");
    }
  }
};

// A free TCP port on 127.0.0.1 below the ephemeral range (32768+). Port 0 is not good enough for
// civetweb (the metrics server): after a few suite runs the loopback ephemeral range is full of
// TIME_WAIT entries left by the load tests, and civetweb's bind(0) then fails. A port that was
// only bound here, never connected, leaves no TIME_WAIT behind, so the process can bind it next.
int PickListenPort() {
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> dist(20000, 32000);
  for (int attempt = 0; attempt < 100; ++attempt) {
    int port = dist(rng);
    sys::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) continue;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return port;
  }
  return 0;
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  struct Follower {
    std::string name;
    std::string instance;
    std::unique_ptr<TestCgroup> cgroup;
    std::unique_ptr<AgentProcess> process;
  };

  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty()) << "mkdtemp: " << std::strerror(errno);
    home_ = CurrentCgroup();
    ASSERT_FALSE(home_.empty()) << "no cgroup v2 entry in /proc/self/cgroup";
    manifests_ = tmp_.path() + "/manifests";
    fs::create_directory(manifests_);
    for (const char* name : {"a", "b"}) {
      Follower f;
      f.name = absl::StrCat("agent-", name);
      f.instance = UniqueInstanceName();
      f.cgroup = std::make_unique<TestCgroup>(name);
      ASSERT_FALSE(f.cgroup->path().empty()) << "needs root and cgroup v2";
      followers_.push_back(std::move(f));
    }
  }

  void TearDown() override {
    EXPECT_TRUE(MoveTo(home_));
    for (Follower& f : followers_) {
      if (f.process) (void)f.process->Terminate();
      absl::StatusOr<AgentRun> run = RunAgentToCompletion(
          kAgentBin, {"--cleanup", "--instance", f.instance, "--bpffs", kBpffs}, Log("cleanup"));
      EXPECT_TRUE(run.ok() && run->exit_code == 0)
          << (run.ok() ? run->log : run.status().ToString());
    }
    if (control_) (void)control_->Terminate();
  }

  std::string Log(const std::string& what) {
    return absl::StrCat(tmp_.path(), "/", what, "-", log_counter_++, ".log");
  }

  // Starts sockmesh-control; a restart keeps the gRPC port, so agents find it again.
  void StartControlPlane() {
    if (port_ == 0) port_ = PickListenPort();
    metrics_port_ = PickListenPort();
    ASSERT_NE(port_, 0);
    ASSERT_NE(metrics_port_, 0);
    std::vector<std::string> args = source_args_;
    if (args.empty()) args = {"--manifests", manifests_};
    for (std::string arg :
         {std::string("--listen"), absl::StrCat("127.0.0.1:", port_), std::string("--metrics-addr"),
          absl::StrCat("127.0.0.1:", metrics_port_)}) {
      args.push_back(std::move(arg));
    }
    auto p = AgentProcess::Start(kControlBin, args, Log("control"));
    ASSERT_TRUE(p.ok()) << p.status();
    control_ = *std::move(p);
    ASSERT_TRUE(control_->WaitForLog("serving sockmesh.v1.ControlPlane on", kStartTimeout).ok())
        << control_->Log();
  }

  void StartFollower(Follower& f, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--control-plane",   absl::StrCat("127.0.0.1:", port_),
                                     "--node-name",       f.name,
                                     "--cgroup",          f.cgroup->path(),
                                     "--instance",        f.instance,
                                     "--bpffs",           kBpffs,
                                     "--metrics-addr",    "",
                                     "--resync-interval", "3600"};
    // `extra` holds flag/value pairs that replace the defaults above or are appended.
    for (size_t i = 0; i + 1 < extra.size(); i += 2) {
      auto it = std::find(args.begin(), args.end(), extra[i]);
      if (it != args.end()) {
        *(it + 1) = extra[i + 1];
      } else {
        args.push_back(extra[i]);
        args.push_back(extra[i + 1]);
      }
    }
    auto p = AgentProcess::Start(kAgentBin, args, Log(f.name), home_);
    ASSERT_TRUE(p.ok()) << p.status();
    f.process = *std::move(p);
    absl::Status acked = f.process->WaitForLog("; ACK", kStartTimeout);
    ASSERT_TRUE(acked.ok()) << acked;
  }

  void StartAll(std::vector<std::string> extra_b = {}) {
    ASSERT_NO_FATAL_FAILURE(StartControlPlane());
    ASSERT_NO_FATAL_FAILURE(StartFollower(followers_[0]));
    ASSERT_NO_FATAL_FAILURE(StartFollower(followers_[1], extra_b));
  }

  // Dials `vip` `n` times from inside `f`'s cgroup, then moves back home.
  Tally DialFrom(const Follower& f, const std::string& vip, int n) {
    Tally t;
    EXPECT_TRUE(MoveTo(f.cgroup->path()));
    for (int i = 0; i < n; ++i) t.Add(DialTcp(vip, kVipPort, "", 0, 3000));
    EXPECT_TRUE(MoveTo(home_));
    return t;
  }

  // `sockmeshctl status -o json`, parsed; null on failure.
  Json Status() {
    return ReadControlPlaneStatus(kCtlBin, absl::StrCat("127.0.0.1:", port_), Log("status"));
  }

  // Polls the status until `pred` holds for it; returns the last one seen.
  Json WaitForStatus(const std::function<bool(const Json&)>& pred, absl::Duration timeout) {
    return ::sockmesh::testing::WaitForStatus([this] { return Status(); }, pred, timeout);
  }

  static const Json* Agent(const Json& status, const std::string& node) {
    return AgentStatus(status, node);
  }

  static bool AllSynced(const Json& status, size_t n) {
    if (status["agents"].size() != n) return false;
    for (const Json& a : status["agents"]) {
      if (a["status"] != "SYNCED") return false;
    }
    return true;
  }

  // The frontends an instance's pinned maps hold (`sockmeshctl services -o json`).
  std::set<std::string> KernelFrontends(const Follower& f) {
    auto run = RunAgentToCompletion(kCtlBin, {"services", "--instance", f.instance, "-o", "json"},
                                    Log("services"));
    std::set<std::string> out;
    if (!run.ok() || run->exit_code != 0) return out;
    Json j = Json::parse(run->log.substr(run->log.find('{')), nullptr, false);
    for (const Json& s : j["services"]) out.insert(s["frontend"].get<std::string>());
    return out;
  }

  TempDir tmp_{"sockmesh-cp-test"};
  std::string home_;
  std::string manifests_;
  // sockmesh-control's source flags; empty = --manifests manifests_.
  std::vector<std::string> source_args_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<AgentProcess> control_;
  std::vector<Follower> followers_;
  int log_counter_ = 0;
};

// Both agents get the snapshot, an edit reaches both kernels as a delta, and a removal too.
TEST_F(ControlPlaneTest, EditsPropagateToBothAgents) {
  const std::string vip = "127.10.210.1";
  auto backends = StartBackends({"127.0.0.121", "127.0.0.122", "127.0.0.123"});
  ASSERT_TRUE(backends.ok()) << backends.status();
  WriteManifest(manifests_, "web.yaml",
                ServiceYaml("web", vip, {"127.0.0.121", "127.0.0.122"}, backends->port));
  ASSERT_NO_FATAL_FAILURE(StartAll());

  for (const Follower& f : followers_) {
    Tally t = DialFrom(f, vip, 20);
    EXPECT_EQ(t.failed, 0) << f.name << ": " << t.first_failure;
    EXPECT_EQ(t.backends, (std::set<std::string>{"127.0.0.121", "127.0.0.122"})) << f.name;
  }
  Json status = WaitForStatus([](const Json& s) { return AllSynced(s, 2); }, kPropagateTimeout);
  uint64_t v1 = status["current_version"];

  size_t from_a = followers_[0].process->Log().size();
  size_t from_b = followers_[1].process->Log().size();
  WriteManifest(
      manifests_, "web.yaml",
      ServiceYaml("web", vip, {"127.0.0.121", "127.0.0.122", "127.0.0.123"}, backends->port));
  ASSERT_TRUE(followers_[0].process->WaitForLog("applied delta", kPropagateTimeout, from_a).ok());
  ASSERT_TRUE(followers_[1].process->WaitForLog("applied delta", kPropagateTimeout, from_b).ok());
  for (const Follower& f : followers_) {
    Tally t = DialFrom(f, vip, 40);
    EXPECT_EQ(t.failed, 0) << f.name << ": " << t.first_failure;
    EXPECT_EQ(t.backends, (std::set<std::string>{"127.0.0.121", "127.0.0.122", "127.0.0.123"}))
        << f.name;
  }
  status =
      WaitForStatus([&](const Json& s) { return AllSynced(s, 2) && s["current_version"] > v1; },
                    kPropagateTimeout);

  ASSERT_TRUE(fs::remove(manifests_ + "/web.yaml"));
  WaitForStatus([&](const Json& s) { return AllSynced(s, 2) && s["current_version"] > v1 + 1; },
                kPropagateTimeout);
  for (const Follower& f : followers_) EXPECT_TRUE(KernelFrontends(f).empty()) << f.name;
}

// Agent b's selection-table map is too small for a Maglev table (1021 slots > 512 entries): it
// NACKs the version that adds one, keeps serving the previous version, and is not sent the same
// version again. Agent a applies it. Removing the service is a new version both can apply.
TEST_F(ControlPlaneTest, NackedVersionKeepsLastGoodState) {
  const std::string web = "127.10.211.1";
  const std::string big = "127.10.211.2";
  auto backends = StartBackends({"127.0.0.131", "127.0.0.132"});
  ASSERT_TRUE(backends.ok()) << backends.status();
  WriteManifest(manifests_, "web.yaml",
                ServiceYaml("web", web, {"127.0.0.131", "127.0.0.132"}, backends->port));
  const int b_metrics_port = PickListenPort();
  ASSERT_NE(b_metrics_port, 0);
  ASSERT_NO_FATAL_FAILURE(StartAll(
      {"--max-lut-entries", "512", "--metrics-addr", absl::StrCat("127.0.0.1:", b_metrics_port)}));
  Follower& a = followers_[0];
  Follower& b = followers_[1];

  size_t from_a = a.process->Log().size();
  size_t from_b = b.process->Log().size();
  WriteManifest(manifests_, "big.yaml",
                ServiceYaml("big", big, {"127.0.0.131", "127.0.0.132"}, backends->port, "maglev"));
  ASSERT_TRUE(a.process->WaitForLog("applied delta", kPropagateTimeout, from_a).ok());
  absl::Status nacked = b.process->WaitForLog("; NACK", kPropagateTimeout, from_b);
  ASSERT_TRUE(nacked.ok()) << nacked;

  Json status = WaitForStatus(
      [&](const Json& s) {
        const Json* sb = Agent(s, b.name);
        return sb != nullptr && (*sb)["status"] == "NACKED";
      },
      kPropagateTimeout);
  const Json* sa = Agent(status, a.name);
  const Json* sb = Agent(status, b.name);
  ASSERT_NE(sa, nullptr);
  ASSERT_NE(sb, nullptr);
  EXPECT_EQ((*sa)["status"], "SYNCED");
  EXPECT_EQ((*sb)["last_nacked_version"], status["current_version"]);
  EXPECT_LT((*sb)["last_acked_version"], status["current_version"]);
  EXPECT_THAT((*sb)["last_nack_error"].get<std::string>(), HasSubstr("cannot be written"));

  // b still runs the old version: web works, big is not there; a has both.
  Tally web_b = DialFrom(b, web, 20);
  EXPECT_EQ(web_b.failed, 0) << web_b.first_failure;
  EXPECT_EQ(DialFrom(b, big, 3).answered, 0);
  Tally big_a = DialFrom(a, big, 20);
  EXPECT_EQ(big_a.failed, 0) << big_a.first_failure;
  EXPECT_EQ(KernelFrontends(b), (std::set<std::string>{web + ":80/TCP"}));

  // The failing version is not resent.
  absl::SleepFor(absl::Seconds(1));
  std::string log_b = b.process->Log().substr(from_b);
  size_t nacks = 0;
  for (size_t p = log_b.find("; NACK"); p != std::string::npos; p = log_b.find("; NACK", p + 1)) {
    ++nacks;
  }
  EXPECT_EQ(nacks, 1u) << log_b;

  std::string metrics = Scrape(metrics_port_);
  EXPECT_EQ(MetricValue(metrics, "sockmesh_control_agents_connected"), 2) << metrics;
  EXPECT_EQ(MetricValue(metrics, "sockmesh_control_nacks_total"), 1) << metrics;
  EXPECT_EQ(MetricValue(metrics, "sockmesh_control_pushes_total{type=\"snapshot\"}"), 2) << metrics;
  EXPECT_EQ(MetricValue(metrics, "sockmesh_control_pushes_total{type=\"delta\"}"), 2) << metrics;
  EXPECT_EQ(MetricValue(metrics, "sockmesh_control_objects{kind=\"service\"}"), 2) << metrics;
  EXPECT_EQ(MetricValue(metrics, "sockmesh_control_version"),
            status["current_version"].get<double>())
      << metrics;
  EXPECT_EQ(MetricValue(metrics, "sockmesh_control_push_latency_seconds_count"), 4) << metrics;

  // Agent b counts its answers too.
  std::string agent_metrics = Scrape(b_metrics_port);
  EXPECT_EQ(MetricValue(agent_metrics, "sockmesh_agent_control_plane_connected"), 1)
      << agent_metrics;
  EXPECT_EQ(
      MetricValue(agent_metrics, "sockmesh_agent_control_plane_versions_total{answer=\"nack\"}"), 1)
      << agent_metrics;
  EXPECT_EQ(
      MetricValue(agent_metrics, "sockmesh_agent_control_plane_versions_total{answer=\"ack\"}"), 1)
      << agent_metrics;
  EXPECT_EQ(MetricValue(agent_metrics, "sockmesh_agent_control_plane_version"),
            (*sb)["last_acked_version"].get<double>())
      << agent_metrics;
  // ... and is not ready while its newest version is refused, though it serves the last good one.
  HttpAnswer ready_b = HttpGet(b_metrics_port, "/readyz");
  EXPECT_EQ(ready_b.status, 503) << ready_b.body;
  EXPECT_THAT(ready_b.body, HasSubstr("was NACKed"));
  EXPECT_THAT(ready_b.body, HasSubstr("last map sync failed: 1 of 2 services cannot be written"));
  EXPECT_EQ(HttpGet(b_metrics_port, "/healthz").status, 200);

  // The operator removes the service: a new version, which both apply.
  ASSERT_TRUE(fs::remove(manifests_ + "/big.yaml"));
  WaitForStatus([](const Json& s) { return AllSynced(s, 2); }, kPropagateTimeout);
  Tally web_b2 = DialFrom(b, web, 10);
  EXPECT_EQ(web_b2.failed, 0) << web_b2.first_failure;
  ready_b = HttpGet(b_metrics_port, "/readyz");
  EXPECT_EQ(ready_b.status, 200) << ready_b.body;
}

// Polls GET `path` on 127.0.0.1:`port` until it answers `status`, or 10 s pass; the last answer.
HttpAnswer WaitForHttpStatus(int port, const std::string& path, int status) {
  HttpAnswer a;
  for (int i = 0; i < 100; ++i) {
    a = HttpGet(static_cast<uint16_t>(port), path);
    if (a.status == status) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return a;
}

// The health checks the Helm chart probes, through the real binaries: sockmesh-control is ready
// once its source is read and gRPC serves; an agent once its programs are attached and a version
// from the control plane is applied. An agent whose control plane never answers is live but not
// ready, and one whose programs are detached behind its back (`--cleanup` while it runs) turns
// unready.
TEST_F(ControlPlaneTest, HealthEndpoints) {
  WriteManifest(manifests_, "web.yaml", ServiceYaml("web", "127.10.216.1", {"127.0.0.141"}, 8080));
  ASSERT_NO_FATAL_FAILURE(StartControlPlane());
  HttpAnswer cp_ready = WaitForHttpStatus(metrics_port_, "/readyz", 200);
  ASSERT_EQ(cp_ready.status, 200) << cp_ready.body;
  Json cp = Json::parse(cp_ready.body);
  EXPECT_EQ(cp["source"]["synced"], true);
  EXPECT_EQ(cp["grpc"], absl::StrCat("127.0.0.1:", port_));
  EXPECT_GE(cp["version"].get<int>(), 2) << "the manifests' content, not the empty placeholder";
  EXPECT_EQ(HttpGet(metrics_port_, "/healthz").status, 200);

  Follower& a = followers_[0];
  const int a_metrics = PickListenPort();
  ASSERT_NE(a_metrics, 0);
  ASSERT_NO_FATAL_FAILURE(
      StartFollower(a, {"--metrics-addr", absl::StrCat("127.0.0.1:", a_metrics)}));
  HttpAnswer ready = WaitForHttpStatus(a_metrics, "/readyz", 200);
  ASSERT_EQ(ready.status, 200) << ready.body;
  Json j = Json::parse(ready.body);
  EXPECT_EQ(j["ready"], true);
  EXPECT_GT(j["programs"]["expected"].get<int>(), 0);
  EXPECT_EQ(j["programs"]["attached"], j["programs"]["expected"]);
  EXPECT_GE(j["control_plane"]["acked_version"].get<int>(), 2);
  EXPECT_EQ(j["control_plane"]["connected"], true);
  EXPECT_TRUE(j["last_sync"]["error"].is_null());
  EXPECT_TRUE(j["short_circuit"]["enabled"].is_boolean());
  EXPECT_EQ(HttpGet(a_metrics, "/healthz").status, 200);

  // An agent whose control plane never answers: nothing listens on that port.
  Follower& b = followers_[1];
  const int nobody = PickListenPort();
  const int b_metrics = PickListenPort();
  ASSERT_NE(nobody, 0);
  ASSERT_NE(b_metrics, 0);
  auto p = AgentProcess::Start(
      kAgentBin,
      {"--control-plane", absl::StrCat("127.0.0.1:", nobody), "--node-name", b.name, "--cgroup",
       b.cgroup->path(), "--instance", b.instance, "--bpffs", kBpffs, "--metrics-addr",
       absl::StrCat("127.0.0.1:", b_metrics)},
      Log(b.name), home_);
  ASSERT_TRUE(p.ok()) << p.status();
  b.process = *std::move(p);
  ASSERT_TRUE(b.process->WaitForLog("metrics on http://", kStartTimeout).ok()) << b.process->Log();
  EXPECT_EQ(WaitForHttpStatus(b_metrics, "/healthz", 200).status, 200);
  // Give it time to try: it stays unready however long it waits.
  absl::SleepFor(absl::Seconds(1));
  ready = HttpGet(b_metrics, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  j = Json::parse(ready.body, nullptr, false);
  EXPECT_EQ(j["not_ready"],
            Json::array({absl::StrCat("no version from the control plane (127.0.0.1:", nobody,
                                      ") applied yet")}))
      << ready.body;
  EXPECT_EQ(j["programs"]["attached"], j["programs"]["expected"]);
  EXPECT_EQ(j["control_plane"]["connected"], false);

  // a's programs detached while it runs: unready, naming how many are left.
  absl::StatusOr<AgentRun> cleanup = RunAgentToCompletion(
      kAgentBin, {"--cleanup", "--instance", a.instance, "--bpffs", kBpffs}, Log("cleanup"));
  ASSERT_TRUE(cleanup.ok() && cleanup->exit_code == 0)
      << (cleanup.ok() ? cleanup->log : cleanup.status().ToString());
  ready = HttpGet(a_metrics, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_THAT(ready.body, HasSubstr(absl::StrCat("0 of ", j["programs"]["expected"].get<int>(),
                                                 " programs attached to the mesh cgroup")));
  EXPECT_EQ(HttpGet(a_metrics, "/healthz").status, 200);
}

// SIGKILL the control plane while a client connects in a loop: the datapath keeps its pinned state,
// so no connect fails. When it returns, both agents reconnect and ACK its current version.
TEST_F(ControlPlaneTest, ControlPlaneKilledUnderTraffic) {
  const std::string vip = "127.10.212.1";
  auto backends = StartBackends({"127.0.0.141", "127.0.0.142"});
  ASSERT_TRUE(backends.ok()) << backends.status();
  WriteManifest(manifests_, "web.yaml",
                ServiceYaml("web", vip, {"127.0.0.141", "127.0.0.142"}, backends->port));
  ASSERT_NO_FATAL_FAILURE(StartAll());

  // Every thread of the process follows it into a's cgroup, the dialer included.
  ASSERT_TRUE(MoveTo(followers_[0].cgroup->path()));
  std::atomic<bool> stop{false};
  Tally traffic;
  std::thread dialer([&] {
    while (!stop.load()) {
      traffic.Add(DialTcp(vip, kVipPort, "", 0, 3000));
      absl::SleepFor(absl::Milliseconds(5));
    }
  });

  absl::SleepFor(absl::Milliseconds(300));
  absl::StatusOr<int> killed = control_->Kill();
  ASSERT_TRUE(killed.ok()) << killed.status();
  for (Follower& f : followers_) {
    EXPECT_TRUE(f.process->WaitForLog("reconnecting to", kPropagateTimeout).ok());
  }
  absl::SleepFor(absl::Milliseconds(700));
  size_t from_a = followers_[0].process->Log().size();
  size_t from_b = followers_[1].process->Log().size();
  ASSERT_NO_FATAL_FAILURE(StartControlPlane());
  // The backoff is at most ~1.6 s after one second away; 15 s is plenty on a loaded machine.
  EXPECT_TRUE(followers_[0].process->WaitForLog("; ACK", absl::Seconds(15), from_a).ok());
  EXPECT_TRUE(followers_[1].process->WaitForLog("; ACK", absl::Seconds(15), from_b).ok());
  absl::SleepFor(absl::Milliseconds(300));
  stop = true;
  dialer.join();
  ASSERT_TRUE(MoveTo(home_));

  EXPECT_EQ(traffic.failed, 0) << traffic.first_failure;
  EXPECT_GT(traffic.answered, 20);
  EXPECT_EQ(traffic.backends, (std::set<std::string>{"127.0.0.141", "127.0.0.142"}));
  Json status = WaitForStatus([](const Json& s) { return AllSynced(s, 2); }, kPropagateTimeout);
  for (const Json& a : status["agents"]) {
    EXPECT_EQ(a["last_acked_version"], status["current_version"]) << a.dump();
  }
  // The resync wrote nothing: the new snapshot equals what the kernel holds.
  EXPECT_THAT(followers_[0].process->Log().substr(from_a), HasSubstr("0 map writes, 0 deletes"));
  Tally from_b_cgroup = DialFrom(followers_[1], vip, 10);
  EXPECT_EQ(from_b_cgroup.failed, 0) << from_b_cgroup.first_failure;
}

// The binaries explain themselves, and the agent refuses mixing the two modes.
TEST_F(ControlPlaneTest, HelpAndRefusals) {
  auto help = RunAgentToCompletion(kControlBin, {"--help"}, Log("help"));
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_EQ(help->exit_code, 0);
  for (const char* flag : {"--manifests", "--kubernetes", "--kube-server", "--kube-token-file",
                           "--kube-ca-file", "--listen", "--metrics-addr"}) {
    EXPECT_THAT(help->log, HasSubstr(flag));
  }
  auto agent_help = RunAgentToCompletion(kAgentBin, {"--help"}, Log("help"));
  ASSERT_TRUE(agent_help.ok()) << agent_help.status();
  EXPECT_THAT(agent_help->log, HasSubstr("--control-plane"));

  auto mixed =
      RunAgentToCompletion(kAgentBin,
                           {"--control-plane", "127.0.0.1:1", "--manifests", manifests_, "--cgroup",
                            followers_[0].cgroup->path(), "--instance", followers_[0].instance},
                           Log("mixed"));
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_EQ(mixed->exit_code, 2);
  EXPECT_THAT(mixed->log, HasSubstr("--control-plane excludes"));

  auto no_cp =
      RunAgentToCompletion(kCtlBin, {"status", "--control-plane", "127.0.0.1:1"}, Log("status"));
  ASSERT_TRUE(no_cp.ok()) << no_cp.status();
  EXPECT_EQ(no_cp->exit_code, 1);
  EXPECT_THAT(no_cp->log, HasSubstr("control plane at 127.0.0.1:1"));
}

}  // namespace
}  // namespace sockmesh::testing

namespace sockmesh::testing {
namespace {

// sockmesh-control following a (fake, HTTPS) Kubernetes API server with the explicit flags: the
// listed Service and EndpointSlice reach an agent's kernel, then a watch MODIFIED event that
// replaces the slice's endpoints moves new connections to the new backends only.
TEST_F(ControlPlaneTest, FollowsKubernetesApiServer) {
  const std::string vip = "127.10.214.1";
  auto backends = StartBackends({"127.0.0.141", "127.0.0.142", "127.0.0.143", "127.0.0.144"});
  ASSERT_TRUE(backends.ok()) << backends.status();
  const int port = backends->port;
  const std::string go_file = tmp_.path() + "/modify-now";
  constexpr char kServices[] = "/api/v1/services";
  constexpr char kSlices[] = "/apis/discovery.k8s.io/v1/endpointslices";
  Json script;
  script[kServices]["lists"] = {
      {{"body", ListJson("ServiceList", "v1", "100",
                         {ServiceJson("test", "web", vip, kVipPort, port, "90"),
                          // Rejected alone: logged and counted, the valid objects still apply.
                          ServiceJson("test", "broken", "10.96.300.1", kVipPort, port, "91")})}}};
  script[kServices]["watches"] = Json::array();
  script[kSlices]["lists"] = {
      {{"body", ListJson("EndpointSliceList", "discovery.k8s.io/v1", "100",
                         {SliceJson("test", "web-abc12", "web", {"127.0.0.141", "127.0.0.142"},
                                    port, "95")})}}};
  // The first watch waits for the test's go-ahead, then moves the slice to two other backends.
  Json modified = EventJson("MODIFIED", SliceJson("test", "web-abc12", "web",
                                                  {"127.0.0.143", "127.0.0.144"}, port, "101"));
  script[kSlices]["watches"] = {
      {{"steps", {{{"wait_file", go_file}}, {{"event", modified}}}}, {"end", "hold"}}};
  script["/api/v1/pods"]["lists"] = {{{"body", ListJson("PodList", "v1", "100", {})}}};
  script["/api/v1/namespaces"]["lists"] = {{{"body", ListJson("NamespaceList", "v1", "100", {})}}};
  script["/apis/sockmesh.io/v1alpha1/trafficpolicies"]["lists"] = {
      {{"body", ListJson("TrafficPolicyList", "sockmesh.io/v1alpha1", "100", {})}}};
  absl::StatusOr<std::unique_ptr<FakeKubeApiServer>> api = FakeKubeApiServer::Start(script);
  ASSERT_TRUE(api.ok()) << api.status();

  source_args_ = {"--kube-server",     (*api)->url(),
                  "--kube-token-file", (*api)->token_file().string(),
                  "--kube-ca-file",    (*api)->ca_file().string()};
  ASSERT_NO_FATAL_FAILURE(StartControlPlane());
  ASSERT_TRUE(control_->WaitForLog("source: Kubernetes API at", kStartTimeout).ok())
      << control_->Log();
  // The agent's first ACK may be of the empty placeholder if it connects before the lists are
  // in: wait for the version with the Service.
  ASSERT_TRUE(control_->WaitForLog(": 1 services, 2 backends", kStartTimeout).ok())
      << control_->Log();
  Follower& f = followers_[0];
  ASSERT_NO_FATAL_FAILURE(StartFollower(f));
  WaitForStatus(
      [&](const Json& s) {
        const Json* a = Agent(s, f.name);
        return a != nullptr && (*a)["status"] == "SYNCED" &&
               (*a)["last_acked_version"] == s["current_version"];
      },
      kPropagateTimeout);
  Tally before = DialFrom(f, vip, 20);
  EXPECT_EQ(before.failed, 0) << before.first_failure;
  EXPECT_EQ(before.backends, (std::set<std::string>{"127.0.0.141", "127.0.0.142"}));

  size_t from = f.process->Log().size();
  { std::ofstream(go_file) << "go"; }
  absl::Status applied = f.process->WaitForLog("applied delta", kPropagateTimeout, from);
  ASSERT_TRUE(applied.ok()) << applied << "\n" << control_->Log();
  Tally after = DialFrom(f, vip, 20);
  EXPECT_EQ(after.failed, 0) << after.first_failure;
  EXPECT_EQ(after.backends, (std::set<std::string>{"127.0.0.143", "127.0.0.144"}));

  EXPECT_THAT(control_->Log(), HasSubstr("Service test/broken")) << control_->Log();
  std::string metrics = Scrape(metrics_port_);
  std::optional<double> errors = MetricValue(metrics, "sockmesh_control_source_errors_total");
  ASSERT_TRUE(errors.has_value()) << metrics;
  EXPECT_GE(*errors, 1) << metrics;

  // Every request carried the token from --kube-token-file.
  for (const Json& request : (*api)->Requests()) {
    EXPECT_EQ(request["authorization"], absl::StrCat("Bearer ", FakeKubeApiServer::kToken));
  }
}

// The source flags are checked before anything starts, with messages naming them.
TEST_F(ControlPlaneTest, SourceFlagsAreExclusive) {
  auto run = RunAgentToCompletion(
      kControlBin, {"--manifests", manifests_, "--kube-server", "https://127.0.0.1:1"},
      Log("flags"));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_NE(run->exit_code, 0);
  EXPECT_THAT(run->log, HasSubstr("--manifests"));
  EXPECT_THAT(run->log, HasSubstr("--kube-server"));
  run = RunAgentToCompletion(kControlBin, {"--listen", "127.0.0.1:0"}, Log("flags"));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_NE(run->exit_code, 0);
  EXPECT_THAT(run->log, HasSubstr("no source"));
  run = RunAgentToCompletion(kControlBin, {"--kube-server", "https://127.0.0.1:1"}, Log("flags"));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_NE(run->exit_code, 0);
  EXPECT_THAT(run->log, HasSubstr("--kube-ca-file"));
}

}  // namespace
}  // namespace sockmesh::testing
