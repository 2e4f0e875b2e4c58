// SPDX-License-Identifier: Apache-2.0
// Orders in PostgreSQL, table `orders` (ids from a bigserial, shown as "o-N"), created at start if
// missing.
#ifndef SOCKMESH_SERVICES_ORDER_POSTGRES_ORDER_STORE_H_
#define SOCKMESH_SERVICES_ORDER_POSTGRES_ORDER_STORE_H_

#include <memory>
#include <string>

#include "services/order/order_store.h"
#include "services/platform/postgres_connection.h"

namespace sockmesh::shop {

class PostgresOrderStore : public OrderStore {
 public:
  static absl::StatusOr<std::unique_ptr<PostgresOrderStore>> Connect(const std::string& conninfo);

  absl::StatusOr<v1::Order> Record(const v1::Order& order) override;
  absl::StatusOr<v1::Order> Get(const std::string& order_id) override;

 private:
  explicit PostgresOrderStore(std::unique_ptr<platform::PostgresConnection> db)
      : db_(std::move(db)) {}
  std::unique_ptr<platform::PostgresConnection> db_;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_ORDER_POSTGRES_ORDER_STORE_H_
