// SPDX-License-Identifier: Apache-2.0
// Several gRPC channels to one service address, used in turn. sockmesh balances connections, not
// requests (the backend is chosen at connect()), and one gRPC channel keeps one HTTP/2
// connection: with a single channel every call would reach the same replica. Each channel here has
// its own connection, so the calls spread over the replicas the mesh picked for them.
#ifndef SOCKMESH_SERVICES_PLATFORM_CHANNEL_POOL_H_
#define SOCKMESH_SERVICES_PLATFORM_CHANNEL_POOL_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/channel.h"

namespace sockmesh::platform {

class ChannelPool {
 public:
  // `size` plaintext channels to `address` ("HOST:PORT"), each on its own connection.
  static ChannelPool Dial(const std::string& address, int size);
  explicit ChannelPool(std::vector<std::shared_ptr<grpc::Channel>> channels)
      : channels_(std::move(channels)) {}
  ChannelPool(ChannelPool&& other) noexcept
      : channels_(std::move(other.channels_)), next_(other.next_.load()) {}

  // The next channel, round robin. Thread-safe.
  const std::shared_ptr<grpc::Channel>& Next() {
    return channels_[next_.fetch_add(1, std::memory_order_relaxed) % channels_.size()];
  }
  size_t size() const { return channels_.size(); }

 private:
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::atomic<size_t> next_{0};
};

}  // namespace sockmesh::platform

#endif  // SOCKMESH_SERVICES_PLATFORM_CHANNEL_POOL_H_
