// SPDX-License-Identifier: Apache-2.0
// PlaceOrder, the platform's one multi-service transaction: check the user, read the product,
// reserve stock, charge the card, record the order, commit the reservation. Each step that fails
// undoes the ones before it (release the reservation, refund the charge), so a failed order
// leaves no trace, and the caller gets the failing step's status with the step named.
#ifndef SOCKMESH_SERVICES_ORDER_ORDER_SERVICE_H_
#define SOCKMESH_SERVICES_ORDER_ORDER_SERVICE_H_

#include <chrono>

#include "services/order/order_store.h"
#include "services/platform/channel_pool.h"
#include "sockmesh/shop/v1/order.grpc.pb.h"

namespace sockmesh::shop {

// The services PlaceOrder calls, each by its service address.
struct OrderDependencies {
  platform::ChannelPool user;
  platform::ChannelPool product;
  platform::ChannelPool inventory;
  platform::ChannelPool payment;
};

class OrderServiceImpl final : public v1::OrderService::Service {
 public:
  OrderServiceImpl(OrderDependencies dependencies, OrderStore& store,
                   std::chrono::milliseconds call_timeout)
      : deps_(std::move(dependencies)), store_(store), call_timeout_(call_timeout) {}

  grpc::Status PlaceOrder(grpc::ServerContext* context, const v1::PlaceOrderRequest* request,
                          v1::Order* response) override;
  grpc::Status GetOrder(grpc::ServerContext* context, const v1::GetOrderRequest* request,
                        v1::Order* response) override;

 private:
  OrderDependencies deps_;
  OrderStore& store_;
  const std::chrono::milliseconds call_timeout_;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_ORDER_ORDER_SERVICE_H_
