// SPDX-License-Identifier: Apache-2.0
#include "services/user/postgres_user_store.h"

#include "absl/strings/str_cat.h"
#include "services/platform/postgres_schema.h"

namespace sockmesh::shop {

absl::StatusOr<std::unique_ptr<PostgresUserStore>> PostgresUserStore::Connect(
    const std::string& conninfo) {
  absl::StatusOr<std::unique_ptr<platform::PostgresConnection>> db =
      platform::PostgresConnection::Connect(conninfo);
  if (!db.ok()) return db.status();
  absl::Status schema = platform::CreateSchema(**db,
                                               "CREATE TABLE IF NOT EXISTS users ("
                                               "user_id text PRIMARY KEY, "
                                               "name text NOT NULL, "
                                               "email text NOT NULL)");
  if (!schema.ok()) return schema;
  return std::unique_ptr<PostgresUserStore>(new PostgresUserStore(std::move(*db)));
}

absl::StatusOr<v1::User> PostgresUserStore::Get(const std::string& user_id) {
  absl::StatusOr<platform::PostgresRows> rows =
      db_->Exec("SELECT user_id, name, email FROM users WHERE user_id = $1", {user_id});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::NotFoundError(absl::StrCat("user ", user_id, " not found"));
  v1::User user;
  user.set_user_id((*rows)[0][0]);
  user.set_name((*rows)[0][1]);
  user.set_email((*rows)[0][2]);
  return user;
}

absl::Status PostgresUserStore::Create(const v1::User& user) {
  absl::StatusOr<platform::PostgresRows> rows =
      db_->Exec("INSERT INTO users (user_id, name, email) VALUES ($1, $2, $3)",
                {user.user_id(), user.name(), user.email()});
  if (absl::IsAlreadyExists(rows.status())) {
    return absl::AlreadyExistsError(absl::StrCat("user ", user.user_id(), " already exists"));
  }
  return rows.status();
}

}  // namespace sockmesh::shop
