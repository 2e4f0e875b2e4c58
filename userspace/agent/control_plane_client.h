// SPDX-License-Identifier: Apache-2.0
// The agent's side of the sockmesh.v1.ControlPlane stream: says Hello, applies every Snapshot and
// Delta through a callback (MapSync in the agent), answers each version with Ack or Nack, and
// reconnects with jittered exponential backoff when the stream breaks. While disconnected nothing
// is applied: the datapath keeps the last good state in its pinned maps.
#ifndef SOCKMESH_USERSPACE_AGENT_CONTROL_PLANE_CLIENT_H_
#define SOCKMESH_USERSPACE_AGENT_CONTROL_PLANE_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "control_plane/model/service_model.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::agent {

struct ControlPlaneClientOptions {
  std::string address;  // ADDR:PORT, or any gRPC target ("unix:/path"); named in logs
  // When set, makes the channel instead of dialing `address` (the embedded control plane's
  // in-process channel in standalone mode).
  std::function<std::shared_ptr<grpc::Channel>(const grpc::ChannelArguments&)> make_channel;
  std::string node_name;
  std::string agent_version;
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);
  // Optional observers (metrics): the stream came up (first version received) or ended, and the
  // answer given to each version.
  std::function<void(bool connected)> on_connection;
  std::function<void(uint64_t version, bool acked)> on_answer;
};

// Makes `state` and `policy` (the compiled authorization policy of the same version) the datapath's
// state, or fails and leaves the previous one in force.
using ApplyFunction =
    std::function<absl::Status(const model::DesiredState& state, const v1::CompiledPolicy& policy)>;

// The delay before reconnect attempt `attempt` (0-based): min * 2^attempt capped at max, then a
// uniformly random value in [delay/2, delay], so agents restarted together do not reconnect in
// lockstep.
absl::Duration BackoffDelay(int attempt, absl::Duration min, absl::Duration max, std::mt19937& rng);

class ControlPlaneClient {
 public:
  ControlPlaneClient(ControlPlaneClientOptions options, ApplyFunction apply);

  // Streams until `stop` becomes true.
  void Run(const std::atomic<bool>& stop);

  uint64_t good_version() const { return good_version_; }

 private:
  // One stream, from Hello to its end. Returns whether it received at least one version (which
  // resets the backoff).
  bool RunStream(const std::atomic<bool>& stop);
  // Make `good_` the version the message carries if apply_ accepts it; otherwise leave it as it
  // was. A delta changes `good_` in place (and is reverted on failure) instead of copying it.
  absl::Status ApplySnapshot(const v1::Snapshot& snapshot);
  absl::Status ApplyDelta(const v1::Delta& delta);

  ControlPlaneClientOptions options_;
  ApplyFunction apply_;
  std::mt19937 rng_;
  // The last state applied and ACKed in the current stream; deltas apply on top of it.
  model::DesiredState good_;
  // Kept as the wire message: the agent applies it as it is (policy_sync.h), and a Delta replaces
  // it whole or not at all.
  v1::CompiledPolicy good_policy_;
  uint64_t good_version_ = 0;
};

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_CONTROL_PLANE_CLIENT_H_
