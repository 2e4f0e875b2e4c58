// SPDX-License-Identifier: Apache-2.0
// Real PostgreSQL and Redis servers for store tests, each in its own temporary directory on a
// free loopback port, persisting nothing, stopped by PID and removed with their directory when the
// object goes away (also when the test fails). A missing server binary is an error naming the
// Debian package to install.
#ifndef SOCKMESH_TESTS_SUPPORT_THROWAWAY_DATABASES_H_
#define SOCKMESH_TESTS_SUPPORT_THROWAWAY_DATABASES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/support/database_process.h"
#include "tests/support/temp_dir.h"

namespace sockmesh::testing {

class ThrowawayPostgres {
 public:
  // initdb (trust authentication, superuser `postgres`), then the server on 127.0.0.1:<free
  // port> with fsync off; returns once it accepts connections.
  static absl::StatusOr<std::unique_ptr<ThrowawayPostgres>> Start();
  ~ThrowawayPostgres();

  int port() const { return port_; }
  // A libpq connection string for the `postgres` database.
  std::string conninfo() const;

 private:
  ThrowawayPostgres() : dir_("sockmesh-pg") {}
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<DatabaseProcess> server_;
};

class ThrowawayRedis {
 public:
  // redis-server on 127.0.0.1:<free port> with --save '' --appendonly no; returns once it
  // answers PING.
  static absl::StatusOr<std::unique_ptr<ThrowawayRedis>> Start();
  ~ThrowawayRedis();

  int port() const { return port_; }

 private:
  ThrowawayRedis() : dir_("sockmesh-redis") {}
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<DatabaseProcess> server_;
};

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_THROWAWAY_DATABASES_H_
