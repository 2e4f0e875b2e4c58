// SPDX-License-Identifier: Apache-2.0
// sockmesh-user: the user service.
#include <memory>

#include "services/platform/service_runner.h"
#include "services/platform/store_flags.h"
#include "services/user/postgres_user_store.h"
#include "services/user/user_service.h"
#include "userspace/log/log.h"

int main(int argc, char** argv) {
  using namespace sockmesh;
  CLI::App app{"sockmesh-user: the platform's user service (gRPC sockmesh.shop.v1.UserService)."};
  platform::ServiceOptions options{
      .name = "user", .listen = "127.0.0.1:7001", .health_listen = "127.0.0.1:8001"};
  platform::AddServiceFlags(app, options);
  platform::StoreFlags store_flags;
  platform::AddStoreFlags(app, store_flags, {"memory", "postgres"});
  int seed_users = 1000;
  app.add_option("--seed-users", seed_users, "Create users u-1 ... u-N at start when missing")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!platform::ApplyLogLevel(options)) return 2;

  std::unique_ptr<shop::UserStore> store;
  if (store_flags.store == "postgres") {
    absl::StatusOr<std::string> conninfo = platform::PostgresConnInfo(store_flags);
    absl::StatusOr<std::unique_ptr<shop::PostgresUserStore>> postgres =
        conninfo.ok() ? shop::PostgresUserStore::Connect(*conninfo) : conninfo.status();
    if (!postgres.ok()) {
      log::Error("user", "cannot use PostgreSQL: ", postgres.status().ToString());
      return 1;
    }
    store = std::move(*postgres);
  } else {
    store = std::make_unique<shop::MemoryUserStore>();
  }
  if (absl::Status seeded = shop::SeedUsers(*store, seed_users); !seeded.ok()) {
    log::Error("user", "cannot seed users: ", seeded.ToString());
    return 1;
  }
  log::Info("user", "store ", store_flags.store, ", ", seed_users, " seed users");
  shop::UserServiceImpl service(*store);
  return platform::RunService(options, {&service});
}
