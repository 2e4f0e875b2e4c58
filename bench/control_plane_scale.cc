// SPDX-License-Identifier: Apache-2.0
// sockmesh-control-plane-scale: how the control plane copes with many agents following a large
// model. For each agent count N it runs, in fresh processes:
//  - the control plane: the real server library (VersionedState, ControlPlaneService,
//    ControlMetrics) on 127.0.0.1:0, fed a generated model of --services services with
//    --endpoints-per-service endpoints each through VersionedState::Update, the path every source
//    publishes through;
//  - N simulated agents in one second process, each on its own gRPC channel and connection:
//    Hello, snapshot, deltas decoded and applied to its copy of the model with the agent's
//    decoding, ACK per version; nothing is written to kernel maps. By default each is a
//    SimulatedAgent on gRPC's callback API (simulated_agent.h says why); --agent-client=blocking
//    runs the agent's own ControlPlaneClient instead, two threads per agent.
// The control plane process measures its own memory and CPU; the agents report, per version, the
// CLOCK_MONOTONIC time at which the last of them ACKed it (just before the ACK is written).
#include <grpcpp/grpcpp.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "bench/simulated_agent.h"
#include "control_plane/model/proto_conversion.h"
#include "control_plane/server/control_metrics.h"
#include "control_plane/server/control_plane_service.h"
#include "control_plane/server/stream_transport.h"
#include "control_plane/server/versioned_state.h"
#include "userspace/agent/control_plane_client.h"
#include "userspace/log/log.h"

namespace sockmesh::bench {
namespace {

struct Options {
  std::vector<int> agent_counts = {10, 100, 1000};
  int services = 10000;
  int endpoints_per_service = 10;
  int changes = 100;
  int gap_ms = 50;
  int burst = 20;
  int timeout_s = 600;
  bool blocking_agents = false;  // the agent's ControlPlaneClient instead of SimulatedAgent
  bool split_cpus = false;       // control plane on CPU 0, simulated agents on CPU 1
};

// Binds the calling thread, and the threads it starts afterwards, to one CPU. With --split-cpus
// the thousand simulated agents, which stand for a thousand other machines, stop taking CPU time
// from the control plane they are measuring (they still share the machine's caches and memory).
bool PinToCpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) == 0) return true;
  std::cerr << "--split-cpus: sched_setaffinity(CPU " << cpu << "): " << std::strerror(errno)
            << "\n";
  return false;
}

int64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// Progress goes to stderr, results to stdout.
template <typename... Args>
void Progress(const Args&... args) {
  std::string line = absl::StrCat("[cp-scale] ", args..., "\n");
  ::write(2, line.data(), line.size());
}

void WriteLine(int fd, const std::string& line) {
  std::string l = line + "\n";
  // Lines are shorter than PIPE_BUF, so concurrent writers never interleave.
  if (::write(fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) _exit(3);
}

// Blocking line reader over a pipe.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // Returns false at EOF.
  bool Next(std::string& line) {
    while (true) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      char chunk[4096];
      ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(chunk, n);
    }
  }

 private:
  int fd_;
  std::string buf_;
};

// 10.96.0.0/12-style VIPs and 10.244.0.0/16-style endpoint addresses. They are data only: nothing
// dials them.
model::IpAddress V4(uint32_t host_order) {
  model::IpAddress ip;
  ip.family = 4;
  ip.bytes[0] = host_order >> 24;
  ip.bytes[1] = (host_order >> 16) & 0xff;
  ip.bytes[2] = (host_order >> 8) & 0xff;
  ip.bytes[3] = host_order & 0xff;
  return ip;
}

constexpr uint32_t kVipBase = 0x0a600000;       // 10.96.0.0
constexpr uint32_t kEndpointBase = 0x0af40000;  // 10.244.0.0

model::DesiredState MakeModel(const Options& o) {
  model::DesiredState state;
  uint32_t next_endpoint = kEndpointBase;
  for (int i = 0; i < o.services; ++i) {
    model::ServiceEntry e;
    e.namespace_name = absl::StrCat("ns-", i % 100);
    e.service_name = absl::StrFormat("svc-%05d", i);
    e.port_name = "http";
    e.frontend = {.vip = V4(kVipBase + i + 1), .port = 80, .protocol = model::Protocol::kTcp};
    for (int j = 0; j < o.endpoints_per_service; ++j) {
      e.backends.push_back({.address = V4(next_endpoint++), .port = 8080, .weight = 1});
    }
    model::Frontend key = e.frontend;
    state.emplace(key, std::move(e));
  }
  return state;
}

// One endpoint change: change `n` moves one endpoint of service n % services to a new address,
// as a pod replaced by another would.
void ChangeOneEndpoint(model::DesiredState& state, int n, uint32_t& next_endpoint) {
  auto it = std::next(state.begin(), (static_cast<size_t>(n) * 7919) % state.size());
  std::vector<model::Backend>& be = it->second.backends;
  be[n % be.size()].address = V4(next_endpoint++);
  std::sort(be.begin(), be.end());
}

struct ProcessUsage {
  double rss_mb = 0;
  double peak_rss_mb = 0;
  double cpu_s = 0;
};

ProcessUsage ReadUsage() {
  ProcessUsage u;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    // "VmRSS:	  123456 kB"
    std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
    double kb = 0;
    if (w.size() < 2 || !absl::SimpleAtod(w[w.size() - 2], &kb)) continue;
    if (absl::StartsWith(line, "VmRSS:")) u.rss_mb = kb / 1024;
    if (absl::StartsWith(line, "VmHWM:")) u.peak_rss_mb = kb / 1024;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  u.cpu_s =
      ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  return u;
}

// ---- The simulated agents' process ----

// Per version: how many agents ACKed it and when the last one did. Writes "acked V T" to the
// control plane's process once all N have.
class AckTracker {
 public:
  AckTracker(int agents, int out_fd) : agents_(agents), out_fd_(out_fd) {}

  void Record(uint64_t version, bool acked) {
    int64_t now = NowNs();
    absl::MutexLock lock(&mu_);
    if (!acked) {
      WriteLine(out_fd_, absl::StrCat("nack ", version));
      return;
    }
    Entry& e = by_version_[version];
    e.last_ns = std::max(e.last_ns, now);
    if (++e.count == agents_) WriteLine(out_fd_, absl::StrCat("acked ", version, " ", e.last_ns));
  }

  // How many ACKs versions first..last got in total.
  int64_t AcksBetween(uint64_t first, uint64_t last) {
    absl::MutexLock lock(&mu_);
    int64_t n = 0;
    for (auto it = by_version_.lower_bound(first); it != by_version_.end() && it->first <= last;
         ++it) {
      n += it->second.count;
    }
    return n;
  }

 private:
  struct Entry {
    int count = 0;
    int64_t last_ns = 0;
  };
  const int agents_;
  const int out_fd_;
  absl::Mutex mu_;
  std::map<uint64_t, Entry> by_version_ ABSL_GUARDED_BY(mu_);
};

int RunAgents(const Options& o, int n, int in_fd, int out_fd) {
  log::SetMinLevel(log::Level::kError);
  LineReader in(in_fd);
  std::string line;
  if (!in.Next(line)) return 1;  // the server's address
  const std::string address = line;
  AckTracker tracker(n, out_fd);
  auto on_answer = [&tracker](uint64_t v, bool acked) { tracker.Record(v, acked); };
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<agent::ControlPlaneClient>> clients;
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<SimulatedAgent>> agents;
  WriteLine(out_fd, absl::StrCat("start ", NowNs()));
  for (int i = 0; i < n; ++i) {
    std::string name = absl::StrFormat("sim-%04d", i);
    if (!o.blocking_agents) {
      agents.push_back(std::make_unique<SimulatedAgent>(address, name, on_answer));
      agents.back()->Start();
      continue;
    }
    clients.push_back(std::make_unique<agent::ControlPlaneClient>(
        agent::ControlPlaneClientOptions{.address = address,
                                         .node_name = name,
                                         .agent_version = "bench",
                                         .on_answer = on_answer},
        [](const model::DesiredState&, const v1::CompiledPolicy&) { return absl::OkStatus(); }));
    threads.emplace_back([c = clients.back().get(), &stop] { c->Run(stop); });
  }
  while (in.Next(line)) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    if (words[0] == "count" && words.size() == 3) {
      uint64_t first = 0, last = 0;
      if (!absl::SimpleAtoi(words[1], &first) || !absl::SimpleAtoi(words[2], &last)) return 1;
      WriteLine(out_fd, absl::StrCat("count ", tracker.AcksBetween(first, last)));
    } else if (words[0] == "cpu") {
      WriteLine(out_fd, absl::StrFormat("cpu %.3f", ReadUsage().cpu_s));
    } else if (words[0] == "quit") {
      break;
    }
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  for (std::unique_ptr<SimulatedAgent>& a : agents) a->Stop();
  return 0;
}

// ---- The control plane's process ----

struct Percentiles {
  double p50 = 0, p99 = 0, max = 0;
};

Percentiles Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&v](double q) {
    size_t i = static_cast<size_t>(std::ceil(q * v.size()));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
  };
  return {.p50 = at(0.50), .p99 = at(0.99), .max = v.back()};
}

// Waits for "acked <version> <ns>" from the agents; returns the ns, or -1 on EOF or a NACK.
int64_t WaitAcked(LineReader& from_agents, uint64_t version) {
  std::string line;
  while (from_agents.Next(line)) {
    std::vector<std::string> w = absl::StrSplit(line, ' ');
    if (w[0] == "nack") {
      Progress("an agent NACKed version ", w[1], "; the run is invalid");
      return -1;
    }
    uint64_t v = 0;
    int64_t ns = 0;
    if (w[0] == "acked" && w.size() == 3 && absl::SimpleAtoi(w[1], &v) &&
        absl::SimpleAtoi(w[2], &ns) && v == version) {
      return ns;
    }
  }
  return -1;
}

// The agents' process CPU time in seconds, or -1.
double AgentsCpu(int to_fd, LineReader& from) {
  WriteLine(to_fd, "cpu");
  std::string line;
  double cpu = -1;
  while (cpu < 0 && from.Next(line)) {
    if (line.rfind("cpu ", 0) == 0 && !absl::SimpleAtod(line.substr(4), &cpu)) return -1;
  }
  return cpu;
}

struct BurstResult {
  double all_acked_ms = 0;  // from the first publish to the last agent's ACK of the last one
  int64_t acks = 0;         // ACKs of any version of the burst, all agents together
  double acks_per_agent(int n) const { return static_cast<double>(acks) / n; }
};

// Publishes o.burst (> 0) changes back to back and waits for every agent to ACK the last.
// Nullopt if that failed.
std::optional<BurstResult> RunBurst(const Options& o, model::DesiredState& model,
                                    uint32_t& next_endpoint, cp::VersionedState& state,
                                    int to_agents, LineReader& from) {
  uint64_t first = state.Current().version + 1;
  int64_t t0 = NowNs();
  for (int i = 0; i < o.burst; ++i) {
    ChangeOneEndpoint(model, o.changes + i, next_endpoint);
    state.Update(model);
  }
  uint64_t last = state.Current().version;
  int64_t acked = WaitAcked(from, last);
  if (acked < 0) return std::nullopt;
  WriteLine(to_agents, absl::StrCat("count ", first, " ", last));
  std::string line;
  int64_t acks = -1;
  while (acks < 0 && from.Next(line)) {
    if (line.rfind("count ", 0) != 0) continue;
    if (!absl::SimpleAtoi(line.substr(6), &acks)) return std::nullopt;
  }
  if (acks < 0) return std::nullopt;
  return BurstResult{.all_acked_ms = Ms(acked - t0), .acks = acks};
}

int RunControlPlane(const Options& o, int n) {
  if (o.split_cpus && !PinToCpu(0)) return 1;
  int to_agents[2], from_agents[2];
  if (pipe(to_agents) != 0 || pipe(from_agents) != 0) return 1;
  // The agents' process is forked before anything here touches gRPC or builds the model, so it
  // shares neither.
  pid_t agents = fork();
  if (agents == 0) {
    close(to_agents[1]);
    close(from_agents[0]);
    if (o.split_cpus && !PinToCpu(1)) _exit(1);
    _exit(RunAgents(o, n, to_agents[0], from_agents[1]));
  }
  close(to_agents[0]);
  close(from_agents[1]);
  LineReader from(from_agents[0]);
  log::SetMinLevel(log::Level::kError);

  Progress("N=", n, ": building the model (", o.services, " services, ",
           o.services * o.endpoints_per_service, " endpoints)");
  model::DesiredState model = MakeModel(o);
  uint32_t next_endpoint = kEndpointBase + o.services * o.endpoints_per_service;
  absl::StatusOr<std::unique_ptr<cp::ControlMetrics>> metrics = cp::ControlMetrics::Create("");
  if (!metrics.ok()) return 1;
  cp::VersionedState state;
  state.Update(model);
  cp::ControlPlaneService service(&state, metrics->get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  cp::ApplyStreamTransport(builder);  // as sockmesh-control does
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Progress("cannot listen on 127.0.0.1");
    return 1;
  }
  ProcessUsage before = ReadUsage();
  WriteLine(to_agents[1], absl::StrCat("127.0.0.1:", port));

  // 1. Full snapshot to every agent.
  std::string line;
  int64_t start_ns = 0;
  if (!from.Next(line) || !absl::SimpleAtoi(absl::string_view(line).substr(6), &start_ns)) {
    return 1;
  }
  Progress("N=", n, ": ", n, " agents connecting; waiting for all to ACK the snapshot");
  uint64_t snapshot_version = state.Current().version;
  int64_t snapshot_acked = WaitAcked(from, snapshot_version);
  if (snapshot_acked < 0) return 1;
  double snapshot_ms = Ms(snapshot_acked - start_ns);
  ProcessUsage after_snapshot = ReadUsage();
  double agents_cpu_after_snapshot = AgentsCpu(to_agents[1], from);
  Progress("N=", n, ": snapshot ACKed by all in ", absl::StrFormat("%.0f", snapshot_ms), " ms");

  // 2. Changes one at a time, each waited for, so none coalesces with the next.
  std::vector<double> latencies;
  int64_t publish_cpu_ns = 0;  // building and publishing the new state, on this thread
  for (int i = 0; i < o.changes; ++i) {
    int64_t publish_cpu0 = ThreadCpuNs();
    ChangeOneEndpoint(model, i, next_endpoint);
    model::DesiredState next = model;  // the source builds a new state; not part of the timing
    int64_t t0 = NowNs();
    state.Update(std::move(next));
    publish_cpu_ns += ThreadCpuNs() - publish_cpu0;
    uint64_t v = state.Current().version;
    int64_t acked = WaitAcked(from, v);
    if (acked < 0) return 1;
    latencies.push_back(Ms(acked - t0));
    if (getenv("CP_SCALE_VERBOSE")) Progress("change ", i, ": ", latencies.back(), " ms");
    if ((i + 1) % 20 == 0) {
      Progress("N=", n, ": ", i + 1, "/", o.changes, " changes, last ",
               absl::StrFormat("%.1f", latencies.back()), " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(o.gap_ms));
  }
  ProcessUsage after_changes = ReadUsage();
  double agents_cpu_changes = AgentsCpu(to_agents[1], from) - agents_cpu_after_snapshot;
  Percentiles p = Summarize(latencies);

  // 3. A burst: changes back to back, without waiting. Agents with a version in flight skip the
  // ones published meanwhile and get the newest in one delta.
  // With --burst 0 there is none: its "last" version would be one ACKed already.
  std::optional<BurstResult> burst;
  if (o.burst > 0) {
    burst = RunBurst(o, model, next_endpoint, state, to_agents[1], from);
    if (!burst.has_value()) return 1;
  }
  ProcessUsage end = ReadUsage();

  absl::PrintF("RESULT agents=%d services=%d endpoints=%d\n", n, o.services,
               o.services * o.endpoints_per_service);
  absl::PrintF("  snapshot to all agents:   %.0f ms (from the first connect to the last ACK)\n",
               snapshot_ms);
  absl::PrintF(
      "  change ACKed by all:      p50 %.1f ms  p99 %.1f ms  max %.1f ms  (%d changes, "
      "%d ms apart)\n",
      p.p50, p.p99, p.max, o.changes, o.gap_ms);
  if (burst.has_value()) {
    absl::PrintF(
        "  burst of %d changes:      all agents on the last one after %.1f ms; %.1f "
        "versions ACKed per agent (%d without coalescing)\n",
        o.burst, burst->all_acked_ms, burst->acks_per_agent(n), o.burst);
  }
  absl::PrintF(
      "  control plane RSS:        model loaded %.0f MB, after snapshot %.0f MB, "
      "after changes %.0f MB, end %.0f MB, peak %.0f MB\n",
      before.rss_mb, after_snapshot.rss_mb, after_changes.rss_mb, end.rss_mb, end.peak_rss_mb);
  absl::PrintF(
      "  control plane CPU:        snapshot fan-out %.2f s, %d changes %.2f s "
      "(%.2f ms per change, of which %.2f ms building and publishing the new model), "
      "burst %.2f s\n",
      after_snapshot.cpu_s - before.cpu_s, o.changes, after_changes.cpu_s - after_snapshot.cpu_s,
      1000 * (after_changes.cpu_s - after_snapshot.cpu_s) / o.changes,
      Ms(publish_cpu_ns) / o.changes, end.cpu_s - after_changes.cpu_s);
  absl::PrintF(
      "  simulated agents' CPU:    snapshot %.2f s, %d changes %.2f s (%.2f ms per "
      "change); %s\n",
      agents_cpu_after_snapshot, o.changes, agents_cpu_changes,
      1000 * agents_cpu_changes / o.changes,
      o.split_cpus ? "on CPU 1, the control plane on CPU 0" : "same CPUs as the control plane");
  absl::PrintF(
      "RESULT_LINE agents=%d snapshot_ms=%.0f change_p50_ms=%.1f change_p99_ms=%.1f "
      "change_max_ms=%.1f rss_steady_mb=%.0f rss_peak_mb=%.0f cpu_snapshot_s=%.2f "
      "cpu_per_change_ms=%.2f cpu_publish_per_change_ms=%.2f agents_cpu_per_change_ms=%.2f "
      "burst_versions_per_agent=%.1f cpus=%s\n",
      n, snapshot_ms, p.p50, p.p99, p.max, end.rss_mb, end.peak_rss_mb,
      after_snapshot.cpu_s - before.cpu_s,
      1000 * (after_changes.cpu_s - after_snapshot.cpu_s) / o.changes,
      Ms(publish_cpu_ns) / o.changes, 1000 * agents_cpu_changes / o.changes,
      burst.has_value() ? burst->acks_per_agent(n) : 0.0, o.split_cpus ? "split" : "shared");
  std::fflush(stdout);

  // The agents close their streams first: a stream the server ends is one a simulated agent
  // reopens (and reports), as a real agent reconnects.
  WriteLine(to_agents[1], "quit");
  int status = 0;
  waitpid(agents, &status, 0);
  service.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

void RaiseFdLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int Main(int argc, char** argv) {
  CLI::App app{
      "sockmesh-control-plane-scale: N simulated agents (one gRPC channel each, in one process,\n"
      "decoding with the agent's code) follow a control plane (the real server library, in "
      "another\n"
      "process) serving a generated model; reports the control plane's memory and CPU, the time\n"
      "for the snapshot to reach all agents, and the time from one endpoint change to all agents\n"
      "having ACKed it. Loopback only (127.0.0.1, port chosen by the kernel); needs no root."};
  Options o;
  std::string counts = "10,100,1000";
  app.add_option("--agents", counts, "Comma-separated agent counts, one run each")
      ->capture_default_str();
  app.add_option("--services", o.services, "Services (one frontend each)")->capture_default_str();
  app.add_option("--endpoints-per-service", o.endpoints_per_service, "Endpoints per service")
      ->capture_default_str();
  app.add_option("--changes", o.changes, "Endpoint changes timed one at a time")
      ->capture_default_str();
  app.add_option("--gap-ms", o.gap_ms, "Pause after a change has been ACKed everywhere")
      ->capture_default_str();
  app.add_option("--burst", o.burst,
                 "Changes published back to back at the end (coalescing); 0: none")
      ->capture_default_str();
  std::string agent_client = "callback";
  app.add_option("--agent-client", agent_client,
                 "callback: simulated agents on gRPC's callback API (few threads in all); "
                 "blocking: the agent's own ControlPlaneClient (two threads per agent)")
      ->check(CLI::IsMember({"callback", "blocking"}))
      ->capture_default_str();
  app.add_flag("--split-cpus", o.split_cpus,
               "Control plane on CPU 0, simulated agents on CPU 1 (needs 2 CPUs), as if the "
               "agents ran on other machines; default: both on all CPUs");
  app.add_option("--timeout", o.timeout_s, "Seconds one agent count may take before it is killed")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  o.blocking_agents = agent_client == "blocking";
  o.agent_counts.clear();
  for (absl::string_view c : absl::StrSplit(counts, ',')) {
    int v = 0;
    if (!absl::SimpleAtoi(c, &v) || v <= 0) {
      std::cerr << "--agents: invalid count \"" << c << "\"\n";
      return 2;
    }
    o.agent_counts.push_back(v);
  }
  if (o.services <= 0 || o.endpoints_per_service <= 0 || o.changes <= 0 || o.burst < 0) {
    std::cerr << "--services, --endpoints-per-service and --changes must be positive\n";
    return 2;
  }
  RaiseFdLimit();
  // As sockmesh-control does (control_main.cc says why); the forked processes inherit it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  int failures = 0;
  for (int n : o.agent_counts) {
    pid_t cp = fork();
    if (cp == 0) {
      // Bounded: the control plane's process group (it and its agents) dies at the deadline.
      setpgid(0, 0);
      alarm(o.timeout_s);
      _exit(RunControlPlane(o, n));
    }
    setpgid(cp, cp);
    int status = 0;
    waitpid(cp, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      Progress("N=", n, ": failed (",
               WIFSIGNALED(status) ? absl::StrCat("signal ", WTERMSIG(status))
                                   : absl::StrCat("exit ", WEXITSTATUS(status)),
               ")");
      kill(-cp, SIGKILL);  // the agents' process, if the control plane died first
      ++failures;
    }
  }
  // Outside the measured processes, so it does not count in their memory.
  v1::Snapshot snapshot = model::MakeSnapshot(1, MakeModel(o));
  absl::PrintF("snapshot message: %d services, %.1f MB serialized\n", snapshot.services_size(),
               snapshot.ByteSizeLong() / 1e6);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace sockmesh::bench

int main(int argc, char** argv) { return sockmesh::bench::Main(argc, argv); }
