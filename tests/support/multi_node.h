// SPDX-License-Identifier: Apache-2.0
// Several sockmesh "nodes" on one machine, for tests of the control plane and its agents over a
// real network. Everything lives in named network namespaces (/run/netns/smn-<pid>-*), so nothing
// is configured in the machine's root namespace:
//
//   smn-<pid>-fab   a bridge (br0) with one veth end per node and one for the control plane
//   smn-<pid>-cp    eth0 = 10.123.0.2/24: sockmesh-control listens there
//   smn-<pid>-<i>   eth0 = 10.123.0.<10+i>/24, lo up: node i's agent, backends and clients
//
// Each node also has its own cgroup (<cgroup2>/sockmesh-mn-<pid>-<i>) and pin instance
// (mn-<pid>-<i>). Agents run inside their node's namespace (setns before exec), so their gRPC
// stream to the control plane crosses the veths and the bridge.
#ifndef SOCKMESH_TESTS_SUPPORT_MULTI_NODE_H_
#define SOCKMESH_TESTS_SUPPORT_MULTI_NODE_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/agent_process.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::testing {

struct MultiNodeOptions {
  int nodes = 3;
  std::string agent_bin;    // sockmesh-agent
  std::string control_bin;  // sockmesh-control
  std::string log_dir;      // process logs go here
  uint16_t control_port = 7400;
};

class MultiNode {
 public:
  struct Node {
    int index = 0;
    std::string name;      // node-<i>, the agent's --node-name
    std::string netns;     // smn-<pid>-<i>
    std::string ip;        // 10.123.0.<10+i>
    std::string cgroup;    // the cgroup its agent balances
    std::string instance;  // the agent's pin instance
    sys::UniqueFd netns_fd;
    std::unique_ptr<AgentProcess> agent;
  };

  // Builds the namespaces, veths, bridge and cgroups (no process yet). First removes what a
  // crashed run of another (dead) process left: smn-* namespaces and sockmesh-mn-* cgroups.
  static absl::StatusOr<std::unique_ptr<MultiNode>> Create(MultiNodeOptions options);
  // Stops agents and the control plane, removes the agents' pins, cgroups and namespaces.
  ~MultiNode();
  MultiNode(const MultiNode&) = delete;
  MultiNode& operator=(const MultiNode&) = delete;

  int size() const { return static_cast<int>(nodes_.size()); }
  Node& node(int i) { return *nodes_[i]; }
  // "10.123.0.2:<port>", where agents find the control plane.
  std::string control_address() const;
  int control_netns_fd() const { return control_netns_fd_.get(); }
  AgentProcess* control() { return control_.get(); }

  // Starts sockmesh-control in the control namespace on `manifests_dir`; waits until it serves.
  // A restart reuses the same address, so agents find it again.
  absl::Status StartControlPlane(const std::string& manifests_dir);
  // SIGKILL, as a crash would.
  absl::Status KillControlPlane();
  // Starts node i's agent following the control plane; `extra` are flag/value pairs that replace
  // a default or are appended. Waits for its first ACK.
  absl::Status StartAgent(int i, const std::vector<std::string>& extra = {});

  // Adds `address` ("ip/len", IPv4 or IPv6) to node i's eth0, as a pod's address on that node:
  // the other nodes reach it over the bridge (ARP/NDP on the shared subnet). IPv6 skips duplicate
  // address detection, so the address is usable at once.
  absl::Status AddAddress(int i, const std::string& address);

  // Runs `fn` on the calling thread inside network namespace `netns_fd`, then moves the thread
  // back. Sockets made meanwhile stay in that namespace (how backends are bound on a node).
  static absl::Status InNetns(int netns_fd, const std::function<void()>& fn);

  // A log path in the log directory, unique per call.
  std::string Log(const std::string& what);

 private:
  explicit MultiNode(MultiNodeOptions options) : options_(std::move(options)) {}
  absl::Status Build();
  absl::Status Ip(const std::vector<std::string>& args);

  MultiNodeOptions options_;
  std::string prefix_;                    // smn-<pid>
  std::vector<std::string> netns_names_;  // created, in creation order
  std::vector<std::unique_ptr<Node>> nodes_;
  sys::UniqueFd control_netns_fd_;
  std::unique_ptr<AgentProcess> control_;
  int log_counter_ = 0;
};

// What a NodeClient saw.
struct ClientTally {
  uint32_t answered = 0;
  uint32_t failed = 0;
  int32_t first_errno = 0;
  // Bit k is set when a backend named "b<k>" answered.
  uint32_t backend_mask = 0;
};

// A forked client process inside a node's cgroup and network namespace (as a pod there would be):
// it connects to ip:port over TCP in a loop and reads the NameServer's reply, either `count` times
// or (count == 0) until Finish(). The child only makes system calls, since the parent has threads.
class NodeClient {
 public:
  static absl::StatusOr<std::unique_ptr<NodeClient>> Start(const MultiNode::Node& node,
                                                           const std::string& ip, uint16_t port,
                                                           uint32_t count = 0);
  // Tells the child to stop (if it loops), collects its tally. Bounded by `timeout`; the child is
  // killed if it does not answer by then.
  absl::StatusOr<ClientTally> Finish(absl::Duration timeout = absl::Seconds(30));
  ~NodeClient();
  NodeClient(const NodeClient&) = delete;
  NodeClient& operator=(const NodeClient&) = delete;

 private:
  NodeClient() = default;
  pid_t pid_ = -1;
  sys::UniqueFd stop_;    // write end; closing it stops the child
  sys::UniqueFd result_;  // read end of the child's tally
};

// Starts a client with `count` dials and waits for its tally.
absl::StatusOr<ClientTally> DialFromNode(const MultiNode::Node& node, const std::string& ip,
                                         uint16_t port, uint32_t count);

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_MULTI_NODE_H_
