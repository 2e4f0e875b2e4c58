// SPDX-License-Identifier: Apache-2.0
// --store=memory|postgres|redis and where the database is. Databases are services too: their
// address comes from a flag or from POSTGRES_SERVICE_HOST / REDIS_SERVICE_HOST, so the mesh
// carries database traffic like any other.
#ifndef SOCKMESH_SERVICES_PLATFORM_STORE_FLAGS_H_
#define SOCKMESH_SERVICES_PLATFORM_STORE_FLAGS_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "services/platform/service_address.h"

namespace sockmesh::platform {

struct StoreFlags {
  std::string store = "memory";
  std::string postgres_addr;
  std::string postgres_db = "postgres";
  std::string postgres_user = "postgres";
  std::string redis_addr;
};

// --store (one of `choices`, the first is the default) and the flags of the databases named in
// `choices`.
void AddStoreFlags(CLI::App& app, StoreFlags& flags, const std::vector<std::string>& choices);

// A libpq connection string for the PostgreSQL service. The password, if any, comes from libpq's
// own PGPASSWORD or ~/.pgpass, never from a flag.
absl::StatusOr<std::string> PostgresConnInfo(const StoreFlags& flags);

absl::StatusOr<HostPort> RedisAddress(const StoreFlags& flags);

}  // namespace sockmesh::platform

#endif  // SOCKMESH_SERVICES_PLATFORM_STORE_FLAGS_H_
