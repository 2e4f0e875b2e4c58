// SPDX-License-Identifier: Apache-2.0
// sockmesh-payment: the payment service (a processor stand-in that declines on demand).
#include "services/payment/payment_service.h"
#include "services/platform/service_runner.h"
#include "userspace/log/log.h"

int main(int argc, char** argv) {
  using namespace sockmesh;
  CLI::App app{
      "sockmesh-payment: the platform's payment service (gRPC sockmesh.shop.v1.PaymentService). "
      "Declines card token \"tok_decline\" and amounts over --decline-above-cents."};
  platform::ServiceOptions options{
      .name = "payment", .listen = "127.0.0.1:7004", .health_listen = "127.0.0.1:8004"};
  platform::AddServiceFlags(app, options);
  int64_t decline_above_cents = 1'000'000;
  app.add_option("--decline-above-cents", decline_above_cents,
                 "Decline charges above this amount, in cents")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!platform::ApplyLogLevel(options)) return 2;
  log::Info("payment", "declining amounts above ", decline_above_cents, " cents and card ",
            shop::kDeclineCardToken);
  shop::PaymentServiceImpl service(decline_above_cents);
  return platform::RunService(options, {&service});
}
