// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/stream_transport.h"

namespace sockmesh::cp {

void ApplyStreamTransport(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
}

void ApplyStreamTransport(grpc::ChannelArguments& args) {
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kAgentStreamLookaheadBytes);
  args.SetMaxReceiveMessageSize(-1);
}

}  // namespace sockmesh::cp
