// SPDX-License-Identifier: Apache-2.0
// gRPC requests for the load generator: OrderService.PlaceOrder and ProductService.GetProduct.
#ifndef SOCKMESH_SERVICES_LOADGEN_GRPC_SENDERS_H_
#define SOCKMESH_SERVICES_LOADGEN_GRPC_SENDERS_H_

#include <chrono>
#include <memory>
#include <string>

#include "services/loadgen/request_sender.h"
#include "services/platform/channel_pool.h"

namespace sockmesh::loadgen {

struct GrpcCallOptions {
  std::string call;    // "place-order" or "get-product"
  int users = 1000;    // Orders cycle through u-1 ... u-N,
  int products = 100;  // and p-1 ... p-N.
  std::chrono::milliseconds timeout{5000};
};

// Workers take the pool's channels in turn and keep theirs, so each worker's calls stay on one
// connection and the pool's connections are spread over the service's replicas by the mesh.
SenderFactory GrpcSenderFactory(std::shared_ptr<platform::ChannelPool> pool,
                                GrpcCallOptions options);

}  // namespace sockmesh::loadgen

#endif  // SOCKMESH_SERVICES_LOADGEN_GRPC_SENDERS_H_
