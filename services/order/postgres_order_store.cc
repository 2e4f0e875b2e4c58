// SPDX-License-Identifier: Apache-2.0
#include "services/order/postgres_order_store.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/platform/postgres_schema.h"

namespace sockmesh::shop {
namespace {

constexpr char kIdPrefix[] = "o-";

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresOrderStore>> PostgresOrderStore::Connect(
    const std::string& conninfo) {
  absl::StatusOr<std::unique_ptr<platform::PostgresConnection>> db =
      platform::PostgresConnection::Connect(conninfo);
  if (!db.ok()) return db.status();
  absl::Status schema = platform::CreateSchema(**db,
                                               "CREATE TABLE IF NOT EXISTS orders ("
                                               "id bigserial PRIMARY KEY, "
                                               "user_id text NOT NULL, "
                                               "product_id text NOT NULL, "
                                               "quantity bigint NOT NULL, "
                                               "total_cents bigint NOT NULL, "
                                               "payment_id text NOT NULL, "
                                               "created_at timestamptz NOT NULL DEFAULT now())");
  if (!schema.ok()) return schema;
  return std::unique_ptr<PostgresOrderStore>(new PostgresOrderStore(std::move(*db)));
}

absl::StatusOr<v1::Order> PostgresOrderStore::Record(const v1::Order& order) {
  absl::StatusOr<platform::PostgresRows> rows = db_->Exec(
      "INSERT INTO orders (user_id, product_id, quantity, total_cents, payment_id) "
      "VALUES ($1, $2, $3, $4, $5) RETURNING id",
      {order.user_id(), order.product_id(), absl::StrCat(order.quantity()),
       absl::StrCat(order.total_cents()), order.payment_id()});
  if (!rows.ok()) return rows.status();
  v1::Order stored = order;
  stored.set_order_id(absl::StrCat(kIdPrefix, (*rows)[0][0]));
  return stored;
}

absl::StatusOr<v1::Order> PostgresOrderStore::Get(const std::string& order_id) {
  int64_t id = 0;
  if (!absl::StartsWith(order_id, kIdPrefix) ||
      !absl::SimpleAtoi(order_id.substr(sizeof(kIdPrefix) - 1), &id)) {
    return absl::NotFoundError(absl::StrCat("order ", order_id, " not found"));
  }
  absl::StatusOr<platform::PostgresRows> rows = db_->Exec(
      "SELECT user_id, product_id, quantity, total_cents, payment_id FROM orders WHERE id = $1",
      {absl::StrCat(id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::NotFoundError(absl::StrCat("order ", order_id, " not found"));
  const std::vector<std::string>& row = (*rows)[0];
  v1::Order order;
  order.set_order_id(order_id);
  order.set_user_id(row[0]);
  order.set_product_id(row[1]);
  int64_t quantity = 0, total = 0;
  (void)absl::SimpleAtoi(row[2], &quantity);
  (void)absl::SimpleAtoi(row[3], &total);
  order.set_quantity(quantity);
  order.set_total_cents(total);
  order.set_payment_id(row[4]);
  return order;
}

}  // namespace sockmesh::shop
