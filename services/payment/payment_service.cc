// SPDX-License-Identifier: Apache-2.0
#include "services/payment/payment_service.h"

#include "absl/strings/str_cat.h"

namespace sockmesh::shop {

grpc::Status PaymentServiceImpl::Charge(grpc::ServerContext*, const v1::ChargeRequest* request,
                                        v1::Payment* response) {
  if (request->amount_cents() <= 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("amount_cents: invalid value ", request->amount_cents(),
                                     ": must be positive"));
  }
  if (request->card_token() == kDeclineCardToken) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("payment declined: card ", kDeclineCardToken, " of user ",
                                     request->user_id(), " is declined"));
  }
  if (request->amount_cents() > decline_above_cents_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("payment declined: amount ", request->amount_cents(),
                                     " cents is over the limit of ", decline_above_cents_));
  }
  absl::MutexLock lock(&mu_);
  response->set_payment_id(absl::StrCat("pay-", next_id_++));
  response->set_amount_cents(request->amount_cents());
  payments_[response->payment_id()] = *response;
  return grpc::Status::OK;
}

grpc::Status PaymentServiceImpl::Refund(grpc::ServerContext*, const v1::RefundRequest* request,
                                        v1::RefundResponse*) {
  absl::MutexLock lock(&mu_);
  if (payments_.erase(request->payment_id()) == 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("payment ", request->payment_id(), " not found"));
  }
  return grpc::Status::OK;
}

size_t PaymentServiceImpl::open_payments() {
  absl::MutexLock lock(&mu_);
  return payments_.size();
}

}  // namespace sockmesh::shop
