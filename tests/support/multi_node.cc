// SPDX-License-Identifier: Apache-2.0
#include "tests/support/multi_node.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "userspace/agent/cgroup.h"
#include "userspace/agent/datapath.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kIpBin[] = "/usr/sbin/ip";
constexpr char kNetnsPrefix[] = "smn-";
constexpr char kCgroupPrefix[] = "sockmesh-mn-";
constexpr char kInstancePrefix[] = "mn-";
constexpr char kSubnet[] = "10.123.0.";
constexpr char kControlIp[] = "10.123.0.2";
constexpr absl::Duration kStartTimeout = absl::Seconds(20);

bool PidAlive(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// The PID in "<prefix><pid>-...", or 0.
pid_t OwnerPid(const std::string& name, const std::string& prefix) {
  if (!absl::StartsWith(name, prefix)) return 0;
  std::vector<std::string> parts = absl::StrSplit(name.substr(prefix.size()), '-');
  int pid = 0;
  if (parts.empty() || !absl::SimpleAtoi(parts[0], &pid) || pid <= 0) return 0;
  return pid;
}

// Runs `ip` to completion; used by the sweep, where errors are not interesting.
void RunIpQuietly(const std::vector<std::string>& args) {
  (void)RunAgentToCompletion(kIpBin, args, "/dev/null", "", absl::Seconds(10));
}

// Removes what crashed runs of dead processes left: their pin instances (which detaches their
// programs), their empty cgroups and their namespaces (the veths and the bridge go with them).
// What belongs to live processes (a concurrent run) is kept.
void SweepStale() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/sys/fs/bpf/sockmesh", ec)) {
    std::string name = entry.path().filename().string();
    pid_t pid = OwnerPid(name, kInstancePrefix);
    if (pid != 0 && !PidAlive(pid)) (void)agent::CleanupInstance("/sys/fs/bpf", name);
  }
  absl::StatusOr<std::string> mount = agent::FindCgroup2Mount();
  if (mount.ok()) {
    for (const auto& entry : fs::directory_iterator(*mount, ec)) {
      std::string name = entry.path().filename().string();
      pid_t pid = OwnerPid(name, kCgroupPrefix);
      if (pid != 0 && !PidAlive(pid)) ::rmdir(entry.path().c_str());
    }
  }
  for (const auto& entry : fs::directory_iterator("/run/netns", ec)) {
    std::string name = entry.path().filename().string();
    pid_t pid = OwnerPid(name, kNetnsPrefix);
    if (pid != 0 && !PidAlive(pid)) RunIpQuietly({"netns", "del", name});
  }
}

absl::StatusOr<sys::UniqueFd> OpenNetns(const std::string& name) {
  std::string path = absl::StrCat("/run/netns/", name);
  sys::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return sys::ErrnoToStatus(errno, absl::StrCat("open ", path));
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MultiNode>> MultiNode::Create(MultiNodeOptions options) {
  SweepStale();
  std::unique_ptr<MultiNode> mn(new MultiNode(std::move(options)));
  // On failure the destructor removes whatever was built so far.
  absl::Status built = mn->Build();
  if (!built.ok()) return built;
  return mn;
}

std::string MultiNode::Log(const std::string& what) {
  return absl::StrCat(options_.log_dir, "/", what, "-", log_counter_++, ".log");
}

absl::Status MultiNode::Ip(const std::vector<std::string>& args) {
  absl::StatusOr<AgentRun> run = RunAgentToCompletion(kIpBin, args, Log("ip"));
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) {
    return absl::InternalError(absl::StrCat("ip exited with ", run->exit_code, ": ", run->log));
  }
  return absl::OkStatus();
}

absl::Status MultiNode::Build() {
  if (options_.nodes < 1 || options_.nodes > 100) return absl::InvalidArgumentError("nodes");
  prefix_ = absl::StrCat(kNetnsPrefix, ::getpid());
  const std::string fabric = prefix_ + "-fab";
  auto add_netns = [&](const std::string& name) -> absl::Status {
    absl::Status s = Ip({"netns", "add", name});
    if (s.ok()) netns_names_.push_back(name);
    return s;
  };
  // The bridge lives in its own namespace: the root namespace gets no interface at all.
  if (absl::Status s = add_netns(fabric); !s.ok()) return s;
  if (absl::Status s = Ip({"-n", fabric, "link", "add", "br0", "type", "bridge"}); !s.ok())
    return s;
  if (absl::Status s = Ip({"-n", fabric, "link", "set", "br0", "up"}); !s.ok()) return s;

  // One namespace on the fabric: eth0 in `name` with `ip`/24, its peer `port` on the bridge. The
  // veth is created inside the namespaces (ip -n ... peer ... netns ...), never in the root one.
  auto attach = [&](const std::string& name, const std::string& port,
                    const std::string& ip) -> absl::Status {
    if (absl::Status s = add_netns(name); !s.ok()) return s;
    if (absl::Status s = Ip({"-n", name, "link", "add", "eth0", "type", "veth", "peer", "name",
                             port, "netns", fabric});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = Ip({"-n", fabric, "link", "set", port, "master", "br0", "up"}); !s.ok()) {
      return s;
    }
    if (absl::Status s = Ip({"-n", name, "addr", "add", ip + "/24", "dev", "eth0"}); !s.ok()) {
      return s;
    }
    if (absl::Status s = Ip({"-n", name, "link", "set", "eth0", "up"}); !s.ok()) return s;
    return Ip({"-n", name, "link", "set", "lo", "up"});
  };

  const std::string control_ns = prefix_ + "-cp";
  if (absl::Status s = attach(control_ns, "vcp", kControlIp); !s.ok()) return s;
  absl::StatusOr<sys::UniqueFd> cp_fd = OpenNetns(control_ns);
  if (!cp_fd.ok()) return cp_fd.status();
  control_netns_fd_ = *std::move(cp_fd);

  absl::StatusOr<std::string> mount = agent::FindCgroup2Mount();
  if (!mount.ok()) return mount.status();
  for (int i = 0; i < options_.nodes; ++i) {
    auto node = std::make_unique<Node>();
    node->index = i;
    node->name = absl::StrCat("node-", i);
    node->netns = absl::StrCat(prefix_, "-", i);
    node->ip = absl::StrCat(kSubnet, 10 + i);
    node->instance = absl::StrCat(kInstancePrefix, ::getpid(), "-", i);
    // Not sockmesh-test-*: ScopedCgroup::Create() in another test removes empty ones of those,
    // and a node's cgroup is empty whenever no client runs on it.
    std::string cgroup = absl::StrCat(*mount, "/", kCgroupPrefix, ::getpid(), "-", i);
    if (absl::Status s = agent::EnsureCgroup(cgroup); !s.ok()) return s;
    node->cgroup = cgroup;
    nodes_.push_back(std::move(node));
    if (absl::Status s = attach(nodes_.back()->netns, absl::StrCat("v", i), nodes_.back()->ip);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<sys::UniqueFd> fd = OpenNetns(nodes_.back()->netns);
    if (!fd.ok()) return fd.status();
    nodes_.back()->netns_fd = *std::move(fd);
  }
  return absl::OkStatus();
}

MultiNode::~MultiNode() {
  // Reverse order of construction: processes, pins, cgroups, namespaces.
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    Node& n = **it;
    if (n.agent) (void)n.agent->Terminate();
    n.agent.reset();
    if (!options_.agent_bin.empty()) {
      (void)RunAgentToCompletion(options_.agent_bin,
                                 {"--cleanup", "--instance", n.instance, "--bpffs", "/sys/fs/bpf"},
                                 Log("cleanup"));
    }
  }
  if (control_) (void)control_->Terminate();
  control_.reset();
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    Node& n = **it;
    n.netns_fd.Reset();
    // A client that was just reaped may still be leaving the cgroup: retry briefly.
    for (int i = 0; i < 50 && !n.cgroup.empty() && ::rmdir(n.cgroup.c_str()) != 0 && errno == EBUSY;
         ++i) {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  control_netns_fd_.Reset();
  for (auto it = netns_names_.rbegin(); it != netns_names_.rend(); ++it) {
    RunIpQuietly({"netns", "del", *it});
  }
}

std::string MultiNode::control_address() const {
  return absl::StrCat(kControlIp, ":", options_.control_port);
}

absl::Status MultiNode::StartControlPlane(const std::string& manifests_dir) {
  // The control namespace is private, so fixed ports cannot collide with anything.
  absl::StatusOr<std::unique_ptr<AgentProcess>> p =
      AgentProcess::Start(options_.control_bin,
                          {"--manifests", manifests_dir, "--listen", control_address(),
                           "--metrics-addr", "127.0.0.1:9400"},
                          Log("control"), "", control_netns_fd_.get());
  if (!p.ok()) return p.status();
  control_ = *std::move(p);
  return control_->WaitForLog("serving sockmesh.v1.ControlPlane on", kStartTimeout);
}

absl::Status MultiNode::KillControlPlane() {
  if (!control_) return absl::FailedPreconditionError("no control plane");
  absl::StatusOr<int> killed = control_->Kill();
  return killed.ok() ? absl::OkStatus() : killed.status();
}

absl::Status MultiNode::StartAgent(int i, const std::vector<std::string>& extra) {
  Node& n = node(i);
  std::vector<std::string> args = {"--control-plane",   control_address(),
                                   "--node-name",       n.name,
                                   "--cgroup",          n.cgroup,
                                   "--instance",        n.instance,
                                   "--bpffs",           "/sys/fs/bpf",
                                   "--metrics-addr",    "",
                                   "--resync-interval", "3600"};
  for (size_t k = 0; k + 1 < extra.size(); k += 2) {
    auto it = std::find(args.begin(), args.end(), extra[k]);
    if (it != args.end()) {
      *(it + 1) = extra[k + 1];
    } else {
      args.push_back(extra[k]);
      args.push_back(extra[k + 1]);
    }
  }
  // The agent itself stays in the test's cgroup (it balances the node's cgroup, not itself).
  absl::StatusOr<std::unique_ptr<AgentProcess>> p =
      AgentProcess::Start(options_.agent_bin, args, Log(n.name), "", n.netns_fd.get());
  if (!p.ok()) return p.status();
  n.agent = *std::move(p);
  return n.agent->WaitForLog("; ACK", kStartTimeout);
}

absl::Status MultiNode::AddAddress(int i, const std::string& address) {
  std::vector<std::string> args = {"-n", node(i).netns, "addr", "add", address, "dev", "eth0"};
  if (absl::StrContains(address, ':')) args.push_back("nodad");
  return Ip(args);
}

absl::Status MultiNode::InNetns(int netns_fd, const std::function<void()>& fn) {
  sys::UniqueFd original(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original.valid()) return sys::ErrnoToStatus(errno, "open /proc/thread-self/ns/net");
  if (::setns(netns_fd, CLONE_NEWNET) != 0) return sys::ErrnoToStatus(errno, "setns");
  fn();
  if (::setns(original.get(), CLONE_NEWNET) != 0) {
    // The thread would keep running in the node's namespace: nothing after this is trustworthy.
    std::abort();
  }
  return absl::OkStatus();
}

namespace {

// One TCP dial with system calls only (see NodeClient). Returns 0 and the backend index from a
// "b<k>" reply, or an errno.
int DialOnce(const sockaddr_in& addr, int* backend) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  timeval tv{.tv_sec = 3, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    return err;
  }
  char buf[64];
  size_t got = 0;
  while (got < sizeof(buf)) {
    ssize_t n = ::read(fd, buf + got, sizeof(buf) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (got < 2 || buf[0] != 'b') return EBADMSG;
  int k = 0;
  for (size_t i = 1; i < got && buf[i] >= '0' && buf[i] <= '9'; ++i) k = k * 10 + (buf[i] - '0');
  *backend = k;
  return 0;
}

[[noreturn]] void ClientChild(pid_t parent, int procs_fd, int netns_fd, int stop_fd, int result_fd,
                              sockaddr_in addr, uint32_t count) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(126);
  // cgroup first, namespace second: both decide how the hooks see the socket.
  if (::write(procs_fd, "0", 1) != 1) ::_exit(125);
  if (::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(124);
  ClientTally t;
  for (uint32_t i = 0; count == 0 || i < count; ++i) {
    if (count == 0) {
      pollfd p{.fd = stop_fd, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 0) > 0) break;  // the parent wrote to it
    }
    int backend = -1;
    int err = DialOnce(addr, &backend);
    if (err == 0) {
      ++t.answered;
      if (backend >= 0 && backend < 32) t.backend_mask |= 1u << backend;
    } else if (t.failed++ == 0) {
      t.first_errno = err;
    }
    if (count == 0) {
      timespec pause{.tv_sec = 0, .tv_nsec = 5'000'000};
      ::nanosleep(&pause, nullptr);
    }
  }
  (void)!::write(result_fd, &t, sizeof(t));
  ::_exit(0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeClient>> NodeClient::Start(const MultiNode::Node& node,
                                                              const std::string& ip, uint16_t port,
                                                              uint32_t count) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: ", ip));
  }
  std::string procs = node.cgroup + "/cgroup.procs";
  sys::UniqueFd procs_fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
  if (!procs_fd.valid()) return sys::ErrnoToStatus(errno, absl::StrCat("open ", procs));
  int stop[2], result[2];
  if (::pipe2(stop, O_CLOEXEC) != 0) return sys::ErrnoToStatus(errno, "pipe2");
  sys::UniqueFd stop_r(stop[0]), stop_w(stop[1]);
  if (::pipe2(result, O_CLOEXEC) != 0) return sys::ErrnoToStatus(errno, "pipe2");
  sys::UniqueFd result_r(result[0]), result_w(result[1]);

  std::unique_ptr<NodeClient> c(new NodeClient());
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return sys::ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    ::close(stop_w.get());  // the child only reads the stop pipe
    ClientChild(parent, procs_fd.get(), node.netns_fd.get(), stop_r.get(), result_w.get(), addr,
                count);
  }
  c->pid_ = pid;
  c->stop_ = std::move(stop_w);
  c->result_ = std::move(result_r);
  return c;
}

absl::StatusOr<ClientTally> NodeClient::Finish(absl::Duration timeout) {
  if (pid_ < 0) return absl::FailedPreconditionError("already finished");
  // A byte, not EOF: later clients forked from this process inherit the write end too.
  (void)!::write(stop_.get(), "s", 1);
  stop_.Reset();
  ClientTally t;
  pollfd p{.fd = result_.get(), .events = POLLIN, .revents = 0};
  int ready = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  ssize_t n = ready > 0 ? ::read(result_.get(), &t, sizeof(t)) : -1;
  if (n != static_cast<ssize_t>(sizeof(t))) ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (n != static_cast<ssize_t>(sizeof(t))) {
    return absl::DeadlineExceededError(
        absl::StrCat("client gave no tally (exit status ", status, ")"));
  }
  return t;
}

NodeClient::~NodeClient() {
  if (pid_ < 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

absl::StatusOr<ClientTally> DialFromNode(const MultiNode::Node& node, const std::string& ip,
                                         uint16_t port, uint32_t count) {
  absl::StatusOr<std::unique_ptr<NodeClient>> c = NodeClient::Start(node, ip, port, count);
  if (!c.ok()) return c.status();
  return (*c)->Finish(absl::Seconds(3 * 3 * count + 10));
}

}  // namespace sockmesh::testing
