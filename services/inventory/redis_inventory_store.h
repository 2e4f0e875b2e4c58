// SPDX-License-Identifier: Apache-2.0
// Stock counters in Redis. Reserve and Release are Lua scripts, so each check-and-decrement (or
// give-back) runs atomically in the server: two replicas reserving the last unit at once cannot
// both get it.
//
// Keys: `sockmesh:stock:<product>` (units available), `sockmesh:reservation:<n>` (a hash of
// product and quantity), `sockmesh:reservation-seq` (the last reservation number).
#ifndef SOCKMESH_SERVICES_INVENTORY_REDIS_INVENTORY_STORE_H_
#define SOCKMESH_SERVICES_INVENTORY_REDIS_INVENTORY_STORE_H_

#include <memory>
#include <string>

#include "services/inventory/inventory_store.h"
#include "services/platform/redis_connection.h"

namespace sockmesh::shop {

class RedisInventoryStore : public InventoryStore {
 public:
  static absl::StatusOr<std::unique_ptr<RedisInventoryStore>> Connect(const std::string& host,
                                                                      int port);

  absl::StatusOr<v1::Reservation> Reserve(const std::string& product_id, int64_t quantity) override;
  absl::Status Release(const std::string& reservation_id) override;
  absl::Status Commit(const std::string& reservation_id) override;
  absl::StatusOr<int64_t> Available(const std::string& product_id) override;
  absl::Status SetAvailable(const std::string& product_id, int64_t available) override;
  absl::Status EnsureCounter(const std::string& product_id, int64_t available) override;

 private:
  explicit RedisInventoryStore(std::unique_ptr<platform::RedisConnection> redis)
      : redis_(std::move(redis)) {}
  std::unique_ptr<platform::RedisConnection> redis_;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_INVENTORY_REDIS_INVENTORY_STORE_H_
