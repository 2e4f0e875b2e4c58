// SPDX-License-Identifier: Apache-2.0
#include "services/platform/channel_pool.h"

#include <algorithm>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace sockmesh::platform {

ChannelPool ChannelPool::Dial(const std::string& address, int size) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < std::max(size, 1); ++i) {
    grpc::ChannelArguments args;
    // Channels with identical arguments share one subchannel (one connection) through gRPC's
    // global pool; a local pool gives each channel its own connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels.push_back(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  return ChannelPool(std::move(channels));
}

}  // namespace sockmesh::platform
