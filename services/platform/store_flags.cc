// SPDX-License-Identifier: Apache-2.0
#include "services/platform/store_flags.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sockmesh::platform {
namespace {

bool Has(const std::vector<std::string>& choices, const std::string& name) {
  return std::find(choices.begin(), choices.end(), name) != choices.end();
}

}  // namespace

void AddStoreFlags(CLI::App& app, StoreFlags& flags, const std::vector<std::string>& choices) {
  flags.store = choices.front();
  app.add_option("--store", flags.store, "Where data lives")
      ->check(CLI::IsMember(choices))
      ->capture_default_str();
  if (Has(choices, "postgres")) {
    app.add_option("--postgres-addr", flags.postgres_addr,
                   "PostgreSQL service address (default: POSTGRES_SERVICE_HOST/_PORT)")
        ->type_name("HOST:PORT");
    app.add_option("--postgres-db", flags.postgres_db, "PostgreSQL database")
        ->capture_default_str();
    app.add_option("--postgres-user", flags.postgres_user,
                   "PostgreSQL user (password: PGPASSWORD or ~/.pgpass)")
        ->capture_default_str();
  }
  if (Has(choices, "redis")) {
    app.add_option("--redis-addr", flags.redis_addr,
                   "Redis service address (default: REDIS_SERVICE_HOST/_PORT)")
        ->type_name("HOST:PORT");
  }
}

absl::StatusOr<std::string> PostgresConnInfo(const StoreFlags& flags) {
  absl::StatusOr<std::string> address =
      ResolveServiceAddress("postgres", "--postgres-addr", flags.postgres_addr, 5432);
  if (!address.ok()) return address.status();
  absl::StatusOr<HostPort> host_port = SplitHostPort("--postgres-addr", *address);
  if (!host_port.ok()) return host_port.status();
  // Values are quoted as libpq's key='value' syntax requires; flag values with quotes or
  // backslashes are escaped.
  auto quote = [](const std::string& value) {
    std::string out = "'";
    for (char c : value) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  };
  return absl::StrCat("host=", quote(host_port->host), " port=", host_port->port,
                      " dbname=", quote(flags.postgres_db), " user=", quote(flags.postgres_user),
                      " connect_timeout=5 application_name=sockmesh");
}

absl::StatusOr<HostPort> RedisAddress(const StoreFlags& flags) {
  absl::StatusOr<std::string> address =
      ResolveServiceAddress("redis", "--redis-addr", flags.redis_addr, 6379);
  if (!address.ok()) return address.status();
  return SplitHostPort("--redis-addr", *address);
}

}  // namespace sockmesh::platform
