// SPDX-License-Identifier: Apache-2.0
// HTTP/2 settings for the agent streams, applied on both ends (sockmesh-control, the agent's
// embedded control plane, the agent's client and the scale benchmark's simulated agents), so the
// benchmark measures the transport that ships.
//
// gRPC's BDP probe is off: it answers received data with PINGs to size the flow-control window,
// and on a stream of small deltas to a thousand agents those pings and their answers cost a
// quarter of the CPU of a change on both ends (measured with sockmesh-control-plane-scale: 73 ->
// 55 ms per change for the control plane, 100 -> 75 ms for the agents). The window it would have
// grown for a snapshot is set instead: the agent's read lookahead lets a multi-megabyte snapshot
// stream without waiting for window updates.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_STREAM_TRANSPORT_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_STREAM_TRANSPORT_H_

#include <grpcpp/grpcpp.h>

namespace sockmesh::cp {

// The agent's read lookahead: larger than a delta, a fair share of a large cluster's snapshot.
inline constexpr int kAgentStreamLookaheadBytes = 4 << 20;

void ApplyStreamTransport(grpc::ServerBuilder& builder);
// The agent's side. Also raises the receive limit: a snapshot of a large cluster exceeds gRPC's
// default 4 MB, and the control plane is trusted, so the agent takes what it sends.
void ApplyStreamTransport(grpc::ChannelArguments& args);

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_STREAM_TRANSPORT_H_
