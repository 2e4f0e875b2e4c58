// SPDX-License-Identifier: Apache-2.0
// A card processor stand-in. It declines deterministically, so tests and demos can make the
// payment step of an order fail on purpose: the card token "tok_decline", or an amount over the
// limit (--decline-above-cents).
#ifndef SOCKMESH_SERVICES_PAYMENT_PAYMENT_SERVICE_H_
#define SOCKMESH_SERVICES_PAYMENT_PAYMENT_SERVICE_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "sockmesh/shop/v1/payment.grpc.pb.h"

namespace sockmesh::shop {

inline constexpr char kDeclineCardToken[] = "tok_decline";

class PaymentServiceImpl final : public v1::PaymentService::Service {
 public:
  // Amounts above `decline_above_cents` are declined.
  explicit PaymentServiceImpl(int64_t decline_above_cents)
      : decline_above_cents_(decline_above_cents) {}

  grpc::Status Charge(grpc::ServerContext* context, const v1::ChargeRequest* request,
                      v1::Payment* response) override;
  grpc::Status Refund(grpc::ServerContext* context, const v1::RefundRequest* request,
                      v1::RefundResponse* response) override;

  // Charges not refunded, for tests.
  size_t open_payments();

 private:
  const int64_t decline_above_cents_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, v1::Payment> payments_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_PAYMENT_PAYMENT_SERVICE_H_
