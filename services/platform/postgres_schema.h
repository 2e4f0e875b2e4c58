// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_SERVICES_PLATFORM_POSTGRES_SCHEMA_H_
#define SOCKMESH_SERVICES_PLATFORM_POSTGRES_SCHEMA_H_

#include <string>

#include "absl/status/status.h"
#include "services/platform/postgres_connection.h"

namespace sockmesh::platform {

// Runs a CREATE ... IF NOT EXISTS under a transaction-scoped advisory lock: two replicas starting
// at once would otherwise race on the catalog ("duplicate key value violates unique constraint
// pg_type_typname_nsp_index") although both say IF NOT EXISTS.
absl::Status CreateSchema(PostgresConnection& db, const std::string& ddl);

}  // namespace sockmesh::platform

#endif  // SOCKMESH_SERVICES_PLATFORM_POSTGRES_SCHEMA_H_
