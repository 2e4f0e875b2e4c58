// SPDX-License-Identifier: Apache-2.0
#include "services/platform/postgres_schema.h"

namespace sockmesh::platform {
namespace {

// Any fixed key: all the platform's services serialize their schema creation on it.
constexpr char kSchemaLockKey[] = "7469021";

}  // namespace

absl::Status CreateSchema(PostgresConnection& db, const std::string& ddl) {
  // One query string with several commands runs as one implicit transaction, so the xact-scoped
  // lock is held exactly until the DDL commits.
  absl::StatusOr<PostgresRows> done =
      db.Exec(std::string("SELECT pg_advisory_xact_lock(") + kSchemaLockKey + "); " + ddl);
  return done.status();
}

}  // namespace sockmesh::platform
