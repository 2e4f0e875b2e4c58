// SPDX-License-Identifier: Apache-2.0
// sockmesh-connect-bench: what the connect4 hook costs a TCP client, as new connections per second.
//
// Three modes, measured in the same run, in alternating rounds so that drift (other load on the
// machine, frequency changes) affects each alike:
//   direct_in_mesh  the process is in the mesh cgroup and dials a backend address: the hook runs
//                   and misses in sm_svc_v1, the cost every non-service connect() pays;
//   vip             the process is in the mesh cgroup and dials the service VIP: the hook looks the
//                   service up, picks a backend, rewrites the address and records reverse NAT;
//   no_hook         the process has left the mesh cgroup and dials a backend address: no BPF runs,
//                   the baseline both are compared with.
// A connection is socket() + connect() + close() with SO_LINGER 0 (an RST close, so neither side
// keeps a TIME_WAIT and ephemeral ports do not run out). Traffic stays on 127.0.0.0/8.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/accept_close_server.h"
#include "bench/load_average.h"
#include "bench/loopback_address.h"
#include "bench/median.h"
#include "bench/signal_stopper.h"
#include "nlohmann/json.hpp"
#include "sockmesh/consts.h"
#include "tests/support/test_datapath.h"
#include "userspace/metrics/latency_histogram.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::bench {
namespace {

using metrics::LatencyHistogram;

// The VIP's port; the backends listen on ports the kernel picks.
constexpr uint16_t kVipPort = 80;
// A bound on a single connect() (SO_SNDTIMEO applies to connect): a dropped SYN would otherwise
// block for the kernel's whole SYN retry schedule (~2 minutes) and make a round unbounded.
constexpr int kConnectTimeoutMs = 1000;

enum class Mode { kDirectInMesh, kVip, kNoHook };
// The order within a round (the a, b, c).
constexpr std::array<Mode, 3> kRoundOrder = {Mode::kDirectInMesh, Mode::kVip, Mode::kNoHook};

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kDirectInMesh:
      return "direct_in_mesh";
    case Mode::kVip:
      return "vip";
    case Mode::kNoHook:
      return "no_hook";
  }
  return "?";
}

size_t ModeIndex(Mode mode) { return static_cast<size_t>(mode); }

struct Options {
  int backends = 4;
  double seconds = 3;
  int threads = 1;
  int server_threads = 0;  // 0: as many as client threads
  int rounds = 5;
  double warmup = 0.5;
  bool payload = false;
  std::string cpus = "auto";
  std::string vip = "127.10.0.1";
  std::string json;
};

uint64_t NowNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::string FormatAddr(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
  return absl::StrCat(buf, ":", ntohs(a.sin_port));
}

// Resolves --cpus to the CPUs the whole benchmark is pinned to; empty means not pinned.
// "auto" pins a single-client run to one CPU, the last one this process may use (CPU 0 tends to
// take more of the machine's interrupts). On one CPU, client, backend and softirq work are
// serialised, so the rate is 1 / (CPU time per connection) and the hook's cost shows in full; left
// to the scheduler, client and backend land on the same or on different CPUs from round to round
// and the cross-CPU wakeups that result vary more than the hook costs.
absl::StatusOr<std::vector<int>> ResolveCpus(const std::string& arg, int threads) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    return sys::ErrnoToStatus(errno, "sched_getaffinity");
  }
  std::vector<int> cpus;
  if (arg == "none" || (arg == "auto" && threads > 1)) return cpus;
  if (arg == "auto") {
    for (int c = CPU_SETSIZE - 1; c >= 0; --c) {
      if (CPU_ISSET(c, &allowed)) return std::vector<int>{c};
    }
    return absl::InternalError("no CPU in this process's affinity mask");
  }
  for (absl::string_view part : absl::StrSplit(arg, ',')) {
    int c = -1;
    if (!absl::SimpleAtoi(part, &c) || c < 0 || c >= CPU_SETSIZE || !CPU_ISSET(c, &allowed)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--cpus: '", part, "' is not a CPU this process may use"));
    }
    cpus.push_back(c);
  }
  return cpus;
}

absl::Status PinCallingThread(const std::vector<int>& cpus) {
  if (cpus.empty()) return absl::OkStatus();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) {
    return sys::ErrnoToStatus(errno, "sched_setaffinity");
  }
  return absl::OkStatus();
}

// One client thread's share of a round.
struct ThreadResult {
  uint64_t connects = 0;
  uint64_t errors = 0;
  int last_error = 0;
  uint64_t wall_ns = 0;
  LatencyHistogram connect_ns;
};

// Opens, connects and RST-closes one connection; records connect()'s own duration.
// Returns 0 or the errno of the failing step.
int OneConnection(const sockaddr_in& target, bool payload, LatencyHistogram& hist) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  const linger lg{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  const timeval tv{.tv_sec = kConnectTimeoutMs / 1000,
                   .tv_usec = (kConnectTimeoutMs % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (payload) ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int err = 0;
  const uint64_t t0 = NowNs(CLOCK_MONOTONIC);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target));
  const uint64_t t1 = NowNs(CLOCK_MONOTONIC);
  if (rc != 0) {
    err = errno;
  } else {
    hist.Add(t1 - t0);
    if (payload) {
      char byte;
      ssize_t n = ::recv(fd, &byte, 1, 0);
      if (n != 1) err = n < 0 ? errno : EPROTO;
    }
  }
  ::close(fd);
  return err;
}

void ClientLoop(const std::vector<sockaddr_in>& targets, size_t first, double seconds, bool payload,
                std::latch& ready, ThreadResult& out) {
  ready.arrive_and_wait();
  const uint64_t start = NowNs(CLOCK_MONOTONIC);
  const uint64_t deadline = start + static_cast<uint64_t>(seconds * 1e9);
  size_t next = first;
  uint64_t now = start;
  while (now < deadline && !StopRequested()) {
    const sockaddr_in& target = targets[next];
    next = next + 1 == targets.size() ? 0 : next + 1;
    if (int err = OneConnection(target, payload, out.connect_ns); err != 0) {
      ++out.errors;
      out.last_error = err;
    } else {
      ++out.connects;
    }
    now = NowNs(CLOCK_MONOTONIC);
  }
  out.wall_ns = now - start;
}

struct RoundResult {
  Mode mode = Mode::kNoHook;
  int round = 0;  // 1-based; 0 for warm-up
  uint64_t connects = 0;
  uint64_t errors = 0;
  int last_error = 0;
  double per_sec = 0;
  // The whole process's CPU time (clients, backends, and the softirq work the kernel charges to
  // them) per connection. Less disturbed by other load on the machine than the rate is.
  double cpu_us_per_conn = 0;
  uint64_t xlated = 0;    // SM_CNT_CONNECT_XLATE delta: connects the hook rewrote
  bool complete = false;  // ran its full duration (not cut short by a signal)
  LatencyHistogram connect_ns;
};

// One round of one mode: `threads` clients for `seconds`, each cycling through `targets` from its
// own offset so that the threads together spread evenly over the backends.
RoundResult RunRound(testing::TestDatapath& dp, Mode mode, const std::vector<sockaddr_in>& targets,
                     double seconds, int threads, bool payload) {
  RoundResult r;
  r.mode = mode;
  const uint64_t xlate_before = dp.Counter(SM_CNT_CONNECT_XLATE);
  const uint64_t cpu_before = NowNs(CLOCK_PROCESS_CPUTIME_ID);
  std::vector<ThreadResult> results(static_cast<size_t>(threads));
  {
    std::latch ready(threads);
    std::vector<std::thread> clients;
    for (size_t t = 0; t < results.size(); ++t) {
      clients.emplace_back(ClientLoop, std::cref(targets), t % targets.size(), seconds, payload,
                           std::ref(ready), std::ref(results[t]));
    }
    for (std::thread& c : clients) c.join();
  }
  const uint64_t cpu_ns = NowNs(CLOCK_PROCESS_CPUTIME_ID) - cpu_before;
  r.xlated = dp.Counter(SM_CNT_CONNECT_XLATE) - xlate_before;
  for (const ThreadResult& t : results) {
    r.connects += t.connects;
    r.errors += t.errors;
    if (t.last_error != 0) r.last_error = t.last_error;
    // The threads run side by side for the same duration, so the rates add up.
    if (t.wall_ns > 0) r.per_sec += static_cast<double>(t.connects) * 1e9 / t.wall_ns;
    r.connect_ns.Merge(t.connect_ns);
  }
  r.cpu_us_per_conn = r.connects ? static_cast<double>(cpu_ns) / 1e3 / r.connects : 0;
  r.complete = !StopRequested();
  return r;
}

// A child process parked in the mesh cgroup for the whole run. The no_hook mode moves this process
// out, which leaves the cgroup empty, and ScopedCgroup::Create() in any other process (a test run
// alongside) removes empty sockmesh-test-* cgroups as stale: ours would vanish mid-run, and its
// programs with it. A member keeps rmdir() failing with EBUSY until we are done.
class CgroupAnchor {
 public:
  // Forks the child; the calling process must be in the cgroup, which the child inherits.
  static absl::StatusOr<std::unique_ptr<CgroupAnchor>> Start() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return sys::ErrnoToStatus(errno, "pipe2");
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int err = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      return sys::ErrnoToStatus(err, "fork");
    }
    if (pid == 0) {
      // Async-signal-safe calls only: the parent has threads. Waits for EOF on the pipe, which
      // comes when the parent closes its end or dies; PDEATHSIG covers a parent killed outright.
      ::close(fds[1]);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      char c;
      while (::read(fds[0], &c, 1) < 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    ::close(fds[0]);
    return std::unique_ptr<CgroupAnchor>(new CgroupAnchor(pid, fds[1]));
  }
  ~CgroupAnchor() {
    ::close(release_fd_);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  CgroupAnchor(const CgroupAnchor&) = delete;
  CgroupAnchor& operator=(const CgroupAnchor&) = delete;

 private:
  CgroupAnchor(pid_t pid, int release_fd) : pid_(pid), release_fd_(release_fd) {}
  pid_t pid_;
  int release_fd_;  // write end of the pipe the child waits on
};

// Runs `fn` with the process outside the mesh cgroup, then joins it again. Sockets take their
// cgroup from the creating thread at socket() time, so a socket made in between never sees the
// hook.
template <typename Fn>
absl::Status OutsideMesh(testing::TestDatapath& dp, Fn fn) {
  if (absl::Status s = dp.cgroup().Leave(); !s.ok()) return s;
  fn();
  return dp.cgroup().Join();
}

// Before measuring, checks that each mode is what it claims: backends answer directly, the VIP is
// translated inside the mesh, and nothing is translated outside it.
absl::Status Preflight(testing::TestDatapath& dp, const std::vector<sockaddr_in>& backends,
                       const sockaddr_in& vip, bool payload) {
  LatencyHistogram unused;
  for (const sockaddr_in& b : backends) {
    if (int err = OneConnection(b, payload, unused); err != 0) {
      return absl::UnavailableError(absl::StrCat("backend ", FormatAddr(b), ": ", strerror(err)));
    }
  }
  uint64_t before = dp.Counter(SM_CNT_CONNECT_XLATE);
  if (int err = OneConnection(vip, payload, unused); err != 0) {
    return absl::UnavailableError(
        absl::StrCat("VIP ", FormatAddr(vip), " inside the mesh: ", strerror(err)));
  }
  if (dp.Counter(SM_CNT_CONNECT_XLATE) != before + 1) {
    return absl::InternalError("a VIP connect inside the mesh was not counted as translated");
  }
  before = dp.Counter(SM_CNT_CONNECT_XLATE);
  absl::Status outside = OutsideMesh(dp, [&] { (void)OneConnection(vip, false, unused); });
  if (!outside.ok()) return outside;
  if (dp.Counter(SM_CNT_CONNECT_XLATE) != before) {
    return absl::InternalError("a VIP connect outside the mesh cgroup was translated");
  }
  return absl::OkStatus();
}

absl::StatusOr<RoundResult> RunMode(testing::TestDatapath& dp, Mode mode,
                                    const std::vector<sockaddr_in>& backends,
                                    const std::vector<sockaddr_in>& vip, double seconds,
                                    const Options& opt) {
  const std::vector<sockaddr_in>& targets = mode == Mode::kVip ? vip : backends;
  if (mode != Mode::kNoHook) return RunRound(dp, mode, targets, seconds, opt.threads, opt.payload);
  RoundResult r;
  absl::Status s =
      OutsideMesh(dp, [&] { r = RunRound(dp, mode, targets, seconds, opt.threads, opt.payload); });
  if (!s.ok()) return s;
  return r;
}

struct ModeSummary {
  std::vector<double> per_sec;  // one per complete round
  double median = 0, min = 0, max = 0;
  double cpu_us_per_conn = 0;  // median over rounds
  uint64_t connects = 0, errors = 0, xlated = 0;
  int last_error = 0;
  LatencyHistogram connect_ns;  // all complete rounds
};

struct PairedRatio {
  double median = 0, min = 0, max = 0;
};

// Ratios of the same round's modes: they ran seconds apart, so a slow spell on the machine cancels.
PairedRatio Paired(const std::vector<RoundResult>& rounds, Mode num, Mode den, int round_count) {
  std::vector<double> ratios;
  for (int round = 1; round <= round_count; ++round) {
    double n = 0, d = 0;
    for (const RoundResult& r : rounds) {
      if (r.round != round || !r.complete) continue;
      if (r.mode == num) n = r.per_sec;
      if (r.mode == den) d = r.per_sec;
    }
    if (n > 0 && d > 0) ratios.push_back(n / d);
  }
  if (ratios.empty()) return {};
  return {Median(ratios), *std::min_element(ratios.begin(), ratios.end()),
          *std::max_element(ratios.begin(), ratios.end())};
}

std::string Us(double ns) { return absl::StrFormat("%.1fus", ns / 1e3); }

void PrintRound(const RoundResult& r, int rounds) {
  std::string label = r.round == 0 ? "warm-up" : absl::StrFormat("round %d/%d", r.round, rounds);
  std::cout << absl::StrFormat(
                   "%-12s %-15s %9.0f conn/s  connect p50 %-8s p99 %-8s cpu %5.2fus/conn  "
                   "errors %d  xlated %d%s",
                   label, ModeName(r.mode), r.per_sec, Us(r.connect_ns.Quantile(0.5)),
                   Us(r.connect_ns.Quantile(0.99)), r.cpu_us_per_conn, r.errors, r.xlated,
                   r.complete ? "" : "  (interrupted)")
            << std::endl;
}

int Run(const Options& opt) {
  if (::geteuid() != 0) {
    std::cerr << "connect-bench: needs root (cgroup and BPF attach)" << std::endl;
    return 1;
  }
  if (!IsLoopback(opt.vip)) {
    std::cerr << "connect-bench: --vip must be in 127.0.0.0/8" << std::endl;
    return 1;
  }
  absl::StatusOr<std::vector<int>> cpus = ResolveCpus(opt.cpus, opt.threads);
  if (!cpus.ok()) {
    std::cerr << "connect-bench: " << cpus.status().message() << std::endl;
    return 1;
  }
  SignalStopper stopper("connect-bench");
  // Before the backend and client threads start: they inherit the main thread's affinity.
  if (absl::Status s = PinCallingThread(*cpus); !s.ok()) {
    std::cerr << "connect-bench: " << s << std::endl;
    return 1;
  }
  const std::string pinning = cpus->empty()
                                  ? std::string("not pinned")
                                  : absl::StrCat("pinned to CPU ", absl::StrJoin(*cpus, ","));

  // Backends on 127.0.0.2, .3, ...: distinct addresses, so the direct modes spread the same way the
  // VIP's backend choice does.
  AcceptCloseServer::Options server_opts{
      .ips = {},
      .threads = opt.server_threads ? opt.server_threads : opt.threads,
      .payload = opt.payload};
  for (int i = 0; i < opt.backends; ++i) server_opts.ips.push_back(absl::StrCat("127.0.0.", 2 + i));
  absl::StatusOr<std::unique_ptr<AcceptCloseServer>> server = AcceptCloseServer::Start(server_opts);
  if (!server.ok()) {
    std::cerr << "connect-bench: backends: " << server.status() << std::endl;
    return 1;
  }
  const std::vector<sockaddr_in>& backends = (*server)->addresses();

  // Declared after the server, so it is destroyed first: the cgroup is left and removed and the
  // pins are cleaned before the backends stop.
  absl::StatusOr<std::unique_ptr<testing::TestDatapath>> dp = testing::TestDatapath::Create();
  if (!dp.ok()) {
    std::cerr << "connect-bench: datapath: " << dp.status() << std::endl;
    return 1;
  }
  // Declared after the datapath, so the child has left the cgroup before the cgroup is removed.
  absl::StatusOr<std::unique_ptr<CgroupAnchor>> anchor = CgroupAnchor::Start();
  if (!anchor.ok()) {
    std::cerr << "connect-bench: " << anchor.status() << std::endl;
    return 1;
  }
  std::vector<model::Backend> model_backends;
  for (const sockaddr_in& b : backends) {
    char ip[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &b.sin_addr, ip, sizeof(ip));
    model_backends.push_back(testing::MakeBackend(ip, ntohs(b.sin_port)));
  }
  model::DesiredState state;
  testing::AddService(state, testing::MakeService(opt.vip, kVipPort, model::Protocol::kTcp,
                                                  std::move(model_backends)));
  if (agent::SyncReport rep = (*dp)->Apply(state); rep.failed != 0) {
    std::cerr << "connect-bench: programming the service failed: " << rep.Summary() << std::endl;
    return 1;
  }
  const std::vector<sockaddr_in> vip = {MakeAddr(opt.vip, kVipPort)};
  if (absl::Status s = Preflight(**dp, backends, vip[0], opt.payload); !s.ok()) {
    std::cerr << "connect-bench: preflight: " << s << std::endl;
    return 1;
  }

  utsname uts{};
  ::uname(&uts);
  std::cout << absl::StrFormat(
                   "sockmesh connect bench: kernel %s, %d CPUs (%s), load average %s\n"
                   "  mesh cgroup %s\n"
                   "  %d rounds x 3 modes x %.1fs, %d client thread(s), %d server thread(s), "
                   "%d backends, VIP %s, payload %s\n",
                   uts.release, std::thread::hardware_concurrency(), pinning, LoadAverage(),
                   (*dp)->cgroup_path(), opt.rounds, opt.seconds, opt.threads, server_opts.threads,
                   opt.backends, FormatAddr(vip[0]), opt.payload ? "1 byte" : "none")
            << std::flush;

  std::vector<RoundResult> results;
  if (opt.warmup > 0) {
    for (Mode mode : kRoundOrder) {
      if (StopRequested()) break;
      absl::StatusOr<RoundResult> r = RunMode(**dp, mode, backends, vip, opt.warmup, opt);
      if (!r.ok()) {
        std::cerr << "connect-bench: " << r.status() << std::endl;
        return 1;
      }
      PrintRound(*r, opt.rounds);
    }
  }
  for (int round = 1; round <= opt.rounds && !StopRequested(); ++round) {
    for (Mode mode : kRoundOrder) {
      if (StopRequested()) break;
      absl::StatusOr<RoundResult> r = RunMode(**dp, mode, backends, vip, opt.seconds, opt);
      if (!r.ok()) {
        std::cerr << "connect-bench: " << r.status() << std::endl;
        return 1;
      }
      r->round = round;
      PrintRound(*r, opt.rounds);
      results.push_back(*std::move(r));
    }
  }
  const bool interrupted = StopRequested();

  std::array<ModeSummary, 3> sum;
  for (const RoundResult& r : results) {
    if (!r.complete) continue;
    ModeSummary& m = sum[ModeIndex(r.mode)];
    m.per_sec.push_back(r.per_sec);
    m.connects += r.connects;
    m.errors += r.errors;
    m.xlated += r.xlated;
    if (r.last_error) m.last_error = r.last_error;
    m.connect_ns.Merge(r.connect_ns);
  }
  for (Mode mode : kRoundOrder) {
    ModeSummary& m = sum[ModeIndex(mode)];
    if (m.per_sec.empty()) continue;
    m.median = Median(m.per_sec);
    m.min = *std::min_element(m.per_sec.begin(), m.per_sec.end());
    m.max = *std::max_element(m.per_sec.begin(), m.per_sec.end());
    std::vector<double> cpu;
    for (const RoundResult& r : results) {
      if (r.complete && r.mode == mode) cpu.push_back(r.cpu_us_per_conn);
    }
    m.cpu_us_per_conn = Median(cpu);
  }
  if (std::any_of(sum.begin(), sum.end(), [](const ModeSummary& m) { return m.per_sec.empty(); })) {
    std::cout << "INTERRUPTED before every mode completed a round: no summary" << std::endl;
    return 130;
  }
  const ModeSummary& vip_sum = sum[ModeIndex(Mode::kVip)];
  const ModeSummary& direct_sum = sum[ModeIndex(Mode::kDirectInMesh)];
  const ModeSummary& base_sum = sum[ModeIndex(Mode::kNoHook)];
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  // The time one connection takes, above the baseline: 1/rate is the per-connection wall time
  // (per client thread, times the thread count).
  auto added_us = [&](double rate) {
    return rate > 0 && base_sum.median > 0 ? (1 / rate - 1 / base_sum.median) * 1e6 * opt.threads
                                           : 0.0;
  };
  const double r_vip = ratio(vip_sum.median, base_sum.median);
  const double r_direct = ratio(direct_sum.median, base_sum.median);
  const double r_vip_direct = ratio(vip_sum.median, direct_sum.median);
  const PairedRatio p_vip = Paired(results, Mode::kVip, Mode::kNoHook, opt.rounds);
  const PairedRatio p_direct = Paired(results, Mode::kDirectInMesh, Mode::kNoHook, opt.rounds);
  // The rate ratio implied by CPU time alone: what a CPU-bound client would see. Other load on the
  // machine slows a round's rate but hardly its CPU time per connection, so this is the steadier
  // estimate when the rate ratios' same-round spread is wide.
  const double c_vip = ratio(base_sum.cpu_us_per_conn, vip_sum.cpu_us_per_conn);
  const double c_direct = ratio(base_sum.cpu_us_per_conn, direct_sum.cpu_us_per_conn);

  std::cout << "\n"
            << absl::StrFormat("%-15s %10s %10s %10s %9s %10s %9s %9s %13s %7s\n", "mode",
                               "median/s", "min/s", "max/s", "/no_hook", "+us/conn", "conn p50",
                               "conn p99", "cpu us/conn*", "errors");
  for (Mode mode : {Mode::kNoHook, Mode::kDirectInMesh, Mode::kVip}) {
    const ModeSummary& m = sum[ModeIndex(mode)];
    std::cout << absl::StrFormat("%-15s %10.0f %10.0f %10.0f %9.3f %+10.2f %9s %9s %13.2f %7d\n",
                                 ModeName(mode), m.median, m.min, m.max,
                                 ratio(m.median, base_sum.median), added_us(m.median),
                                 Us(m.connect_ns.Quantile(0.5)), Us(m.connect_ns.Quantile(0.99)),
                                 m.cpu_us_per_conn, m.errors);
  }
  std::cout << "  * CPU time of the whole process (clients + backends) per connection, median of "
               "rounds\n";
  std::cout << absl::StrFormat(
      "\nratio of medians:  vip/no_hook %.3f   direct_in_mesh/no_hook %.3f   "
      "vip/direct_in_mesh %.3f\n"
      "same-round ratios: vip/no_hook median %.3f [%.3f..%.3f]   direct_in_mesh/no_hook median "
      "%.3f [%.3f..%.3f]\n"
      "CPU-cost ratios:   vip/no_hook %.3f   direct_in_mesh/no_hook %.3f   (no_hook CPU/conn "
      "divided by the mode's)\n",
      r_vip, r_direct, r_vip_direct, p_vip.median, p_vip.min, p_vip.max, p_direct.median,
      p_direct.min, p_direct.max, c_vip, c_direct);
  std::cout << absl::StrFormat(
      "translated by the hook: vip %d of %d, direct_in_mesh %d, no_hook %d\n", vip_sum.xlated,
      vip_sum.connects + vip_sum.errors, direct_sum.xlated, base_sum.xlated);
  for (Mode mode : kRoundOrder) {
    const ModeSummary& m = sum[ModeIndex(mode)];
    if (m.errors) {
      std::cout << absl::StrFormat("%s: %d failed connections (last: %s)\n", ModeName(mode),
                                   m.errors, strerror(m.last_error));
    }
  }
  if (interrupted) {
    std::cout << "INTERRUPTED: partial results above; no RESULT line" << std::endl;
  } else {
    std::cout << absl::StrFormat(
                     "RESULT connect_per_sec vip=%.0f direct_in_mesh=%.0f no_hook=%.0f "
                     "ratio_vip_to_no_hook=%.3f ratio_direct_in_mesh_to_no_hook=%.3f "
                     "ratio_vip_to_direct_in_mesh=%.3f\n"
                     "RESULT connect_latency_us vip_p50=%.1f vip_p99=%.1f direct_in_mesh_p50=%.1f "
                     "direct_in_mesh_p99=%.1f no_hook_p50=%.1f no_hook_p99=%.1f\n"
                     "RESULT connect_cpu_us_per_conn vip=%.2f direct_in_mesh=%.2f no_hook=%.2f "
                     "cpu_ratio_vip_to_no_hook=%.3f cpu_ratio_direct_in_mesh_to_no_hook=%.3f",
                     vip_sum.median, direct_sum.median, base_sum.median, r_vip, r_direct,
                     r_vip_direct, vip_sum.connect_ns.Quantile(0.5) / 1e3,
                     vip_sum.connect_ns.Quantile(0.99) / 1e3,
                     direct_sum.connect_ns.Quantile(0.5) / 1e3,
                     direct_sum.connect_ns.Quantile(0.99) / 1e3,
                     base_sum.connect_ns.Quantile(0.5) / 1e3,
                     base_sum.connect_ns.Quantile(0.99) / 1e3, vip_sum.cpu_us_per_conn,
                     direct_sum.cpu_us_per_conn, base_sum.cpu_us_per_conn, c_vip, c_direct)
              << std::endl;
  }

  if (!opt.json.empty()) {
    nlohmann::json j;
    j["options"] = {{"backends", opt.backends},
                    {"seconds", opt.seconds},
                    {"threads", opt.threads},
                    {"server_threads", server_opts.threads},
                    {"rounds", opt.rounds},
                    {"warmup", opt.warmup},
                    {"payload", opt.payload},
                    {"vip", FormatAddr(vip[0])},
                    {"cpus", *cpus}};
    j["kernel"] = uts.release;
    j["machine_cpus"] = std::thread::hardware_concurrency();
    j["load_average_at_end"] = LoadAverage();
    j["interrupted"] = interrupted;
    j["rounds"] = nlohmann::json::array();
    for (const RoundResult& r : results) {
      j["rounds"].push_back({{"round", r.round},
                             {"mode", ModeName(r.mode)},
                             {"complete", r.complete},
                             {"connects", r.connects},
                             {"errors", r.errors},
                             {"per_sec", r.per_sec},
                             {"cpu_us_per_conn", r.cpu_us_per_conn},
                             {"xlated", r.xlated},
                             {"connect_p50_us", r.connect_ns.Quantile(0.5) / 1e3},
                             {"connect_p99_us", r.connect_ns.Quantile(0.99) / 1e3}});
    }
    for (Mode mode : kRoundOrder) {
      const ModeSummary& m = sum[ModeIndex(mode)];
      j["modes"][ModeName(mode)] = {{"median_per_sec", m.median},
                                    {"min_per_sec", m.min},
                                    {"max_per_sec", m.max},
                                    {"added_us_per_conn", added_us(m.median)},
                                    {"cpu_us_per_conn", m.cpu_us_per_conn},
                                    {"connect_p50_us", m.connect_ns.Quantile(0.5) / 1e3},
                                    {"connect_p99_us", m.connect_ns.Quantile(0.99) / 1e3},
                                    {"connects", m.connects},
                                    {"errors", m.errors},
                                    {"xlated", m.xlated}};
    }
    j["ratios"] = {{"vip_to_no_hook", r_vip},
                   {"direct_in_mesh_to_no_hook", r_direct},
                   {"vip_to_direct_in_mesh", r_vip_direct},
                   {"paired_vip_to_no_hook_median", p_vip.median},
                   {"paired_direct_in_mesh_to_no_hook_median", p_direct.median},
                   {"cpu_vip_to_no_hook", c_vip},
                   {"cpu_direct_in_mesh_to_no_hook", c_direct}};
    std::ofstream out(opt.json);
    out << j.dump(2) << "\n";
    if (!out) {
      std::cerr << "connect-bench: cannot write " << opt.json << std::endl;
      return 1;
    }
  }
  return interrupted ? 130 : 0;
}

}  // namespace
}  // namespace sockmesh::bench

int main(int argc, char** argv) {
  sockmesh::bench::Options opt;
  CLI::App app{
      "sockmesh-connect-bench: new TCP connections per second through a service VIP (connect4 "
      "hook rewrites it), directly to a backend with the hook attached (a map miss), and directly "
      "with no hook at all, in alternating rounds of the same run. Needs root; creates a "
      "throwaway cgroup and removes it again; traffic stays on 127.0.0.0/8."};
  app.add_option("--backends", opt.backends, "Backends behind the VIP, on 127.0.0.2 upwards")
      ->check(CLI::Range(1, 200))
      ->capture_default_str();
  app.add_option("--seconds", opt.seconds, "Duration of each mode in each round")
      ->check(CLI::Range(0.1, 60.0))
      ->capture_default_str();
  app.add_option("--threads", opt.threads, "Client threads")
      ->check(CLI::Range(1, 8))
      ->capture_default_str();
  app.add_option("--server-threads", opt.server_threads,
                 "Backend accept threads (0: as many as --threads)")
      ->check(CLI::Range(0, 8))
      ->capture_default_str();
  app.add_option("--rounds", opt.rounds, "Rounds; each runs direct_in_mesh, vip, no_hook in turn")
      ->check(CLI::Range(1, 50))
      ->capture_default_str();
  app.add_option("--warmup", opt.warmup, "Unreported warm-up seconds per mode before round 1")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  app.add_flag("--payload", opt.payload, "Backends write one byte, clients read it before closing");
  app.add_option("--cpus", opt.cpus,
                 "Pin the benchmark (clients and backends) to these CPUs, e.g. 1 or 0,1; 'auto': "
                 "one CPU when --threads is 1, else not pinned; 'none': not pinned")
      ->capture_default_str();
  app.add_option("--vip", opt.vip, "Service VIP (port 80), in 127.0.0.0/8")->capture_default_str();
  app.add_option("--json", opt.json, "Also write the results as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  return sockmesh::bench::Run(opt);
}
