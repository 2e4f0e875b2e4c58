// SPDX-License-Identifier: Apache-2.0
// sockmesh-order: places orders across the user, product, inventory and payment services.
#include <memory>

#include "services/order/order_service.h"
#include "services/order/postgres_order_store.h"
#include "services/platform/service_address.h"
#include "services/platform/service_runner.h"
#include "services/platform/store_flags.h"
#include "userspace/log/log.h"

int main(int argc, char** argv) {
  using namespace sockmesh;
  CLI::App app{
      "sockmesh-order: the platform's order service (gRPC sockmesh.shop.v1.OrderService). "
      "Finds the other services by service address: --user-addr or USER_SERVICE_HOST/_PORT, "
      "and likewise product, inventory and payment."};
  platform::ServiceOptions options{
      .name = "order", .listen = "127.0.0.1:7005", .health_listen = "127.0.0.1:8005"};
  platform::AddServiceFlags(app, options);
  platform::StoreFlags store_flags;
  platform::AddStoreFlags(app, store_flags, {"memory", "postgres"});
  std::string user_addr, product_addr, inventory_addr, payment_addr;
  app.add_option("--user-addr", user_addr, "User service address (default: USER_SERVICE_HOST)")
      ->type_name("HOST:PORT");
  app.add_option("--product-addr", product_addr,
                 "Product service address (default: PRODUCT_SERVICE_HOST)")
      ->type_name("HOST:PORT");
  app.add_option("--inventory-addr", inventory_addr,
                 "Inventory service address (default: INVENTORY_SERVICE_HOST)")
      ->type_name("HOST:PORT");
  app.add_option("--payment-addr", payment_addr,
                 "Payment service address (default: PAYMENT_SERVICE_HOST)")
      ->type_name("HOST:PORT");
  int connections = 4;
  app.add_option("--connections-per-service", connections,
                 "Connections to each service; the mesh picks a replica per connection")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  int timeout_ms = 2000;
  app.add_option("--call-timeout-ms", timeout_ms, "Deadline of each call to another service")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!platform::ApplyLogLevel(options)) return 2;

  struct Dependency {
    const char* service;
    const char* flag;
    const std::string& value;
    int default_port;
  };
  std::vector<platform::ChannelPool> pools;
  for (const Dependency& dep : {Dependency{"user", "--user-addr", user_addr, 7001},
                                Dependency{"product", "--product-addr", product_addr, 7002},
                                Dependency{"inventory", "--inventory-addr", inventory_addr, 7003},
                                Dependency{"payment", "--payment-addr", payment_addr, 7004}}) {
    absl::StatusOr<std::string> address =
        platform::ResolveServiceAddress(dep.service, dep.flag, dep.value, dep.default_port);
    if (!address.ok()) {
      log::Error("order", address.status().message());
      return 2;
    }
    log::Info("order", dep.service, " service at ", *address, " (", connections, " connections)");
    pools.push_back(platform::ChannelPool::Dial(*address, connections));
  }

  std::unique_ptr<shop::OrderStore> store;
  if (store_flags.store == "postgres") {
    absl::StatusOr<std::string> conninfo = platform::PostgresConnInfo(store_flags);
    absl::StatusOr<std::unique_ptr<shop::PostgresOrderStore>> postgres =
        conninfo.ok() ? shop::PostgresOrderStore::Connect(*conninfo) : conninfo.status();
    if (!postgres.ok()) {
      log::Error("order", "cannot use PostgreSQL: ", postgres.status().ToString());
      return 1;
    }
    store = std::move(*postgres);
  } else {
    store = std::make_unique<shop::MemoryOrderStore>();
  }
  log::Info("order", "store ", store_flags.store);
  shop::OrderServiceImpl service(shop::OrderDependencies{std::move(pools[0]), std::move(pools[1]),
                                                         std::move(pools[2]), std::move(pools[3])},
                                 *store, std::chrono::milliseconds(timeout_ms));
  return platform::RunService(options, {&service});
}
