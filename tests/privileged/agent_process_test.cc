// SPDX-License-Identifier: Apache-2.0
// The sockmesh-agent binary as an operator runs it: a real process reading a manifests directory,
// attaching to a throwaway cgroup that the test process sits in (the agent itself runs outside
// it), restarted and killed under load, and cleaned up with `--cleanup`. Traffic only goes to
// 127.0.0.0/8: backends are NameServers on 127.0.0.x, and each test has its own VIP in
// 127.10.0.0/16, so a missing hook fails locally.
#include "tests/support/agent_process.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/substitute.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sockmesh/consts.h"
#include "tests/support/manifest_files.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/name_server.h"
#include "tests/support/scoped_cgroup.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/cgroup.h"
#include "userspace/bpf/typed_map.h"
#include "userspace/sys/unique_fd.h"

#ifndef SOCKMESH_AGENT_BIN
#error "SOCKMESH_AGENT_BIN must name the sockmesh-agent binary (set by tests/privileged/CMakeLists)"
#endif

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kAgentBin[] = SOCKMESH_AGENT_BIN;
constexpr char kBpffs[] = "/sys/fs/bpf";
constexpr char kBpftool[] = "/usr/sbin/bpftool";
constexpr uint16_t kTcpPort = 80;
constexpr uint16_t kUdpPort = 9000;
// Program loads take a fraction of a second, but the machine is shared with other builds.
constexpr absl::Duration kStartTimeout = absl::Seconds(30);
// inotify + 200 ms debounce + one 250 ms wait slice, with plenty of slack for a loaded machine.
constexpr absl::Duration kReloadTimeout = absl::Seconds(15);

std::string PinDir(const std::string& instance) {
  return absl::StrCat(kBpffs, "/sockmesh/", instance);
}

// Programs attached directly to a cgroup, over every attach type (BPF_PROG_QUERY: the same
// question `bpftool cgroup show` asks). Types that do not apply to cgroups answer EINVAL.
int AttachedProgramCount(const std::string& cgroup_path) {
  sys::UniqueFd fd(::open(cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return -1;
  int total = 0;
  for (int type = 0; type < __MAX_BPF_ATTACH_TYPE; ++type) {
    uint32_t ids[64];
    uint32_t count = 64;
    uint32_t flags = 0;
    if (bpf_prog_query(fd.get(), static_cast<bpf_attach_type>(type), 0, &flags, ids, &count) == 0) {
      total += static_cast<int>(count);
    }
  }
  return total;
}

// Runs `sockmesh-agent --cleanup` for an instance when asked, and at the latest when destroyed, so
// that a failing test leaves no pins and no attached programs behind.
class InstanceCleanup {
 public:
  InstanceCleanup(std::string instance, std::string log_path, std::string cgroup)
      : instance_(std::move(instance)),
        log_path_(std::move(log_path)),
        cgroup_(std::move(cgroup)) {}
  ~InstanceCleanup() {
    if (!done_) (void)Run();
  }
  InstanceCleanup(const InstanceCleanup&) = delete;
  InstanceCleanup& operator=(const InstanceCleanup&) = delete;

  // OK when the cleanup exited 0 and the pin directory is gone. Safe to repeat.
  absl::Status Run() {
    done_ = true;
    absl::StatusOr<AgentRun> run = RunAgentToCompletion(
        kAgentBin, {"--cleanup", "--instance", instance_, "--bpffs", kBpffs}, log_path_, cgroup_);
    if (!run.ok()) return run.status();
    if (run->exit_code != 0) {
      return absl::InternalError(
          absl::StrCat("--cleanup exited with ", run->exit_code, ":\n", run->log));
    }
    if (fs::exists(PinDir(instance_))) {
      return absl::InternalError(absl::StrCat(PinDir(instance_), " still exists after --cleanup"));
    }
    return absl::OkStatus();
  }

 private:
  std::string instance_;
  std::string log_path_;
  std::string cgroup_;
  bool done_ = false;
};

// A set of backends that say who they are (their IP), all on the same TCP port and the same UDP
// port, because an EndpointSlice gives one port per name to all of its endpoints.
struct BackendSet {
  std::vector<std::string> ips;
  uint16_t tcp_port = 0;
  uint16_t udp_port = 0;
  std::vector<std::unique_ptr<NameServer>> servers;

  uint64_t Served(const std::string& ip) const {
    uint64_t n = 0;
    for (const auto& s : servers) n += s->ip() == ip ? s->served() : 0;
    return n;
  }
};

// Starts one server per IP on a port picked by the first; retries when another process holds that
// port on one of the other addresses.
absl::StatusOr<std::vector<std::unique_ptr<NameServer>>> StartOnSamePort(
    const std::vector<std::string>& ips, NameServer::Kind kind, uint16_t& port) {
  absl::Status last = absl::UnknownError("no attempt");
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::vector<std::unique_ptr<NameServer>> servers;
    uint16_t chosen = 0;
    for (const std::string& ip : ips) {
      absl::StatusOr<std::unique_ptr<NameServer>> s = NameServer::Start(ip, kind, ip, chosen);
      if (!s.ok()) {
        last = s.status();
        break;
      }
      chosen = (*s)->port();
      servers.push_back(*std::move(s));
    }
    if (servers.size() == ips.size()) {
      port = chosen;
      return servers;
    }
  }
  return last;
}

absl::StatusOr<BackendSet> StartBackends(std::vector<std::string> ips) {
  BackendSet set;
  set.ips = std::move(ips);
  auto tcp = StartOnSamePort(set.ips, NameServer::Kind::kTcp, set.tcp_port);
  if (!tcp.ok()) return tcp.status();
  auto udp = StartOnSamePort(set.ips, NameServer::Kind::kUdp, set.udp_port);
  if (!udp.ok()) return udp.status();
  for (auto& s : *tcp) set.servers.push_back(std::move(s));
  for (auto& s : *udp) set.servers.push_back(std::move(s));
  return set;
}

// A v1 Service in namespace "test" with a TCP and a UDP port, both with named target ports that the
// EndpointSlice resolves.
std::string ServiceYaml(const std::string& name, const std::string& cluster_ip,
                        const std::string& tcp_port = absl::StrCat(kTcpPort)) {
  return absl::Substitute(R"(apiVersion: v1
kind: Service
metadata:
  name: $0
  namespace: test
spec:
  clusterIP: $1
  ports:
    - name: tcp
      port: $2
      targetPort: tcp
      protocol: TCP
    - name: udp
      port: $3
      targetPort: udp
      protocol: UDP
)",
                          name, cluster_ip, tcp_port, kUdpPort);
}

struct Endpoint {
  std::string ip;
  bool ready = true;
};

std::string SliceYaml(const std::string& service, const std::vector<Endpoint>& endpoints,
                      uint16_t tcp_port, uint16_t udp_port) {
  std::string list;
  for (const Endpoint& e : endpoints) {
    absl::SubstituteAndAppend(&list, "  - addresses: [\"$0\"]\n    conditions:\n      ready: $1\n",
                              e.ip, e.ready);
  }
  return absl::Substitute(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $0-1
  namespace: test
  labels:
    kubernetes.io/service-name: $0
addressType: IPv4
endpoints:
$1ports:
  - name: tcp
    port: $2
    protocol: TCP
  - name: udp
    port: $3
    protocol: UDP
)",
                          service, list, tcp_port, udp_port);
}

std::string SliceYaml(const std::string& service, const BackendSet& set) {
  std::vector<Endpoint> endpoints;
  for (const std::string& ip : set.ips) endpoints.push_back({.ip = ip});
  return SliceYaml(service, endpoints, set.tcp_port, set.udp_port);
}

// What a series of dials saw.
struct Tally {
  std::map<std::string, int> replies;  // reply (backend IP) -> count
  std::set<std::string> peers;         // getpeername() / recvfrom() source
  int failed = 0;                      // errors, or connections without a reply
  int answered = 0;
  std::string first_failure;

  std::set<std::string> Backends() const {
    std::set<std::string> out;
    for (const auto& [reply, n] : replies) out.insert(reply);
    return out;
  }
  void Add(const DialResult& r) {
    if (r.error == 0 && !r.reply.empty()) {
      answered++;
      replies[r.reply]++;
      peers.insert(r.peer);
      return;
    }
    if (failed++ == 0) {
      first_failure = absl::StrCat("errno ", r.error, " (", std::strerror(r.error), "), reply \"",
                                   r.reply, "\"");
    }
  }
};

Tally DialTcpTimes(const std::string& vip, uint16_t port, int n, int timeout_ms = 3000) {
  Tally t;
  for (int i = 0; i < n; ++i) t.Add(DialTcp(vip, port, "", 0, timeout_ms));
  return t;
}

Tally DialUdpTimes(const std::string& vip, uint16_t port, int n) {
  Tally t;
  for (int i = 0; i < n; ++i) t.Add(DialUdp(vip, port, "ping", 2000));
  return t;
}

std::set<std::string> AsSet(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

// A second cgroup for one test. Not named sockmesh-test-*: ScopedCgroup::Create() removes every
// empty cgroup with that prefix, which this one is.
class ExtraCgroup {
 public:
  explicit ExtraCgroup(const std::string& name) {
    absl::StatusOr<std::string> mount = agent::FindCgroup2Mount();
    if (!mount.ok()) return;
    std::string path = absl::StrCat(*mount, "/sockmesh-agenttest-", ::getpid(), "-", name);
    if (agent::EnsureCgroup(path).ok()) path_ = path;
  }
  ~ExtraCgroup() {
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  ExtraCgroup(const ExtraCgroup&) = delete;
  ExtraCgroup& operator=(const ExtraCgroup&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sets `flag` to `value` in an argument list: replaces the value when the flag is there, else
// appends both.
std::vector<std::string> WithFlag(std::vector<std::string> args, const std::string& flag,
                                  const std::string& value) {
  auto it = std::find(args.begin(), args.end(), flag);
  if (it != args.end() && it + 1 != args.end()) {
    *(it + 1) = value;
  } else {
    args.push_back(flag);
    args.push_back(value);
  }
  return args;
}

class AgentProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty()) << "mkdtemp: " << std::strerror(errno);
    home_cgroup_ = CurrentCgroup();
    ASSERT_FALSE(home_cgroup_.empty()) << "no cgroup v2 entry in /proc/self/cgroup";
    absl::StatusOr<ScopedCgroup> cg = ScopedCgroup::Create();
    ASSERT_TRUE(cg.ok()) << "needs root and cgroup v2: " << cg.status();
    cgroup_.emplace(*std::move(cg));
    // Joined at once, so the cgroup is never empty: ScopedCgroup::Create() in another test
    // process removes empty sockmesh-test-* cgroups. Agents are started back in home_cgroup_.
    ASSERT_TRUE(cgroup_->Join().ok());
    instance_ = UniqueInstanceName();
    manifests_ = tmp_.path() + "/manifests";
    fs::create_directory(manifests_);
    cleanup_ =
        std::make_unique<InstanceCleanup>(instance_, tmp_.path() + "/cleanup.log", home_cgroup_);
  }

  void TearDown() override {
    // The test body's agents are already gone (locals). Leave first, so the cgroup can go.
    if (cgroup_) {
      EXPECT_TRUE(cgroup_->Leave().ok());
    }
    absl::Status s = cleanup_ ? cleanup_->Run() : absl::OkStatus();
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_FALSE(fs::exists(PinDir(instance_))) << PinDir(instance_);
  }

  // The test's own agent flags; tests change single ones with WithFlag().
  std::vector<std::string> Args() const {
    return {"--manifests", manifests_, "--cgroup", cgroup_->path(), "--instance", instance_,
            "--bpffs", kBpffs,
            // Off: the default port 9464 may be taken. ServesMetrics turns it on.
            "--metrics-addr", "",
            // No resync during a test: its quiet "sync:" line could be mistaken for a reload's.
            "--resync-interval", "3600"};
  }

  std::string NextLogPath() { return absl::StrCat(tmp_.path(), "/agent-", log_counter_++, ".log"); }

  // Starts the agent and waits for its first sync; fails the test (fatally) otherwise.
  void StartAgent(std::unique_ptr<AgentProcess>& out, const std::vector<std::string>& args) {
    absl::StatusOr<std::unique_ptr<AgentProcess>> p =
        AgentProcess::Start(kAgentBin, args, NextLogPath(), home_cgroup_);
    ASSERT_TRUE(p.ok()) << p.status();
    out = *std::move(p);
    absl::Status synced = out->WaitForLog("sync: ", kStartTimeout);
    ASSERT_TRUE(synced.ok()) << synced;
  }

  // Runs a command (the agent unless told otherwise) to completion.
  AgentRun RunToCompletion(const std::vector<std::string>& args,
                           const std::string& binary = kAgentBin) {
    absl::StatusOr<AgentRun> run = RunAgentToCompletion(binary, args, NextLogPath(), home_cgroup_);
    EXPECT_TRUE(run.ok()) << run.status();
    return run.ok() ? *run : AgentRun{};
  }

  TempDir tmp_{"sockmesh-agent-test"};
  std::string home_cgroup_;
  std::optional<ScopedCgroup> cgroup_;
  std::string instance_;
  std::string manifests_;
  std::unique_ptr<InstanceCleanup> cleanup_;
  int log_counter_ = 0;
};

// (a) Manifests in, balanced sockets out: only ready endpoints get traffic, both of them, over TCP
// and UDP, and the client only ever sees the VIP.
TEST_F(AgentProcessTest, StandaloneEndToEnd) {
  const std::string vip = "127.10.201.1";
  auto backends = StartBackends({"127.0.0.101", "127.0.0.102", "127.0.0.103"});
  ASSERT_TRUE(backends.ok()) << backends.status();
  WriteManifest(manifests_, "svc.yaml", ServiceYaml("e2e", vip));
  WriteManifest(
      manifests_, "slice.yaml",
      SliceYaml("e2e", {{"127.0.0.101", true}, {"127.0.0.102", true}, {"127.0.0.103", false}},
                backends->tcp_port, backends->udp_port));

  std::unique_ptr<AgentProcess> agent;
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, Args()));
  EXPECT_THAT(agent->Log(), HasSubstr("sync: 2 added"));

  Tally tcp = DialTcpTimes(vip, kTcpPort, 200);
  EXPECT_EQ(tcp.failed, 0) << tcp.first_failure;
  EXPECT_EQ(tcp.Backends(), (std::set<std::string>{"127.0.0.101", "127.0.0.102"}));
  EXPECT_EQ(tcp.peers, std::set<std::string>{absl::StrCat(vip, ":", kTcpPort)});

  Tally udp = DialUdpTimes(vip, kUdpPort, 40);
  EXPECT_EQ(udp.failed, 0) << udp.first_failure;
  EXPECT_EQ(udp.Backends(), (std::set<std::string>{"127.0.0.101", "127.0.0.102"}));
  // recvmsg is rewritten back: the reply appears to come from the address the client sent to.
  EXPECT_EQ(udp.peers, std::set<std::string>{absl::StrCat(vip, ":", kUdpPort)});

  EXPECT_EQ(backends->Served("127.0.0.103"), 0u) << "the not-ready endpoint got traffic";
}

// (b) Edits are picked up: a new backend set replaces the old one as soon as the agent says it
// synced, and deleting the Service takes the VIP out of the datapath.
TEST_F(AgentProcessTest, ReloadsOnChange) {
  const std::string vip = "127.10.202.1";
  auto old_set = StartBackends({"127.0.0.111", "127.0.0.112"});
  ASSERT_TRUE(old_set.ok()) << old_set.status();
  auto new_set = StartBackends({"127.0.0.113", "127.0.0.114"});
  ASSERT_TRUE(new_set.ok()) << new_set.status();
  WriteManifest(manifests_, "svc.yaml", ServiceYaml("reload", vip));
  WriteManifest(manifests_, "slice.yaml", SliceYaml("reload", *old_set));

  std::unique_ptr<AgentProcess> agent;
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, Args()));
  Tally before = DialTcpTimes(vip, kTcpPort, 50);
  EXPECT_EQ(before.failed, 0) << before.first_failure;
  EXPECT_EQ(before.Backends(), AsSet(old_set->ips));

  size_t mark = agent->Log().size();
  ASSERT_NO_FATAL_FAILURE(WriteManifest(manifests_, "slice.yaml", SliceYaml("reload", *new_set)));
  // Both frontends (TCP and UDP) get a new backend set.
  absl::Status reloaded = agent->WaitForLog("sync: 0 added, 2 updated", kReloadTimeout, mark);
  ASSERT_TRUE(reloaded.ok()) << reloaded;
  // The agent logs after the maps are written: from here on, only the new set may answer.
  Tally after = DialTcpTimes(vip, kTcpPort, 100);
  EXPECT_EQ(after.failed, 0) << after.first_failure;
  EXPECT_EQ(after.Backends(), AsSet(new_set->ips));
  Tally udp = DialUdpTimes(vip, kUdpPort, 20);
  EXPECT_EQ(udp.failed, 0) << udp.first_failure;
  EXPECT_EQ(udp.Backends(), AsSet(new_set->ips));

  mark = agent->Log().size();
  ASSERT_EQ(::unlink((manifests_ + "/svc.yaml").c_str()), 0);
  absl::Status removed = agent->WaitForLog("2 removed", kReloadTimeout, mark);
  ASSERT_TRUE(removed.ok()) << removed;
  // Nothing listens on the VIP itself, so an untranslated connect is refused.
  Tally gone = DialTcpTimes(vip, kTcpPort, 20, 1000);
  EXPECT_EQ(gone.answered, 0) << "a backend still answers the deleted Service: "
                              << absl::StrJoin(gone.Backends(), ",");
  EXPECT_EQ(gone.failed, 20);
  EXPECT_THAT(gone.first_failure, HasSubstr(absl::StrCat("errno ", ECONNREFUSED)));
}

// (c) A broken file is reported (file, field path, value) and its last good parse stays in force;
// fixing it applies the fixed content.
TEST_F(AgentProcessTest, BadManifestsKeepLastGoodState) {
  const std::string vip = "127.10.203.1";
  auto old_set = StartBackends({"127.0.0.121", "127.0.0.122"});
  ASSERT_TRUE(old_set.ok()) << old_set.status();
  auto new_set = StartBackends({"127.0.0.123"});
  ASSERT_TRUE(new_set.ok()) << new_set.status();
  const std::string good_service = ServiceYaml("bad", vip);
  WriteManifest(manifests_, "svc.yaml", good_service);
  WriteManifest(manifests_, "slice.yaml", SliceYaml("bad", *old_set));

  std::unique_ptr<AgentProcess> agent;
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, Args()));

  struct Breakage {
    std::string what;
    std::string file;
    std::string content;
    std::vector<std::string> expected;  // substrings of the logged error
  };
  std::string bad_slice = SliceYaml("bad", *old_set);
  bad_slice.replace(bad_slice.find("127.0.0.121"), strlen("127.0.0.121"), "fd00::121");
  const std::vector<Breakage> breakages = {
      {"YAML syntax error",
       "svc.yaml",
       good_service + "  ports: [\n    - {name: x\n",
       {"svc.yaml", "line ", "YAML syntax error"}},
      {"named port",
       "svc.yaml",
       ServiceYaml("bad", vip, "\"http\""),
       {"svc.yaml", "spec.ports[0].port", "\"http\""}},
      {"invalid clusterIP",
       "svc.yaml",
       ServiceYaml("bad", "999.1.1.1"),
       {"svc.yaml", "spec.clusterIP", "999.1.1.1"}},
      {"IPv6 address in an IPv4 slice",
       "slice.yaml",
       bad_slice,
       {"slice.yaml", "endpoints[0].addresses[0]", "fd00::121"}},
  };
  for (const Breakage& b : breakages) {
    SCOPED_TRACE(b.what);
    const size_t broken_at = agent->Log().size();
    ASSERT_NO_FATAL_FAILURE(WriteManifest(manifests_, b.file, b.content));
    // The last expected substring only ever appears in the error (the file name also appears in
    // "changed: <file>" lines).
    absl::Status logged = agent->WaitForLog(b.expected.back(), kReloadTimeout, broken_at);
    ASSERT_TRUE(logged.ok()) << logged;
    // One ERROR line names the file, the field and the value.
    const std::string log = agent->Log().substr(broken_at);
    std::string line;
    for (size_t start = 0; start < log.size() && line.empty();) {
      size_t end = std::min(log.find('\n', start), log.size());
      std::string candidate = log.substr(start, end - start);
      if (absl::StrContains(candidate, b.expected.back())) line = candidate;
      start = end + 1;
    }
    EXPECT_THAT(line, HasSubstr(" ERROR "));
    for (const std::string& s : b.expected) EXPECT_THAT(line, HasSubstr(s)) << log;

    Tally t = DialTcpTimes(vip, kTcpPort, 30);
    EXPECT_EQ(t.failed, 0) << t.first_failure;
    EXPECT_EQ(t.Backends(), AsSet(old_set->ips));
    // Put the Service back before the next breakage, so each one is alone; the state is the
    // same, so nothing is synced.
    if (b.file == "svc.yaml") {
      const size_t restored_at = agent->Log().size();
      ASSERT_NO_FATAL_FAILURE(WriteManifest(manifests_, "svc.yaml", good_service));
      ASSERT_TRUE(agent->WaitForLog("changed: svc.yaml", kReloadTimeout, restored_at).ok());
    }
    EXPECT_THAT(agent->Log().substr(broken_at), ::testing::Not(HasSubstr("sync: ")))
        << "the broken file changed the datapath";
  }

  // Fixing the slice (to a new backend set) applies it.
  size_t mark = agent->Log().size();
  ASSERT_NO_FATAL_FAILURE(WriteManifest(manifests_, "slice.yaml", SliceYaml("bad", *new_set)));
  absl::Status fixed = agent->WaitForLog("sync: 0 added, 2 updated", kReloadTimeout, mark);
  ASSERT_TRUE(fixed.ok()) << fixed;
  Tally t = DialTcpTimes(vip, kTcpPort, 30);
  EXPECT_EQ(t.failed, 0) << t.first_failure;
  EXPECT_EQ(t.Backends(), AsSet(new_set->ips));

  // Fixing the Service with a changed port applies that too: the old port is gone.
  mark = agent->Log().size();
  ASSERT_NO_FATAL_FAILURE(WriteManifest(manifests_, "svc.yaml", ServiceYaml("bad", vip, "81")));
  fixed = agent->WaitForLog("sync: 1 added, 0 updated, 1 removed", kReloadTimeout, mark);
  ASSERT_TRUE(fixed.ok()) << fixed;
  t = DialTcpTimes(vip, 81, 30);
  EXPECT_EQ(t.failed, 0) << t.first_failure;
  EXPECT_EQ(t.Backends(), AsSet(new_set->ips));
  EXPECT_EQ(DialTcpTimes(vip, kTcpPort, 5, 1000).answered, 0);
}

// (d) Restarting the agent under load, by SIGKILL or SIGTERM: the pinned datapath keeps balancing
// while no agent runs, the new agent replaces the programs in place and rewrites nothing.
class AgentProcessRestartTest : public AgentProcessTest,
                                public ::testing::WithParamInterface<int> {};

TEST_P(AgentProcessRestartTest, RestartUnderLoadDropsNothing) {
  const int signal = GetParam();
  const std::string vip = signal == SIGKILL ? "127.10.204.1" : "127.10.205.1";
  auto backends = StartBackends({"127.0.0.131", "127.0.0.132"});
  ASSERT_TRUE(backends.ok()) << backends.status();
  WriteManifest(manifests_, "svc.yaml", ServiceYaml("restart", vip));
  WriteManifest(manifests_, "slice.yaml", SliceYaml("restart", *backends));

  // Debug level: a sync that changes nothing is logged only there, and it is what we look for.
  const std::vector<std::string> args = WithFlag(Args(), "--log-level", "debug");
  std::unique_ptr<AgentProcess> first;
  ASSERT_NO_FATAL_FAILURE(StartAgent(first, args));
  std::smatch m;
  std::string first_log = first->Log();
  ASSERT_TRUE(std::regex_search(first_log, m, std::regex(R"((\d+) programs attached, 0 adopted)")))
      << first_log;
  const std::string programs = m[1];

  // The client runs until told to stop, and never longer than the hard cap.
  std::atomic<bool> stop{false};
  Tally load;
  std::thread client([&] {
    absl::Time cap = absl::Now() + absl::Seconds(20);
    while (!stop.load() && absl::Now() < cap) {
      load.Add(DialTcp(vip, kTcpPort, "", 0, 2000));
      absl::SleepFor(absl::Milliseconds(1));  // leave CPU for the agent starting up
    }
  });
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, client};

  absl::SleepFor(absl::Milliseconds(300));
  absl::StatusOr<int> code = signal == SIGKILL ? first->Kill() : first->Terminate();
  ASSERT_TRUE(code.ok()) << code.status();
  if (signal == SIGKILL) {
    EXPECT_EQ(*code, 128 + SIGKILL);
  } else {
    EXPECT_EQ(*code, 0) << first->Log();
    EXPECT_THAT(first->Log(), HasSubstr("the datapath stays attached"));
  }
  absl::SleepFor(absl::Milliseconds(500));  // no agent at all: the pins carry the datapath
  // What the next agent must adopt: every link still pinned (the nine load-balancer links, plus
  // the short-circuit's when its start-up probe kept it).
  size_t pinned_links = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(PinDir(instance_) + "/links")) {
    ++pinned_links;
  }
  EXPECT_GE(pinned_links, 9u);
  std::unique_ptr<AgentProcess> second;
  ASSERT_NO_FATAL_FAILURE(StartAgent(second, args));
  absl::SleepFor(absl::Milliseconds(300));  // load across the new programs too
  stop = true;
  client.join();

  RecordProperty("connects_answered", load.answered);
  RecordProperty("connects_failed", load.failed);
  EXPECT_EQ(load.failed, 0) << load.first_failure << " (" << load.answered << " answered)";
  EXPECT_GT(load.answered, 100);
  EXPECT_EQ(load.Backends(), AsSet(backends->ips));
  const std::string log = second->Log();
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"((\d+) programs attached, (\d+) adopted)")))
      << log;
  EXPECT_EQ(std::stoul(m[2]), pinned_links) << log;
  // Nothing is attached twice: a restart attaches only what the first run had detached again.
  EXPECT_EQ(std::stoul(m[1]) + std::stoul(m[2]), std::stoul(programs)) << log;
  EXPECT_THAT(log, HasSubstr("maps reused: sm_svc_v1,"));
  EXPECT_THAT(log, HasSubstr("recovered 2 services from the kernel maps"));
  EXPECT_THAT(log, HasSubstr("sync: 0 added, 0 updated, 0 removed, 2 unchanged, 0 failed "
                             "(0 map writes, 0 deletes)"));
}

INSTANTIATE_TEST_SUITE_P(Signals, AgentProcessRestartTest, ::testing::Values(SIGKILL, SIGTERM),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(info.param == SIGKILL ? "Kill" : "Term");
                         });

// (e) `--cleanup` takes the datapath away: no program on the cgroup, no pins, VIP unbalanced. Run
// once with the agent stopped and once while it still runs (and holds link fds).
class AgentProcessCleanupTest : public AgentProcessTest,
                                public ::testing::WithParamInterface<bool> {};

TEST_P(AgentProcessCleanupTest, CleanupDetaches) {
  const bool agent_running = GetParam();
  const std::string vip = agent_running ? "127.10.206.1" : "127.10.207.1";
  auto backends = StartBackends({"127.0.0.141", "127.0.0.142"});
  ASSERT_TRUE(backends.ok()) << backends.status();
  WriteManifest(manifests_, "svc.yaml", ServiceYaml("cleanup", vip));
  WriteManifest(manifests_, "slice.yaml", SliceYaml("cleanup", *backends));

  std::unique_ptr<AgentProcess> agent;
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, Args()));
  EXPECT_GT(AttachedProgramCount(cgroup_->path()), 0);
  Tally before = DialTcpTimes(vip, kTcpPort, 20);
  EXPECT_EQ(before.failed, 0) << before.first_failure;
  if (!agent_running) {
    absl::StatusOr<int> code = agent->Terminate();
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0);
  }

  absl::Status cleaned = cleanup_->Run();
  ASSERT_TRUE(cleaned.ok()) << cleaned;
  EXPECT_FALSE(fs::exists(PinDir(instance_)));
  EXPECT_EQ(AttachedProgramCount(cgroup_->path()), 0);
  if (fs::exists(kBpftool)) {
    AgentRun show = RunToCompletion({"cgroup", "show", cgroup_->path()}, kBpftool);
    EXPECT_EQ(show.exit_code, 0) << show.log;
    // Only the command line that AgentProcess writes first; bpftool itself prints nothing.
    EXPECT_EQ(std::count(show.log.begin(), show.log.end(), '\n'), 1) << show.log;
  }
  Tally after = DialTcpTimes(vip, kTcpPort, 10, 1000);
  EXPECT_EQ(after.answered, 0) << "still balanced after --cleanup";
  EXPECT_THAT(after.first_failure, HasSubstr(absl::StrCat("errno ", ECONNREFUSED)));
  if (agent_running) {
    // The agent outlives the cleanup harmlessly and still stops cleanly.
    absl::StatusOr<int> code = agent->Terminate();
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0) << agent->Log();
    EXPECT_EQ(AttachedProgramCount(cgroup_->path()), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(AgentState, AgentProcessCleanupTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "AgentRunning" : "AgentStopped");
                         });

// (f) Refusals: each exits non-zero with a message naming what to change, and attaches nothing.
TEST_F(AgentProcessTest, RefusesRootCgroup) {
  absl::StatusOr<std::string> mount = agent::FindCgroup2Mount();
  ASSERT_TRUE(mount.ok()) << mount.status();
  const int root_programs = AttachedProgramCount(*mount);
  // The mount itself, spelled three ways, is the root cgroup.
  for (const std::string& root : {*mount, *mount + "/", *mount + "/x/.."}) {
    SCOPED_TRACE(root);
    AgentRun run = RunToCompletion(WithFlag(Args(), "--cgroup", root));
    EXPECT_NE(run.exit_code, 0);
    EXPECT_THAT(run.log, HasSubstr("is the root cgroup"));
    EXPECT_THAT(run.log, HasSubstr("--allow-root-cgroup"));
  }
  // "/" is not a path inside the mount: refused too, naming the mount.
  AgentRun run = RunToCompletion(WithFlag(Args(), "--cgroup", "/"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.log, HasSubstr(absl::StrCat("\"/\" is not inside the cgroup2 mount ", *mount)));

  EXPECT_EQ(AttachedProgramCount(*mount), root_programs);
  EXPECT_FALSE(fs::exists(PinDir(instance_)));
}

TEST_F(AgentProcessTest, RefusesInstanceOnAnotherCgroup) {
  const std::string vip = "127.10.208.1";
  auto backends = StartBackends({"127.0.0.151"});
  ASSERT_TRUE(backends.ok()) << backends.status();
  WriteManifest(manifests_, "svc.yaml", ServiceYaml("moved", vip));
  WriteManifest(manifests_, "slice.yaml", SliceYaml("moved", *backends));
  ExtraCgroup other("b");
  ASSERT_FALSE(other.path().empty());

  std::unique_ptr<AgentProcess> agent;
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, Args()));
  // Refused while the first agent runs, and after it stopped (the pins stay).
  for (bool first_running : {true, false}) {
    SCOPED_TRACE(first_running ? "first agent running" : "first agent stopped");
    if (!first_running) {
      ASSERT_TRUE(agent->Terminate().ok());
    }
    AgentRun run = RunToCompletion(WithFlag(Args(), "--cgroup", other.path()));
    EXPECT_NE(run.exit_code, 0);
    EXPECT_THAT(run.log,
                HasSubstr(absl::StrCat("sockmesh-agent --cleanup --instance ", instance_)));
    EXPECT_EQ(AttachedProgramCount(other.path()), 0);
  }
  // The original attachment is untouched.
  Tally t = DialTcpTimes(vip, kTcpPort, 10);
  EXPECT_EQ(t.failed, 0) << t.first_failure;
  EXPECT_EQ(t.Backends(), AsSet(backends->ips));
}

TEST_F(AgentProcessTest, RefusesBadTableSize) {
  AgentRun run = RunToCompletion(WithFlag(Args(), "--table-size", "1000"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.log, HasSubstr("--table-size: invalid value 1000"));
  EXPECT_EQ(AttachedProgramCount(cgroup_->path()), 0);
  EXPECT_FALSE(fs::exists(PinDir(instance_)));
}

TEST_F(AgentProcessTest, RefusesMissingManifestsDir) {
  const std::string missing = tmp_.path() + "/no-such-dir";
  AgentRun run = RunToCompletion(WithFlag(Args(), "--manifests", missing));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.log, HasSubstr("--manifests"));
  EXPECT_THAT(run.log, HasSubstr(missing));
  EXPECT_EQ(AttachedProgramCount(cgroup_->path()), 0);
  EXPECT_FALSE(fs::exists(PinDir(instance_)));
}

// (g) The metrics endpoint: the services gauge counts frontends, the datapath counters move.
TEST_F(AgentProcessTest, ServesMetrics) {
  const std::string vip = "127.10.209.1";
  auto backends = StartBackends({"127.0.0.161", "127.0.0.162"});
  ASSERT_TRUE(backends.ok()) << backends.status();
  WriteManifest(manifests_, "svc.yaml", ServiceYaml("metrics", vip));
  WriteManifest(manifests_, "slice.yaml", SliceYaml("metrics", *backends));

  std::unique_ptr<AgentProcess> agent;
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, WithFlag(Args(), "--metrics-addr", "127.0.0.1:0")));
  std::smatch m;
  const std::string log = agent->Log();
  ASSERT_TRUE(
      std::regex_search(log, m, std::regex(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)")))
      << log;
  const int port = std::stoi(m[1]);
  ASSERT_GT(port, 0);
  ASSERT_LT(port, 65536);

  const std::string translated = "sockmesh_datapath_events_total{event=\"connect_translated\"}";
  const std::string before = Scrape(static_cast<uint16_t>(port));
  ASSERT_FALSE(before.empty()) << "no answer from /metrics on port " << port;
  // One Service with a TCP and a UDP port: two frontends.
  EXPECT_EQ(MetricValue(before, "sockmesh_agent_services"), 2.0) << before;
  const std::optional<double> count_before = MetricValue(before, translated);
  ASSERT_TRUE(count_before.has_value()) << before;
  // The gauge reports the start-up probe's decision (auto mode: it depends on the kernel).
  const bool enabled = absl::StrContains(agent->Log(), "short-circuit: enabled");
  EXPECT_EQ(MetricValue(before, "sockmesh_agent_short_circuit_enabled"), enabled ? 1.0 : 0.0)
      << before;

  Tally t = DialTcpTimes(vip, kTcpPort, 50);
  EXPECT_EQ(t.failed, 0) << t.first_failure;

  const std::string after = Scrape(static_cast<uint16_t>(port));
  const std::optional<double> count_after = MetricValue(after, translated);
  ASSERT_TRUE(count_after.has_value()) << after;
  EXPECT_GE(*count_after - *count_before, 50.0) << after;
}

// (g2) Standalone mode goes through the embedded control plane: the manifests become versions that
// the agent's control-plane client applies and ACKs (visible in its metrics), a broken file makes
// no version at all, and a fixed one the next.
TEST_F(AgentProcessTest, StandaloneFollowsTheEmbeddedControlPlane) {
  const std::string vip = "127.10.215.1";
  // Nothing is dialed: the endpoints only need to be addresses.
  const std::vector<Endpoint> endpoints = {{"127.0.0.171"}, {"127.0.0.172"}};
  WriteManifest(manifests_, "svc.yaml", ServiceYaml("embedded", vip));
  WriteManifest(manifests_, "slice.yaml", SliceYaml("embedded", endpoints, 18080, 18081));

  std::unique_ptr<AgentProcess> agent;
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, WithFlag(Args(), "--metrics-addr", "127.0.0.1:0")));
  std::smatch m;
  const std::string log = agent->Log();
  EXPECT_THAT(log, HasSubstr("served by the embedded control plane"));
  EXPECT_THAT(log, HasSubstr("applied snapshot version 2 (2 services); ACK"));
  ASSERT_TRUE(
      std::regex_search(log, m, std::regex(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)")))
      << log;
  const uint16_t port = static_cast<uint16_t>(std::stoi(m[1]));
  const std::string acks = "sockmesh_agent_control_plane_versions_total{answer=\"ack\"}";
  std::string metrics = Scrape(port);
  EXPECT_EQ(MetricValue(metrics, "sockmesh_agent_control_plane_connected"), 1.0) << metrics;
  EXPECT_EQ(MetricValue(metrics, "sockmesh_agent_control_plane_version"), 2.0) << metrics;
  EXPECT_EQ(MetricValue(metrics, acks), 1.0) << metrics;

  // An edit is the next version, sent as a delta.
  size_t mark = agent->Log().size();
  WriteManifest(manifests_, "slice.yaml",
                SliceYaml("embedded", {{"127.0.0.171"}, {"127.0.0.173"}}, 18080, 18081));
  absl::Status applied = agent->WaitForLog("applied delta version 3", kReloadTimeout, mark);
  ASSERT_TRUE(applied.ok()) << applied;
  metrics = Scrape(port);
  EXPECT_EQ(MetricValue(metrics, "sockmesh_agent_control_plane_version"), 3.0) << metrics;
  EXPECT_EQ(MetricValue(metrics, acks), 2.0) << metrics;

  // A broken file keeps its last good parse: no new version, the error is counted.
  mark = agent->Log().size();
  WriteManifest(manifests_, "svc.yaml", ServiceYaml("embedded", "999.1.1.1"));
  ASSERT_TRUE(agent->WaitForLog("999.1.1.1", kReloadTimeout, mark).ok()) << agent->Log();
  metrics = Scrape(port);
  EXPECT_EQ(MetricValue(metrics, "sockmesh_agent_manifest_files_in_error"), 1.0) << metrics;
  EXPECT_GE(MetricValue(metrics, "sockmesh_agent_manifest_errors_total").value_or(0), 1.0)
      << metrics;
  EXPECT_EQ(MetricValue(metrics, "sockmesh_agent_control_plane_version"), 3.0) << metrics;

  mark = agent->Log().size();
  WriteManifest(manifests_, "svc.yaml", ServiceYaml("embedded", vip, "81"));
  applied = agent->WaitForLog("applied delta version 4", kReloadTimeout, mark);
  ASSERT_TRUE(applied.ok()) << applied;
  metrics = Scrape(port);
  EXPECT_EQ(MetricValue(metrics, "sockmesh_agent_manifest_files_in_error"), 0.0) << metrics;
  EXPECT_EQ(MetricValue(metrics, acks), 3.0) << metrics;
}

// The load balancer's own sockops program (connection tracking) is attached next to the
// short-circuit's.
constexpr int kConnTrackSockops = 1;

// The programs attached to the cgroup for `type`, by BPF_PROG_QUERY (what bpftool cgroup show
// uses).
int AttachedPrograms(const std::string& cgroup, bpf_attach_type type) {
  int fd = ::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  uint32_t ids[16];
  uint32_t count = 16;
  uint32_t flags = 0;
  int err = bpf_prog_query(fd, type, 0, &flags, ids, &count);
  ::close(fd);
  return err == 0 ? static_cast<int>(count) : -1;
}

// The short-circuit is on by default and its start-up probe says so; a restart with
// --no-short-circuit detaches it (no sockops program left on the cgroup, no pins), the load
// balancer stays, and a restart without the flag brings it back through the probe.
TEST_F(AgentProcessTest, ShortCircuitProbeAndNoShortCircuit) {
  std::unique_ptr<AgentProcess> agent;
  // =on: this kernel lacks back-pressure under redirect, so auto would (rightly) turn it off.
  const std::vector<std::string> on = WithFlag(Args(), "--short-circuit", "on");
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, on));
  EXPECT_TRUE(agent->WaitForLog("short-circuit: enabled", kStartTimeout).ok()) << agent->Log();
  EXPECT_EQ(AttachedPrograms(cgroup_->path(), BPF_CGROUP_SOCK_OPS), 1 + kConnTrackSockops);
  EXPECT_TRUE(fs::exists(PinDir(instance_) + "/links/sm_sockops"));
  EXPECT_TRUE(fs::exists(PinDir(instance_) + "/maps/sm_sock_pairs_v1"));
  ASSERT_TRUE(agent->Terminate().ok());
  agent.reset();

  std::vector<std::string> off = Args();
  off.push_back("--no-short-circuit");
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, off));
  EXPECT_TRUE(
      agent->WaitForLog("short-circuit: disabled by --short-circuit=off; detached", kStartTimeout)
          .ok())
      << agent->Log();
  EXPECT_EQ(AttachedPrograms(cgroup_->path(), BPF_CGROUP_SOCK_OPS), kConnTrackSockops);
  EXPECT_EQ(AttachedPrograms(cgroup_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_FALSE(fs::exists(PinDir(instance_) + "/links/sm_sockops"));
  EXPECT_FALSE(fs::exists(PinDir(instance_) + "/maps/sm_sock_pairs_v1"));
  ASSERT_TRUE(agent->Terminate().ok());
  agent.reset();

  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, on));
  EXPECT_TRUE(agent->WaitForLog("short-circuit: enabled", kStartTimeout).ok()) << agent->Log();
  EXPECT_EQ(AttachedPrograms(cgroup_->path(), BPF_CGROUP_SOCK_OPS), 1 + kConnTrackSockops);
  ASSERT_TRUE(agent->Terminate().ok());
  agent.reset();
  // TearDown's --cleanup must take the short-circuit too.
  ASSERT_TRUE(cleanup_->Run().ok());
  EXPECT_EQ(AttachedPrograms(cgroup_->path(), BPF_CGROUP_SOCK_OPS), 0);
  EXPECT_EQ(AttachedPrograms(cgroup_->path(), BPF_CGROUP_INET4_CONNECT), 0);
}

// The default (auto) keeps the short-circuit only where the kernel also holds back a sender whose
// peer stops reading; either way the log says which, and the attachment matches the decision.
TEST_F(AgentProcessTest, ShortCircuitAutoKeepsItOnlyWithBackPressure) {
  std::unique_ptr<AgentProcess> agent;
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, Args()));
  ASSERT_TRUE(agent->WaitForLog("short-circuit: ", kStartTimeout).ok()) << agent->Log();
  const std::string log = agent->Log();
  const bool enabled = absl::StrContains(
      log, "short-circuit: enabled (probe: 1 MiB each way between loopback sockets");
  const bool no_back_pressure = absl::StrContains(
      log, "short-circuit: disabled: start-up probe failed: no back-pressure: 32 MiB queued");
  ASSERT_TRUE(enabled != no_back_pressure) << log;
  if (enabled) {
    EXPECT_TRUE(absl::StrContains(log, "a non-reading peer held the sender back")) << log;
  } else {
    EXPECT_TRUE(absl::StrContains(log, "--short-circuit=on forces it")) << log;
  }
  EXPECT_EQ(AttachedPrograms(cgroup_->path(), BPF_CGROUP_SOCK_OPS),
            (enabled ? 1 : 0) + kConnTrackSockops);
  EXPECT_EQ(AttachedPrograms(cgroup_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  RecordProperty("short_circuit_auto", enabled ? "enabled" : "disabled: no back-pressure");
}

// A failed start-up probe (forced: a zero time limit) detaches the short-circuit, says why in
// one line and sets the gauge to 0; the load balancer stays attached.
TEST_F(AgentProcessTest, ShortCircuitProbeFailureDisablesIt) {
  std::unique_ptr<AgentProcess> agent;
  std::vector<std::string> args = WithFlag(Args(), "--metrics-addr", "127.0.0.1:0");
  args.push_back("--short-circuit-probe-timeout-ms");
  args.push_back("0");
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, args));
  EXPECT_TRUE(agent
                  ->WaitForLog("short-circuit: disabled: start-up probe failed: loopback exchange",
                               kStartTimeout)
                  .ok())
      << agent->Log();
  EXPECT_EQ(AttachedPrograms(cgroup_->path(), BPF_CGROUP_SOCK_OPS), kConnTrackSockops);
  EXPECT_EQ(AttachedPrograms(cgroup_->path(), BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_FALSE(fs::exists(PinDir(instance_) + "/links/sm_sockops"));
  EXPECT_FALSE(fs::exists(PinDir(instance_) + "/maps/sm_sock_pairs_v1"));
  std::smatch m;
  const std::string log = agent->Log();
  ASSERT_TRUE(
      std::regex_search(log, m, std::regex(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)")))
      << log;
  const std::string metrics = Scrape(static_cast<uint16_t>(std::stoi(m[1])));
  EXPECT_EQ(MetricValue(metrics, "sockmesh_agent_short_circuit_enabled"), 0.0) << metrics;
}

// A loopback TCP pair of this (mesh) process, for the restart tests below.
struct LoopbackPair {
  sys::UniqueFd client;
  sys::UniqueFd server;
};

std::optional<LoopbackPair> OpenLoopbackPair() {
  sys::UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(l.get(), reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(l.get(), 1) != 0 ||
      ::getsockname(l.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return std::nullopt;
  }
  LoopbackPair p;
  p.client = sys::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(p.client.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) return std::nullopt;
  p.server = sys::UniqueFd(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!p.server.valid()) return std::nullopt;
  timeval tv{.tv_sec = 10, .tv_usec = 0};
  for (int fd : {p.client.get(), p.server.get()}) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  return p;
}

// Sends `n` bytes of a seeded pattern from `from` to `to` (sender on a thread) and reads them
// back; "" when they arrived intact.
std::string SendAndCheck(int from, int to, size_t n, uint32_t seed) {
  std::vector<uint8_t> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>((i * 2654435761u + seed) >> 13);
  std::string send_err;
  std::thread tx([&] {
    for (size_t off = 0; off < n;) {
      ssize_t w = ::send(from, data.data() + off, n - off, MSG_NOSIGNAL);
      if (w <= 0) {
        send_err = absl::StrCat("send: ", std::strerror(errno));
        return;
      }
      off += static_cast<size_t>(w);
    }
  });
  std::vector<uint8_t> got(n);
  std::string recv_err;
  // poll() then a non-blocking recv(): a blocking recv() on a redirected socket can return a
  // spurious EAGAIN (see DISABLED_AbortiveClose in short_circuit_test.cc).
  for (size_t off = 0; off < n;) {
    pollfd pfd{.fd = to, .events = POLLIN, .revents = 0};
    if (::poll(&pfd, 1, 10000) <= 0) {
      recv_err = absl::StrCat("recv after ", off, " bytes: timed out");
      break;
    }
    ssize_t r = ::recv(to, got.data() + off, n - off, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r <= 0) {
      recv_err =
          absl::StrCat("recv after ", off, " bytes: ", r == 0 ? "EOF" : std::strerror(errno));
      break;
    }
    off += static_cast<size_t>(r);
  }
  tx.join();
  if (!send_err.empty()) return send_err;
  if (!recv_err.empty()) return recv_err;
  return got == data ? "" : "data differs";
}

uint64_t PinnedRedirects(const std::string& instance) {
  absl::StatusOr<sys::UniqueFd> fd =
      bpf::OpenPinned(absl::StrCat(PinDir(instance), "/maps/sm_counters_v1"));
  if (!fd.ok()) return 0;
  absl::StatusOr<std::vector<uint64_t>> c = bpf::ReadPerCpuCounters(fd->get(), SM_CNT_MAX);
  return c.ok() ? (*c)[SM_CNT_SC_REDIRECT] : 0;
}

// An open same-node connection keeps its short-circuit while the agent is stopped and after a
// restart adopts the pinned programs; a restart with --no-short-circuit moves it back to the
// normal path without breaking it.
TEST_F(AgentProcessTest, ShortCircuitConnectionSurvivesRestarts) {
  std::unique_ptr<AgentProcess> agent;
  const std::vector<std::string> on = WithFlag(Args(), "--short-circuit", "on");
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, on));
  ASSERT_TRUE(agent->WaitForLog("short-circuit: enabled", kStartTimeout).ok()) << agent->Log();
  std::optional<LoopbackPair> p = OpenLoopbackPair();
  ASSERT_TRUE(p.has_value()) << std::strerror(errno);
  constexpr size_t kBytes = 1 << 20;

  uint64_t before = PinnedRedirects(instance_);
  EXPECT_EQ(SendAndCheck(p->client.get(), p->server.get(), kBytes, 1), "");
  EXPECT_EQ(SendAndCheck(p->server.get(), p->client.get(), kBytes, 2), "");
  EXPECT_GT(PinnedRedirects(instance_), before) << "running agent";

  ASSERT_TRUE(agent->Terminate().ok());
  agent.reset();
  before = PinnedRedirects(instance_);
  EXPECT_EQ(SendAndCheck(p->client.get(), p->server.get(), kBytes, 3), "");
  EXPECT_GT(PinnedRedirects(instance_), before) << "agent stopped";

  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, on));
  ASSERT_TRUE(agent->WaitForLog("short-circuit: enabled", kStartTimeout).ok()) << agent->Log();
  // The twelve load-balancer links (eight sock_addr hooks, sock_release, the connection
  // tracker's sockops, one cgroup_skb per direction for policy and request latency) and the
  // short-circuit's sockops link.
  EXPECT_TRUE(absl::StrContains(agent->Log(), "0 programs attached, 13 adopted from pins"))
      << agent->Log();
  before = PinnedRedirects(instance_);
  EXPECT_EQ(SendAndCheck(p->client.get(), p->server.get(), kBytes, 4), "");
  EXPECT_EQ(SendAndCheck(p->server.get(), p->client.get(), kBytes, 5), "");
  EXPECT_GT(PinnedRedirects(instance_), before) << "restarted agent";
  ASSERT_TRUE(agent->Terminate().ok());
  agent.reset();

  std::vector<std::string> off = Args();
  off.push_back("--no-short-circuit");
  ASSERT_NO_FATAL_FAILURE(StartAgent(agent, off));
  // The open connection keeps working. Its sockets still hold the sk_msg program (and through it
  // the map), so it may stay short-circuited until it closes: nothing in flight is lost.
  EXPECT_EQ(SendAndCheck(p->client.get(), p->server.get(), kBytes, 6), "");
  EXPECT_EQ(SendAndCheck(p->server.get(), p->client.get(), kBytes, 7), "");
  // A new connection takes the normal path.
  std::optional<LoopbackPair> fresh = OpenLoopbackPair();
  ASSERT_TRUE(fresh.has_value()) << std::strerror(errno);
  before = PinnedRedirects(instance_);
  EXPECT_EQ(SendAndCheck(fresh->client.get(), fresh->server.get(), kBytes, 8), "");
  EXPECT_EQ(SendAndCheck(fresh->server.get(), fresh->client.get(), kBytes, 9), "");
  EXPECT_EQ(PinnedRedirects(instance_), before)
      << "new connection redirected after --no-short-circuit";
}

}  // namespace
}  // namespace sockmesh::testing
