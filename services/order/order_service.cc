// SPDX-License-Identifier: Apache-2.0
#include "services/order/order_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "services/platform/grpc_status.h"
#include "sockmesh/shop/v1/inventory.grpc.pb.h"
#include "sockmesh/shop/v1/payment.grpc.pb.h"
#include "sockmesh/shop/v1/product.grpc.pb.h"
#include "sockmesh/shop/v1/user.grpc.pb.h"
#include "userspace/log/log.h"

namespace sockmesh::shop {
namespace {

constexpr char kLog[] = "order";

// A downstream call's context: the caller's deadline if sooner, else our own timeout.
void SetDeadline(grpc::ClientContext& call, const grpc::ServerContext* parent,
                 std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::system_clock::now() + timeout;
  if (parent != nullptr && parent->deadline() < deadline) deadline = parent->deadline();
  call.set_deadline(deadline);
}

// The failing step's status, its code kept so the client can tell the failures apart, and its
// message prefixed with the step.
grpc::Status StepFailed(std::string_view step, const grpc::Status& status) {
  return grpc::Status(status.error_code(),
                      absl::StrCat(std::string(step), ": ", status.error_message()));
}

}  // namespace

grpc::Status OrderServiceImpl::PlaceOrder(grpc::ServerContext* context,
                                          const v1::PlaceOrderRequest* request,
                                          v1::Order* response) {
  if (request->quantity() < 1) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("quantity: invalid value ", request->quantity(), ": must be at least 1"));
  }
  {
    grpc::ClientContext call;
    SetDeadline(call, context, call_timeout_);
    v1::GetUserRequest get;
    get.set_user_id(request->user_id());
    v1::User user;
    grpc::Status status = v1::UserService::NewStub(deps_.user.Next())->GetUser(&call, get, &user);
    if (!status.ok()) return StepFailed("check user", status);
  }
  v1::Product product;
  {
    grpc::ClientContext call;
    SetDeadline(call, context, call_timeout_);
    v1::GetProductRequest get;
    get.set_product_id(request->product_id());
    grpc::Status status =
        v1::ProductService::NewStub(deps_.product.Next())->GetProduct(&call, get, &product);
    if (!status.ok()) return StepFailed("read product", status);
  }
  auto inventory = v1::InventoryService::NewStub(deps_.inventory.Next());
  v1::Reservation reservation;
  {
    grpc::ClientContext call;
    SetDeadline(call, context, call_timeout_);
    v1::ReserveRequest reserve;
    reserve.set_product_id(request->product_id());
    reserve.set_quantity(request->quantity());
    grpc::Status status = inventory->Reserve(&call, reserve, &reservation);
    if (!status.ok()) return StepFailed("reserve stock", status);
  }
  // From here on a failure must undo the reservation. The undo calls get their own deadline, not
  // the caller's: a client that gave up must not leave units reserved.
  v1::ReservationRef reservation_ref;
  reservation_ref.set_reservation_id(reservation.reservation_id());
  auto release = [&] {
    grpc::ClientContext call;
    SetDeadline(call, nullptr, call_timeout_);
    v1::ReleaseResponse released;
    grpc::Status status = inventory->Release(&call, reservation_ref, &released);
    if (!status.ok()) {
      log::Error(kLog, "reservation ", reservation.reservation_id(),
                 " not released: ", status.error_message());
    }
  };
  auto payment = v1::PaymentService::NewStub(deps_.payment.Next());
  v1::Payment paid;
  {
    grpc::ClientContext call;
    SetDeadline(call, context, call_timeout_);
    v1::ChargeRequest charge;
    charge.set_user_id(request->user_id());
    charge.set_amount_cents(product.price_cents() * request->quantity());
    charge.set_card_token(request->card_token());
    grpc::Status status = payment->Charge(&call, charge, &paid);
    if (!status.ok()) {
      release();
      return StepFailed("charge payment", status);
    }
  }
  v1::Order order;
  order.set_user_id(request->user_id());
  order.set_product_id(request->product_id());
  order.set_quantity(request->quantity());
  order.set_total_cents(paid.amount_cents());
  order.set_payment_id(paid.payment_id());
  absl::StatusOr<v1::Order> recorded = store_.Record(order);
  if (!recorded.ok()) {
    grpc::ClientContext call;
    SetDeadline(call, nullptr, call_timeout_);
    v1::RefundRequest refund;
    refund.set_payment_id(paid.payment_id());
    v1::RefundResponse refunded;
    grpc::Status status = payment->Refund(&call, refund, &refunded);
    if (!status.ok()) {
      log::Error(kLog, "payment ", paid.payment_id(), " not refunded: ", status.error_message());
    }
    release();
    return StepFailed("record order", platform::ToGrpcStatus(recorded.status()));
  }
  {
    // The order stands once recorded; a failed commit only leaves the reservation's record
    // behind (its units stay sold), so it is logged, not returned.
    grpc::ClientContext call;
    SetDeadline(call, nullptr, call_timeout_);
    v1::CommitResponse committed;
    grpc::Status status = inventory->Commit(&call, reservation_ref, &committed);
    if (!status.ok()) {
      log::Warn(kLog, "order ", recorded->order_id(), ": reservation ",
                reservation.reservation_id(), " not committed: ", status.error_message());
    }
  }
  *response = *std::move(recorded);
  return grpc::Status::OK;
}

grpc::Status OrderServiceImpl::GetOrder(grpc::ServerContext*, const v1::GetOrderRequest* request,
                                        v1::Order* response) {
  absl::StatusOr<v1::Order> order = store_.Get(request->order_id());
  if (!order.ok()) return platform::ToGrpcStatus(order.status());
  *response = *std::move(order);
  return grpc::Status::OK;
}

}  // namespace sockmesh::shop
