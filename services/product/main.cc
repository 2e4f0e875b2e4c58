// SPDX-License-Identifier: Apache-2.0
// sockmesh-product: the product catalog service.
#include "services/platform/service_runner.h"
#include "services/product/product_service.h"
#include "userspace/log/log.h"

int main(int argc, char** argv) {
  using namespace sockmesh;
  CLI::App app{
      "sockmesh-product: the platform's catalog (gRPC sockmesh.shop.v1.ProductService). "
      "Products p-1 ... p-N, generated alike in every replica."};
  platform::ServiceOptions options{
      .name = "product", .listen = "127.0.0.1:7002", .health_listen = "127.0.0.1:8002"};
  platform::AddServiceFlags(app, options);
  int products = 100;
  app.add_option("--products", products, "Number of products in the catalog")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  CLI11_PARSE(app, argc, argv);
  if (!platform::ApplyLogLevel(options)) return 2;
  const shop::ProductCatalog catalog = shop::ProductCatalog::Seeded(products);
  log::Info("product", products, " products");
  shop::ProductServiceImpl service(catalog);
  return platform::RunService(options, {&service});
}
