// SPDX-License-Identifier: Apache-2.0
// Where the order service records orders: in memory, or in PostgreSQL (postgres_order_store.h).
#ifndef SOCKMESH_SERVICES_ORDER_ORDER_STORE_H_
#define SOCKMESH_SERVICES_ORDER_ORDER_STORE_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sockmesh/shop/v1/order.pb.h"

namespace sockmesh::shop {

class OrderStore {
 public:
  virtual ~OrderStore() = default;
  // Stores `order` (its order_id is ignored) and returns it with the id the store assigned.
  virtual absl::StatusOr<v1::Order> Record(const v1::Order& order) = 0;
  // NotFound("order o-9 not found") when absent.
  virtual absl::StatusOr<v1::Order> Get(const std::string& order_id) = 0;
};

class MemoryOrderStore : public OrderStore {
 public:
  absl::StatusOr<v1::Order> Record(const v1::Order& order) override;
  absl::StatusOr<v1::Order> Get(const std::string& order_id) override;
  size_t size();

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, v1::Order> orders_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_ORDER_ORDER_STORE_H_
