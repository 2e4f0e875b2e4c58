// SPDX-License-Identifier: Apache-2.0
// Users in PostgreSQL, table `users`, created at start if missing.
#ifndef SOCKMESH_SERVICES_USER_POSTGRES_USER_STORE_H_
#define SOCKMESH_SERVICES_USER_POSTGRES_USER_STORE_H_

#include <memory>
#include <string>

#include "services/platform/postgres_connection.h"
#include "services/user/user_store.h"

namespace sockmesh::shop {

class PostgresUserStore : public UserStore {
 public:
  static absl::StatusOr<std::unique_ptr<PostgresUserStore>> Connect(const std::string& conninfo);

  absl::StatusOr<v1::User> Get(const std::string& user_id) override;
  absl::Status Create(const v1::User& user) override;

 private:
  explicit PostgresUserStore(std::unique_ptr<platform::PostgresConnection> db)
      : db_(std::move(db)) {}
  std::unique_ptr<platform::PostgresConnection> db_;
};

}  // namespace sockmesh::shop

#endif  // SOCKMESH_SERVICES_USER_POSTGRES_USER_STORE_H_
