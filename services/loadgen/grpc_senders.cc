// SPDX-License-Identifier: Apache-2.0
#include "services/loadgen/grpc_senders.h"

#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sockmesh/shop/v1/order.grpc.pb.h"
#include "sockmesh/shop/v1/product.grpc.pb.h"

namespace sockmesh::loadgen {
namespace {

std::string CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  if (index >= 0 && index < static_cast<int>(std::size(kNames))) return kNames[index];
  return absl::StrCat("grpc ", index);
}

// A sender on one channel of the pool.
class ChannelSender : public RequestSender {
 public:
  ChannelSender(std::shared_ptr<grpc::Channel> channel, const GrpcCallOptions& options)
      : channel_(std::move(channel)), options_(options) {}

  void Prepare() override {
    channel_->WaitForConnected(std::chrono::system_clock::now() + options_.timeout);
  }

 protected:
  const std::shared_ptr<grpc::Channel> channel_;
  const GrpcCallOptions options_;
};

class PlaceOrderSender : public ChannelSender {
 public:
  PlaceOrderSender(std::shared_ptr<grpc::Channel> channel, const GrpcCallOptions& options)
      : ChannelSender(std::move(channel), options),
        stub_(shop::v1::OrderService::NewStub(channel_)) {}

  std::string Send(uint64_t sequence) override {
    shop::v1::PlaceOrderRequest request;
    request.set_user_id(absl::StrCat("u-", 1 + sequence % options_.users));
    request.set_product_id(absl::StrCat("p-", 1 + sequence % options_.products));
    request.set_quantity(1);
    request.set_card_token("tok_loadgen");
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + options_.timeout);
    shop::v1::Order order;
    grpc::Status status = stub_->PlaceOrder(&context, request, &order);
    return status.ok() ? "" : CodeName(status.error_code());
  }

 private:
  std::unique_ptr<shop::v1::OrderService::Stub> stub_;
};

class GetProductSender : public ChannelSender {
 public:
  GetProductSender(std::shared_ptr<grpc::Channel> channel, const GrpcCallOptions& options)
      : ChannelSender(std::move(channel), options),
        stub_(shop::v1::ProductService::NewStub(channel_)) {}

  std::string Send(uint64_t sequence) override {
    shop::v1::GetProductRequest request;
    request.set_product_id(absl::StrCat("p-", 1 + sequence % options_.products));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + options_.timeout);
    shop::v1::Product product;
    grpc::Status status = stub_->GetProduct(&context, request, &product);
    return status.ok() ? "" : CodeName(status.error_code());
  }

 private:
  std::unique_ptr<shop::v1::ProductService::Stub> stub_;
};

}  // namespace

SenderFactory GrpcSenderFactory(std::shared_ptr<platform::ChannelPool> pool,
                                GrpcCallOptions options) {
  return [pool, options](int) -> std::unique_ptr<RequestSender> {
    // Round robin over the pool, one channel per worker for the worker's lifetime.
    std::shared_ptr<grpc::Channel> channel = pool->Next();
    if (options.call == "get-product") {
      return std::make_unique<GetProductSender>(std::move(channel), options);
    }
    return std::make_unique<PlaceOrderSender>(std::move(channel), options);
  };
}

}  // namespace sockmesh::loadgen
