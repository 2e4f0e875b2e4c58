// SPDX-License-Identifier: Apache-2.0
// One simulated agent of the control-plane scale benchmark: the agent's side of the protocol and
// the agent's own decoding (Hello; the snapshot decoded with model::FromSnapshot, deltas with
// model::DecodeDelta and applied to this agent's copy of the model; an ACK per version), on gRPC's
// callback API. A thousand of them in one process then cost a few gRPC threads, not two threads
// each as the agent's blocking ControlPlaneClient does (its reader, and a canceller that polls
// every 50 ms): with that client the simulated agents took as much CPU as the control plane on
// the same two cores, and the figure measured both. One real agent per node has one stream, so
// its client's threads do not matter there.
#ifndef SOCKMESH_BENCH_SIMULATED_AGENT_H_
#define SOCKMESH_BENCH_SIMULATED_AGENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "control_plane/model/service_model.h"
#include "sockmesh/v1/control_plane.grpc.pb.h"

namespace sockmesh::bench {

class SimulatedAgent {
 public:
  // Called for every version just before its answer is written.
  using AnswerObserver = std::function<void(uint64_t version, bool acked)>;

  // Its own channel and TCP connection to `address`, like a real agent on its own node.
  SimulatedAgent(const std::string& address, std::string node_name, AnswerObserver on_answer);
  ~SimulatedAgent();

  void Start();
  // Cancels the stream and waits until gRPC is done with it.
  void Stop();

 private:
  class Stream;
  // A stream that ended by itself (the server reset it, say) is replaced by a new one, which
  // waits for the channel to be ready (gRPC's reconnect backoff) and starts with a snapshot, as
  // the agent's client does; the line on stderr says it happened.
  void OnStreamDone(const grpc::Status& status);
  // The answer to `msg`, or false to end the stream (a delta this agent cannot apply).
  bool Apply(const v1::ServerMessage& msg, v1::AgentMessage& answer);

  const std::string node_name_;
  AnswerObserver on_answer_;
  std::unique_ptr<v1::ControlPlane::Stub> stub_;

  // One stream at a time, so these need no lock.
  model::DesiredState good_;
  uint64_t good_version_ = 0;
  bool have_base_ = false;

  absl::Mutex mu_;
  std::unique_ptr<Stream> stream_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Stream> ended_ ABSL_GUARDED_BY(mu_);  // deleted once it has returned
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sockmesh::bench

#endif  // SOCKMESH_BENCH_SIMULATED_AGENT_H_
