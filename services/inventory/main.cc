// SPDX-License-Identifier: Apache-2.0
// sockmesh-inventory: stock counters and reservations.
#include <memory>

#include "absl/strings/str_cat.h"
#include "services/inventory/inventory_service.h"
#include "services/inventory/redis_inventory_store.h"
#include "services/platform/service_runner.h"
#include "services/platform/store_flags.h"
#include "userspace/log/log.h"

int main(int argc, char** argv) {
  using namespace sockmesh;
  CLI::App app{
      "sockmesh-inventory: the platform's stock counters (gRPC "
      "sockmesh.shop.v1.InventoryService)."};
  platform::ServiceOptions options{
      .name = "inventory", .listen = "127.0.0.1:7003", .health_listen = "127.0.0.1:8003"};
  platform::AddServiceFlags(app, options);
  platform::StoreFlags store_flags;
  platform::AddStoreFlags(app, store_flags, {"memory", "redis"});
  int products = 100;
  int64_t initial_stock = 1'000'000'000;
  app.add_option("--products", products, "Create counters for p-1 ... p-N when missing")
      ->capture_default_str();
  app.add_option("--initial-stock", initial_stock, "Units of each product in a new counter")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!platform::ApplyLogLevel(options)) return 2;

  std::unique_ptr<shop::InventoryStore> store;
  if (store_flags.store == "redis") {
    absl::StatusOr<platform::HostPort> address = platform::RedisAddress(store_flags);
    absl::StatusOr<std::unique_ptr<shop::RedisInventoryStore>> redis =
        address.ok() ? shop::RedisInventoryStore::Connect(address->host, address->port)
                     : address.status();
    if (!redis.ok()) {
      log::Error("inventory", "cannot use Redis: ", redis.status().ToString());
      return 1;
    }
    store = std::move(*redis);
  } else {
    store = std::make_unique<shop::MemoryInventoryStore>();
  }
  for (int i = 1; i <= products; ++i) {
    absl::Status status = store->EnsureCounter(absl::StrCat("p-", i), initial_stock);
    if (!status.ok()) {
      log::Error("inventory", "cannot create stock counters: ", status.ToString());
      return 1;
    }
  }
  log::Info("inventory", "store ", store_flags.store, ", counters for ", products, " products");
  shop::InventoryServiceImpl service(*store);
  return platform::RunService(options, {&service});
}
