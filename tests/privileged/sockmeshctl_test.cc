// SPDX-License-Identifier: Apache-2.0
// The sockmeshctl binary against a real datapath: services programmed through MapSync must come
// back out of the pinned maps as the kernel holds them, and `exec` must put a command in the
// cgroup it names (and never in the root cgroup).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/name_server.h"
#include "tests/support/scoped_cgroup.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/cgroup.h"
#include "userspace/metrics/agent_metrics.h"

#ifndef SOCKMESH_CTL_BIN
#error "SOCKMESH_CTL_BIN must name the sockmeshctl binary"
#endif

extern char** environ;

namespace sockmesh::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct RunResult {
  int exit_code = -1;  // -1: did not exit normally
  std::string out;
  std::string err;
};

// Runs sockmeshctl with `args`, collecting stdout and stderr separately. The child inherits this
// process's cgroup (TestDatapath's), which is fine: it makes no connections there.
RunResult RunCtl(const std::vector<std::string>& args) {
  RunResult result;
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << strerror(errno);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<std::string> argv_storage = {SOCKMESH_CTL_BIN};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int err = posix_spawn(&pid, SOCKMESH_CTL_BIN, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (err != 0) {
    ADD_FAILURE() << "spawn " << SOCKMESH_CTL_BIN << ": " << strerror(err);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return result;
  }
  pollfd fds[2] = {{.fd = out_pipe[0], .events = POLLIN, .revents = 0},
                   {.fd = err_pipe[0], .events = POLLIN, .revents = 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(fds, 2, 30'000) <= 0) {
      ADD_FAILURE() << "sockmeshctl produced no output for 30 s";
      kill(pid, SIGKILL);
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

std::string Describe(const RunResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout:\n", r.out, "\nstderr:\n", r.err);
}

// The JSON service entry for `frontend`, or null.
const nlohmann::json* FindService(const nlohmann::json& doc, const std::string& frontend) {
  for (const nlohmann::json& s : doc["services"]) {
    if (s["frontend"] == frontend) return &s;
  }
  return nullptr;
}

// Keeps a cgroup populated with a sleeping child while a test uses it. ScopedCgroup::Create(), in
// any test process on the machine, removes every *empty* sockmesh-test-* cgroup, so a cgroup that
// is empty between two `exec` runs can vanish under a concurrently running test suite.
class CgroupKeeper {
 public:
  explicit CgroupKeeper(const std::string& cgroup) {
    char sleep_cmd[] = "sleep";
    char forever[] = "3600";
    char* argv[] = {sleep_cmd, forever, nullptr};
    if (int err = posix_spawnp(&pid_, "sleep", nullptr, nullptr, argv, environ); err != 0) {
      ADD_FAILURE() << "spawn sleep: " << strerror(err);
      pid_ = -1;
      return;
    }
    absl::Status s = agent::JoinCgroup(cgroup, pid_);
    EXPECT_TRUE(s.ok()) << s;
  }
  CgroupKeeper(const CgroupKeeper&) = delete;
  CgroupKeeper& operator=(const CgroupKeeper&) = delete;
  ~CgroupKeeper() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);  // reaped, so the cgroup is empty and can be removed
  }

 private:
  pid_t pid_ = -1;
};

class SockmeshctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dp = TestDatapath::Create();
    ASSERT_TRUE(dp.ok()) << "cannot attach the datapath (needs root, BPF, cgroup v2): "
                         << dp.status();
    dp_ = *std::move(dp);
  }

  void Apply(const model::DesiredState& state) {
    agent::SyncReport r = dp_->Apply(state);
    ASSERT_EQ(r.failed, 0) << r.Summary() << ": " << (r.errors.empty() ? "" : r.errors[0]);
  }

  // Two services the test programs: weights 1 and 3, and one without backends. Plus a UDP Maglev
  // service with ClientIP affinity, for the algorithm and affinity columns.
  void ApplySampleServices() {
    model::DesiredState state;
    AddService(state, MakeService("127.10.0.10", 80, model::Protocol::kTcp,
                                  {MakeBackend("127.0.0.11", 8080, 1),
                                   MakeBackend("127.0.0.12", 8080, 3)}));
    AddService(state, MakeService("127.10.0.20", 80, model::Protocol::kTcp, {}));
    model::ServiceEntry maglev =
        MakeService("127.10.0.30", 53, model::Protocol::kUdp,
                    {MakeBackend("127.0.0.31", 5353), MakeBackend("127.0.0.32", 5353)},
                    model::LbAlgorithm::kMaglev);
    maglev.affinity = model::SessionAffinity::kClientIP;
    maglev.affinity_timeout_seconds = 60;
    AddService(state, std::move(maglev));
    Apply(state);
  }

  std::unique_ptr<TestDatapath> dp_;
};

TEST_F(SockmeshctlTest, ServicesJsonShowsWhatTheKernelHolds) {
  ApplySampleServices();
  RunResult r = RunCtl({"services", "--instance", dp_->instance(), "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(doc.is_discarded()) << "not JSON: " << r.out;
  EXPECT_EQ(doc["instance"], dp_->instance());
  ASSERT_EQ(doc["services"].size(), 3u) << doc.dump(2);
  // Sorted by frontend.
  EXPECT_EQ(doc["services"][0]["frontend"], "127.10.0.10:80/TCP");
  EXPECT_EQ(doc["services"][1]["frontend"], "127.10.0.20:80/TCP");
  EXPECT_EQ(doc["services"][2]["frontend"], "127.10.0.30:53/UDP");

  const nlohmann::json* weighted = FindService(doc, "127.10.0.10:80/TCP");
  ASSERT_NE(weighted, nullptr);
  EXPECT_EQ((*weighted)["vip"], "127.10.0.10");
  EXPECT_EQ((*weighted)["port"], 80);
  EXPECT_EQ((*weighted)["protocol"], "TCP");
  EXPECT_EQ((*weighted)["algorithm"], "random");
  EXPECT_EQ((*weighted)["affinity_timeout_seconds"], 0);
  EXPECT_GE((*weighted)["revision"].get<int>(), 1);
  EXPECT_TRUE((*weighted)["warnings"].empty()) << weighted->dump(2);
  const nlohmann::json& backends = (*weighted)["backends"];
  ASSERT_EQ(backends.size(), 2u) << weighted->dump(2);
  EXPECT_EQ(backends[0]["address"], "127.0.0.11");
  EXPECT_EQ(backends[0]["port"], 8080);
  EXPECT_EQ(backends[0]["weight"], 1);
  EXPECT_NEAR(backends[0]["share"].get<double>(), 0.25, 0.01);
  EXPECT_EQ(backends[1]["address"], "127.0.0.12");
  EXPECT_EQ(backends[1]["port"], 8080);
  EXPECT_EQ(backends[1]["weight"], 3);
  EXPECT_NEAR(backends[1]["share"].get<double>(), 0.75, 0.01);

  const nlohmann::json* empty = FindService(doc, "127.10.0.20:80/TCP");
  ASSERT_NE(empty, nullptr);
  EXPECT_TRUE((*empty)["backends"].is_array());
  EXPECT_TRUE((*empty)["backends"].empty()) << empty->dump(2);
  EXPECT_THAT((*empty)["note"].get<std::string>(), HasSubstr("refused"));

  const nlohmann::json* maglev = FindService(doc, "127.10.0.30:53/UDP");
  ASSERT_NE(maglev, nullptr);
  EXPECT_EQ((*maglev)["protocol"], "UDP");
  EXPECT_EQ((*maglev)["algorithm"], "maglev");
  EXPECT_EQ((*maglev)["affinity_timeout_seconds"], 60);
  ASSERT_EQ((*maglev)["backends"].size(), 2u);
  EXPECT_NEAR((*maglev)["backends"][0]["share"].get<double>(), 0.5, 0.02);
}

// Connections held open through the real connect hook show up per backend, with the algorithm
// and the connection limit.
TEST_F(SockmeshctlTest, ServicesShowLeastConnectionsLimitAndActiveConnections) {
  std::vector<std::unique_ptr<NameServer>> servers;
  std::vector<model::Backend> backends;
  for (const char* ip : {"127.0.8.1", "127.0.8.2"}) {
    auto s = NameServer::Start(ip, NameServer::Kind::kTcp, ip);
    ASSERT_TRUE(s.ok()) << s.status();
    backends.push_back(MakeBackend(ip, (*s)->port()));
    servers.push_back(*std::move(s));
  }
  model::ServiceEntry svc = MakeService("127.10.8.1", 80, model::Protocol::kTcp, backends,
                                        model::LbAlgorithm::kLeastConnections);
  svc.max_connections_per_backend = 5;
  model::DesiredState state;
  AddService(state, svc);
  Apply(state);

  std::vector<sys::UniqueFd> held;
  for (int i = 0; i < 4; ++i) {
    sys::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(80);
    inet_pton(AF_INET, "127.10.8.1", &sa.sin_addr);
    ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0)
        << strerror(errno);
    held.push_back(std::move(fd));
  }
  RunResult r = RunCtl({"services", "--instance", dp_->instance(), "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json* lc = FindService(doc, "127.10.8.1:80/TCP");
  ASSERT_NE(lc, nullptr) << r.out;
  EXPECT_EQ((*lc)["algorithm"], "least-connections");
  EXPECT_EQ((*lc)["max_connections_per_backend"], 5);
  ASSERT_EQ((*lc)["backends"].size(), 2u);
  EXPECT_EQ((*lc)["backends"][0]["active_connections"], 2) << lc->dump(2);
  EXPECT_EQ((*lc)["backends"][1]["active_connections"], 2) << lc->dump(2);

  RunResult table = RunCtl({"services", "--instance", dp_->instance()});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  std::cout << table.out;
  EXPECT_THAT(table.out, HasSubstr("least-connections"));

  held.clear();
  r = RunCtl({"services", "--instance", dp_->instance(), "-o", "json"});
  doc = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  lc = FindService(doc, "127.10.8.1:80/TCP");
  ASSERT_NE(lc, nullptr) << r.out;
  EXPECT_EQ((*lc)["backends"][0]["active_connections"], 0) << "closed sockets give counts back";
  EXPECT_EQ((*lc)["backends"][1]["active_connections"], 0);
}

TEST_F(SockmeshctlTest, ServicesTableFollowsAnUpdate) {
  ApplySampleServices();
  RunResult before = RunCtl({"services", "--instance", dp_->instance()});
  ASSERT_EQ(before.exit_code, 0) << Describe(before);
  std::cout << before.out;  // the table, for whoever reads the test log
  EXPECT_THAT(before.out, HasSubstr("FRONTEND"));
  EXPECT_THAT(before.out, HasSubstr("127.10.0.10:80/TCP"));
  EXPECT_THAT(before.out, HasSubstr("127.0.0.12:8080"));
  EXPECT_THAT(before.out, HasSubstr("75.0%"));
  EXPECT_THAT(before.out, HasSubstr("connects are refused"));
  EXPECT_THAT(before.out, HasSubstr("ClientIP/60s"));

  // A new backend set is a new revision; the tool shows only the live one.
  model::DesiredState state;
  AddService(state, MakeService("127.10.0.10", 80, model::Protocol::kTcp,
                                {MakeBackend("127.0.0.13", 9090, 1)}));
  Apply(state);
  RunResult after = RunCtl({"services", "--instance", dp_->instance(), "-o", "json"});
  ASSERT_EQ(after.exit_code, 0) << Describe(after);
  nlohmann::json doc = nlohmann::json::parse(after.out);
  ASSERT_EQ(doc["services"].size(), 1u) << doc.dump(2);
  EXPECT_EQ(doc["services"][0]["revision"], 2);
  ASSERT_EQ(doc["services"][0]["backends"].size(), 1u);
  EXPECT_EQ(doc["services"][0]["backends"][0]["address"], "127.0.0.13");
  EXPECT_DOUBLE_EQ(doc["services"][0]["backends"][0]["share"].get<double>(), 1.0);
}

TEST_F(SockmeshctlTest, CountersNameEveryDatapathEvent) {
  RunResult r = RunCtl({"counters", "--instance", dp_->instance(), "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["instance"], dp_->instance());
  size_t named = 0;
  for (const std::string& event : metrics::DatapathEventNames()) {
    if (event.empty()) continue;  // a counter number no event uses
    ++named;
    ASSERT_TRUE(doc["counters"].contains(event)) << event << " missing in " << r.out;
    EXPECT_TRUE(doc["counters"][event].is_number_unsigned()) << event;
  }
  EXPECT_EQ(doc["counters"].size(), named);

  RunResult table = RunCtl({"counters", "--instance", dp_->instance()});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_THAT(table.out, HasSubstr("EVENT"));
  EXPECT_THAT(table.out, HasSubstr("refused_no_backend"));
}

TEST_F(SockmeshctlTest, MissingInstanceNamesThePinPath) {
  const std::string missing = absl::StrCat("ctl-missing-", getpid());
  for (const char* command : {"services", "counters"}) {
    RunResult r = RunCtl({command, "--instance", missing});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat(dp_->bpffs_root(), "/sockmesh/", missing, "/maps/")))
        << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("sockmesh-agent"));
    EXPECT_THAT(r.err, HasSubstr("--instance"));
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST_F(SockmeshctlTest, ExecRunsTheCommandInTheNamedCgroup) {
  absl::StatusOr<ScopedCgroup> cg = ScopedCgroup::Create();
  ASSERT_TRUE(cg.ok()) << cg.status();
  CgroupKeeper keeper(cg->path());  // destroyed before `cg`
  absl::StatusOr<std::string> mount = agent::FindCgroup2Mount();
  ASSERT_TRUE(mount.ok()) << mount.status();
  // /proc/self/cgroup shows the path below the mount.
  const std::string relative = cg->path().substr(mount->size());
  ASSERT_EQ(relative.front(), '/');

  RunResult r = RunCtl({"exec", "--cgroup", cg->path(), "--", "cat", "/proc/self/cgroup"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("0::", relative, "\n"))) << r.out;

  // Relative to the mount, as the agent accepts it.
  RunResult rel =
      RunCtl({"exec", "--cgroup", relative.substr(1), "--", "cat", "/proc/self/cgroup"});
  ASSERT_EQ(rel.exit_code, 0) << Describe(rel);
  EXPECT_THAT(rel.out, HasSubstr(absl::StrCat("0::", relative, "\n"))) << rel.out;

  // Arguments after -- reach the command untouched, flags included.
  RunResult args = RunCtl({"exec", "--cgroup", cg->path(), "--", "echo", "-n", "--instance"});
  ASSERT_EQ(args.exit_code, 0) << Describe(args);
  EXPECT_EQ(args.out, "--instance");

  RunResult bad = RunCtl({"exec", "--cgroup", cg->path(), "--", "/nonexistent/sockmesh-cmd"});
  EXPECT_EQ(bad.exit_code, 127) << Describe(bad);
  EXPECT_THAT(bad.err, HasSubstr("/nonexistent/sockmesh-cmd"));
}

// top --once -o json while this process (in the mesh cgroup) dials a service: the connections
// show up as a rate on the service's frontend, and the refused ones as failures.
TEST_F(SockmeshctlTest, TopShowsConnectionRatesPerFrontend) {
  auto backend = NameServer::Start("top-0", NameServer::Kind::kTcp, "127.0.230.40");
  ASSERT_TRUE(backend.ok()) << backend.status();
  model::DesiredState state;
  AddService(state, MakeService("127.10.230.40", 80, model::Protocol::kTcp,
                                {MakeBackend("127.0.230.40", (*backend)->port())}));
  AddService(state, MakeService("127.10.230.41", 80, model::Protocol::kTcp,
                                {MakeBackend("127.0.230.41", 9)}));  // nobody listens: refused
  Apply(state);
  std::atomic<bool> stop{false};
  std::thread load([&stop] {
    while (!stop) {
      DialTcp("127.10.230.40", 80);
      DialTcp("127.10.230.41", 80);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  RunResult r =
      RunCtl({"top", "--instance", dp_->instance(), "--once", "--interval", "1", "-o", "json"});
  stop = true;
  load.join();
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(doc.is_discarded()) << "not JSON: " << r.out;
  std::map<std::string, nlohmann::json> by_frontend;
  for (const auto& s : doc["services"]) by_frontend[s["frontend"]] = s;
  ASSERT_TRUE(by_frontend.count("127.10.230.40:80/TCP")) << r.out;
  ASSERT_TRUE(by_frontend.count("127.10.230.41:80/TCP")) << r.out;
  EXPECT_GT(by_frontend["127.10.230.40:80/TCP"]["connections_per_second"].get<double>(), 10)
      << r.out;
  EXPECT_EQ(by_frontend["127.10.230.40:80/TCP"]["failed_per_second"].get<double>(), 0) << r.out;
  EXPECT_GT(by_frontend["127.10.230.41:80/TCP"]["failed_per_second"].get<double>(), 10) << r.out;

  RunResult table = RunCtl({"top", "--instance", dp_->instance(), "--once", "--interval", "0.2"});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_THAT(table.out, HasSubstr("FRONTEND")) << table.out;
  EXPECT_THAT(table.out, HasSubstr("127.10.230.41:80/TCP")) << table.out;
}

// --workload NS/NAME runs the command in <cgroup>/NS/NAME, creating it the first time; the
// agent's metrics name processes there as that workload.
TEST_F(SockmeshctlTest, ExecWorkloadEntersTheWorkloadCgroup) {
  absl::StatusOr<ScopedCgroup> cg = ScopedCgroup::Create();
  ASSERT_TRUE(cg.ok()) << cg.status();
  struct RemoveWorkloadCgroups {  // before `cg` goes: a cgroup with children cannot be removed
    std::string mesh;
    ~RemoveWorkloadCgroups() {
      ::rmdir((mesh + "/shop/frontend").c_str());
      ::rmdir((mesh + "/shop").c_str());
    }
  } remove{cg->path()};
  absl::StatusOr<std::string> mount = agent::FindCgroup2Mount();
  ASSERT_TRUE(mount.ok()) << mount.status();
  const std::string relative = cg->path().substr(mount->size());

  for (int run = 0; run < 2; ++run) {  // creates it, then reuses it
    RunResult r = RunCtl({"exec", "--cgroup", cg->path(), "--workload", "shop/frontend", "--",
                          "cat", "/proc/self/cgroup"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("0::", relative, "/shop/frontend\n"))) << r.out;
  }
  RunResult bad = RunCtl({"exec", "--cgroup", cg->path(), "--workload", "Shop/x", "--", "true"});
  EXPECT_EQ(bad.exit_code, 1) << Describe(bad);
  EXPECT_THAT(bad.err, HasSubstr("--workload")) << bad.err;
}

TEST_F(SockmeshctlTest, ExecRefusesTheRootCgroup) {
  absl::StatusOr<std::string> mount = agent::FindCgroup2Mount();
  ASSERT_TRUE(mount.ok()) << mount.status();
  // If the command ran, the marker would exist.
  const std::string marker =
      absl::StrCat(::testing::TempDir(), "sockmeshctl-root-marker-", getpid());
  for (const std::string& root : {std::string("/"), *mount, *mount + "/", std::string(".")}) {
    RunResult r = RunCtl({"exec", "--cgroup", root, "--", "touch", marker});
    EXPECT_EQ(r.exit_code, 1) << root << ": " << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("root cgroup")) << root;
    EXPECT_FALSE(std::filesystem::exists(marker)) << root << ": the command ran";
  }
  std::filesystem::remove(marker);

  RunResult outside = RunCtl({"exec", "--cgroup", "/tmp", "--", "true"});
  EXPECT_EQ(outside.exit_code, 1) << Describe(outside);
  EXPECT_THAT(outside.err, HasSubstr("not inside the cgroup2 mount"));
}

TEST_F(SockmeshctlTest, HelpWorksForTheBinaryAndEverySubcommand) {
  RunResult top = RunCtl({"--help"});
  EXPECT_EQ(top.exit_code, 0) << Describe(top);
  for (const char* sub : {"services", "counters", "exec"}) {
    EXPECT_THAT(top.out, HasSubstr(sub));
    RunResult r = RunCtl({sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_THAT(r.out, HasSubstr("Usage")) << sub;
  }
  RunResult none = RunCtl({});
  EXPECT_EQ(none.exit_code, 2) << Describe(none);
  RunResult bad_output = RunCtl({"services", "-o", "yaml"});
  EXPECT_EQ(bad_output.exit_code, 2) << Describe(bad_output);
  EXPECT_THAT(bad_output.out + bad_output.err, Not(HasSubstr("FRONTEND")));
}

}  // namespace
}  // namespace sockmesh::testing
