// SPDX-License-Identifier: Apache-2.0
// sockmesh-datapath-cost: the kernel work each sockmesh program adds, with the short-circuit off.
// Two planes in the same run, in rounds that alternate their order:
//   no_hook  no programs: the client dials the backend's address directly (the baseline);
//   mesh     the load balancer's programs attached to a throwaway cgroup (TestDatapath), the
//            client dials a service VIP; data goes through loopback TCP.
// Three loads per plane and round, all on 127.0.0.0/8: keep-alive request/response (closed loop on
// one connection), connection per request (connect, one request/response, close) and one-connection
// bulk. The throughput ratio mesh/no_hook comes from rounds run with BPF statistics off; then each
// load runs once more on the mesh with statistics on (BPF_ENABLE_STATS: the kernel times every
// program run while the returned fd is open, so the system setting is never changed), and the run
// count and run time of every program attached through the instance's pinned links are read
// before and after. The mesh cgroup has a workload identity (--no-identity: none) and no policy,
// as an agent with workloads and no authorization policy has it. The table gives, per program, runs
// and ns per request (or connection, or MB) and ns per run; a cgroup_skb run is one packet.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/load_average.h"
#include "bench/loopback_address.h"
#include "bench/median.h"
#include "bench/same_node_load.h"
#include "bench/same_node_server.h"
#include "sockmesh/abi.h"
#include "sockmesh/consts.h"
#include "tests/support/model_builders.h"
#include "tests/support/test_datapath.h"
#include "userspace/agent/bpffs.h"
#include "userspace/agent/cgroup.h"
#include "userspace/agent/policy_sync.h"
#include "userspace/sys/errno_status.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::bench {
namespace {

namespace fs = std::filesystem;

// Backend addresses of this benchmark only (other benches and tests use other 127.0.0.x).
constexpr char kNoHookIp[] = "127.0.0.71";
constexpr char kMeshIp[] = "127.0.0.72";
constexpr uint32_t kIdentity = 4242;
constexpr uint16_t kRrPort = 80;
constexpr uint16_t kOneShotPort = 81;
constexpr uint16_t kSinkPort = 82;

struct Options {
  int rounds = 3;
  double seconds = 2;
  double stats_seconds = 2;
  std::string vip = "127.10.7.1";
  bool identity = true;
  size_t bulk_chunk = 64 * 1024;
  int bulk_window_mib = 16;
};

enum class LoadKind { kKeepAlive, kConnect, kBulk };
constexpr LoadKind kLoads[] = {LoadKind::kKeepAlive, LoadKind::kConnect, LoadKind::kBulk};

const char* LoadName(LoadKind k) {
  switch (k) {
    case LoadKind::kKeepAlive:
      return "keepalive_rr";
    case LoadKind::kConnect:
      return "conn_per_req";
    case LoadKind::kBulk:
      return "bulk";
  }
  return "?";
}

// What one unit of a load is: per request, per connection, per MB moved.
const char* UnitName(LoadKind k) {
  switch (k) {
    case LoadKind::kKeepAlive:
      return "req";
    case LoadKind::kConnect:
      return "conn";
    case LoadKind::kBulk:
      return "MB";
  }
  return "?";
}

double Units(LoadKind k, const LoadResult& r) {
  return k == LoadKind::kBulk ? static_cast<double>(r.completed) / 1e6
                              : static_cast<double>(r.completed);
}

struct Targets {
  sockaddr_in rr{}, one_shot{}, sink{};
  const sockaddr_in& of(LoadKind k) const {
    return k == LoadKind::kKeepAlive ? rr : k == LoadKind::kConnect ? one_shot : sink;
  }
};

absl::StatusOr<Targets> Listen(SameNodeServer& server, const std::string& ip) {
  Targets t;
  const std::pair<SameNodeServer::Kind, sockaddr_in*> kinds[] = {
      {SameNodeServer::Kind::kRequestResponse, &t.rr},
      {SameNodeServer::Kind::kOneShot, &t.one_shot},
      {SameNodeServer::Kind::kSink, &t.sink}};
  for (const auto& [kind, out] : kinds) {
    absl::StatusOr<sockaddr_in> a = server.Listen(ip, kind);
    if (!a.ok()) return a.status();
    *out = *a;
  }
  return t;
}

// One program's counters as the kernel keeps them (run_time_ns only moves while stats are on).
struct ProgStats {
  uint64_t run_cnt = 0;
  uint64_t run_time_ns = 0;
};

// Every program attached through the instance's pinned links, by link (= program) name.
absl::StatusOr<std::map<std::string, ProgStats>> ReadProgStats(const std::string& links_dir) {
  std::map<std::string, ProgStats> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(links_dir, ec)) {
    sys::UniqueFd link(bpf_obj_get(entry.path().c_str()));
    if (link.get() < 0) return sys::ErrnoToStatus(errno, "open " + entry.path().string());
    bpf_link_info li{};
    uint32_t len = sizeof(li);
    if (bpf_obj_get_info_by_fd(link.get(), &li, &len) != 0) {
      return sys::ErrnoToStatus(errno, "link info " + entry.path().string());
    }
    sys::UniqueFd prog(bpf_prog_get_fd_by_id(li.prog_id));
    if (prog.get() < 0) return sys::ErrnoToStatus(errno, absl::StrCat("prog id ", li.prog_id));
    bpf_prog_info pi{};
    len = sizeof(pi);
    if (bpf_obj_get_info_by_fd(prog.get(), &pi, &len) != 0) {
      return sys::ErrnoToStatus(errno, absl::StrCat("prog info ", li.prog_id));
    }
    out[entry.path().filename().string()] = {pi.run_cnt, pi.run_time_ns};
  }
  if (ec) return sys::ErrnoToStatus(ec.value(), "list " + links_dir);
  return out;
}

struct Bench {
  const Options& opt;
  SameNodeServer& server;
  Targets no_hook, mesh;
  testing::TestDatapath& dp;

  LoadResult Run(LoadKind k, const sockaddr_in& target, double seconds) {
    LoadOptions lo;
    switch (k) {
      case LoadKind::kKeepAlive:
        return ClosedLoop(target, seconds, lo);
      case LoadKind::kConnect:
        return ConnectHeavy(target, seconds, lo);
      case LoadKind::kBulk:
        return Bulk(target, seconds, opt.bulk_chunk,
                    static_cast<uint64_t>(opt.bulk_window_mib) << 20, server.sink_bytes(), lo);
    }
    return {};
  }

  // The mesh client runs inside the datapath's cgroup (sockets take their cgroup at socket()).
  absl::StatusOr<LoadResult> RunMesh(LoadKind k, double seconds) {
    if (absl::Status s = dp.cgroup().Join(); !s.ok()) return s;
    LoadResult r = Run(k, mesh.of(k), seconds);
    if (absl::Status s = dp.cgroup().Leave(); !s.ok()) return s;
    return r;
  }
};

void PrintRun(const std::string& label, const char* plane, LoadKind k, const LoadResult& r) {
  std::cout << absl::StrFormat("%-10s %-8s %-13s %12.1f %s/s  p50 %7.1f us  errors %d%s\n", label,
                               plane, LoadName(k), Units(k, r) / r.seconds, UnitName(k),
                               r.latency_ns.Quantile(0.5) / 1e3, r.errors,
                               r.first_error.empty() ? "" : " (" + r.first_error + ")");
}

int Fail(const std::string& what) {
  std::cerr << "datapath-cost: " << what << std::endl;
  return 1;
}

int Main(int argc, char** argv) {
  Options opt;
  CLI::App app{
      "Per-program kernel cost of the sockmesh datapath without the short-circuit (ns per packet, "
      "request, connection) and the throughput ratio to no hooks. Needs root; creates a throwaway "
      "cgroup and removes it again; traffic stays on 127.0.0.0/8."};
  app.add_option("--rounds", opt.rounds, "rounds of no_hook + mesh for the ratio")
      ->check(CLI::Range(1, 50));
  app.add_option("--seconds", opt.seconds, "length of each load in the ratio rounds")
      ->check(CLI::Range(0.2, 30.0));
  app.add_option("--stats-seconds", opt.stats_seconds, "length of each load with BPF stats on")
      ->check(CLI::Range(0.2, 30.0));
  app.add_option("--vip", opt.vip, "service VIP (127.0.0.0/8)");
  app.add_flag("--identity,!--no-identity", opt.identity,
               "give the mesh cgroup a workload identity, as the agent does for a workload's "
               "cgroup (default on)");
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) return Fail("needs root (cgroups and BPF attach)");
  if (!IsLoopback(opt.vip)) return Fail("--vip must be in 127.0.0.0/8");

  // Client on the last CPU, server on the first, as same_node_bench does.
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ::sched_getaffinity(0, sizeof(allowed), &allowed);
  int first = -1, last = -1;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &allowed)) continue;
    if (first < 0) first = c;
    last = c;
  }
  absl::StatusOr<std::unique_ptr<SameNodeServer>> server = SameNodeServer::Create({.cpu = first});
  if (!server.ok()) return Fail(server.status().ToString());
  absl::StatusOr<Targets> no_hook = Listen(**server, kNoHookIp);
  if (!no_hook.ok()) return Fail(no_hook.status().ToString());

  absl::StatusOr<std::unique_ptr<testing::TestDatapath>> dp = testing::TestDatapath::Create();
  if (!dp.ok()) return Fail(dp.status().ToString());
  absl::StatusOr<Targets> backends = Listen(**server, kMeshIp);  // created inside the mesh cgroup
  if (absl::Status s = (*dp)->cgroup().Leave(); !s.ok()) return Fail(s.ToString());
  if (!backends.ok()) return Fail(backends.status().ToString());
  model::DesiredState state;
  for (const auto& [port, backend] :
       {std::pair{kRrPort, backends->rr}, std::pair{kOneShotPort, backends->one_shot},
        std::pair{kSinkPort, backends->sink}}) {
    testing::AddService(
        state, testing::MakeService(opt.vip, port, model::Protocol::kTcp,
                                    {testing::MakeBackend(kMeshIp, ntohs(backend.sin_port))}));
  }
  if (agent::SyncReport rep = (*dp)->Apply(state); rep.failed != 0) {
    return Fail("programming the services: " + rep.Summary());
  }
  // Client and server in one workload cgroup: every connection is workload to workload.
  if (opt.identity) {
    absl::StatusOr<uint64_t> id = agent::CgroupId((*dp)->cgroup_path());
    if (!id.ok()) return Fail(id.status().ToString());
    absl::Status s = (*dp)->datapath().maps().cgroup_identity.Update(
        *id, sm_identity{.identity = kIdentity, .flags = SM_IDENTITY_F_LOCAL});
    if (!s.ok()) return Fail(s.ToString());
  }
  // What the agent does at start: no policy selects a local workload, so flows go unrecorded.
  {
    agent::DatapathMaps& m = (*dp)->datapath().maps();
    absl::StatusOr<agent::PolicySync> policy =
        agent::PolicySync::Recover(agent::PolicyMaps{.rows = &m.policy_rows,
                                                     .ips = &m.ip_policy_endpoint,
                                                     .cgroups = &m.cgroup_policy_endpoint,
                                                     .flow_gate = &m.flow_gate});
    if (!policy.ok()) return Fail(policy.status().ToString());
  }
  Targets mesh{MakeAddr(opt.vip, kRrPort), MakeAddr(opt.vip, kOneShotPort),
               MakeAddr(opt.vip, kSinkPort)};
  if (absl::Status s = (*server)->Start(); !s.ok()) return Fail(s.ToString());
  if (last >= 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    ::sched_setaffinity(0, sizeof(one), &one);
  }
  const std::string links_dir =
      agent::MakePinLayout((*dp)->bpffs_root(), (*dp)->instance()).links_dir;

  std::cout << absl::StrFormat(
      "sockmesh datapath cost: %d CPUs (client on CPU %d, server on CPU %d), load average %s\n"
      "  mesh cgroup %s (%s), backends no_hook %s mesh %s, VIP %s:%d/%d/%d, short-circuit off\n"
      "  %d rounds x 2 planes x 3 loads of %.1fs (stats off), then each load %.1fs on the mesh "
      "with "
      "BPF stats on\n",
      CPU_COUNT(&allowed), last, first, LoadAverage(), (*dp)->cgroup_path(),
      opt.identity ? "a workload identity" : "no identity", kNoHookIp, kMeshIp, opt.vip, kRrPort,
      kOneShotPort, kSinkPort, opt.rounds, opt.seconds, opt.stats_seconds);

  Bench bench{opt, **server, *no_hook, mesh, **dp};
  std::map<LoadKind, std::vector<double>> rate_no_hook, rate_mesh, ratio;
  int errors = 0;
  for (int round = 0; round < opt.rounds; ++round) {
    const std::string label = absl::StrCat("round ", round + 1, "/", opt.rounds);
    for (LoadKind k : kLoads) {
      // Alternate which plane goes first, so a drift of the machine does not favour one.
      double nh = 0, m = 0;
      for (int i = 0; i < 2; ++i) {
        const bool mesh_now = (i == 0) == (round % 2 == 1);
        if (mesh_now) {
          absl::StatusOr<LoadResult> r = bench.RunMesh(k, opt.seconds);
          if (!r.ok()) return Fail(r.status().ToString());
          PrintRun(label, "mesh", k, *r);
          errors += static_cast<int>(r->errors);
          m = Units(k, *r) / r->seconds;
        } else {
          LoadResult r = bench.Run(k, no_hook->of(k), opt.seconds);
          PrintRun(label, "no_hook", k, r);
          errors += static_cast<int>(r.errors);
          nh = Units(k, r) / r.seconds;
        }
      }
      rate_no_hook[k].push_back(nh);
      rate_mesh[k].push_back(m);
      ratio[k].push_back(nh > 0 ? m / nh : 0);
    }
  }

  std::cout << "\nper-program cost on the mesh (BPF stats on; a cgroup_skb run is one packet):\n";
  std::map<LoadKind, double> total_ns;
  for (LoadKind k : kLoads) {
    int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (stats_fd < 0) return Fail(absl::StrCat("BPF_ENABLE_STATS: ", std::strerror(errno)));
    sys::UniqueFd stats(stats_fd);
    absl::StatusOr<std::map<std::string, ProgStats>> before = ReadProgStats(links_dir);
    if (!before.ok()) return Fail(before.status().ToString());
    absl::StatusOr<LoadResult> r = bench.RunMesh(k, opt.stats_seconds);
    if (!r.ok()) return Fail(r.status().ToString());
    absl::StatusOr<std::map<std::string, ProgStats>> after = ReadProgStats(links_dir);
    if (!after.ok()) return Fail(after.status().ToString());
    stats = sys::UniqueFd();
    PrintRun("stats on", "mesh", k, *r);
    errors += static_cast<int>(r->errors);
    const double units = std::max(Units(k, *r), 1e-9);
    std::cout << absl::StrFormat("  %-18s %12s %12s %10s %12s\n", "program", "runs",
                                 absl::StrCat("runs/", UnitName(k)), "ns/run",
                                 absl::StrCat("ns/", UnitName(k)));
    double sum = 0;
    for (const auto& [name, a] : *after) {
      const ProgStats b = before->count(name) ? before->at(name) : ProgStats{};
      const uint64_t runs = a.run_cnt - b.run_cnt;
      const uint64_t ns = a.run_time_ns - b.run_time_ns;
      if (runs == 0) continue;
      sum += ns / units;
      std::cout << absl::StrFormat("  %-18s %12d %12.2f %10.1f %12.1f\n", name, runs, runs / units,
                                   static_cast<double>(ns) / runs, ns / units);
    }
    std::cout << absl::StrFormat("  %-18s %12s %12s %10s %12.1f\n", "total", "", "", "", sum);
    total_ns[k] = sum;
  }

  std::cout << "\nmedians over the rounds (stats off):\n";
  std::cout << absl::StrFormat("  %-13s %14s %14s %8s %18s\n", "load", "no_hook/s", "mesh/s",
                               "ratio", "(round range)");
  for (LoadKind k : kLoads) {
    const auto [lo, hi] = std::minmax_element(ratio[k].begin(), ratio[k].end());
    std::cout << absl::StrFormat("  %-13s %14.1f %14.1f %8.3f %18s\n",
                                 absl::StrCat(LoadName(k), " (", UnitName(k), ")"),
                                 Median(rate_no_hook[k]), Median(rate_mesh[k]), Median(ratio[k]),
                                 absl::StrFormat("[%.3f..%.3f]", *lo, *hi));
  }
  for (LoadKind k : kLoads) {
    std::cout << absl::StrFormat("RESULT %s ratio_mesh_to_no_hook=%.3f bpf_ns_per_%s=%.1f\n",
                                 LoadName(k), Median(ratio[k]), UnitName(k), total_ns[k]);
  }
  if (errors != 0) return Fail(absl::StrCat(errors, " load errors (see above)"));
  return 0;
}

}  // namespace
}  // namespace sockmesh::bench

int main(int argc, char** argv) { return sockmesh::bench::Main(argc, argv); }
