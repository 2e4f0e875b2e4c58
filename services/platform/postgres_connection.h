// SPDX-License-Identifier: Apache-2.0
// One libpq connection behind a mutex, with parameterized statements and errors as absl::Status.
// A broken connection is reset once before a statement fails, so a database restart costs the
// calls in flight, not the service.
#ifndef SOCKMESH_SERVICES_PLATFORM_POSTGRES_CONNECTION_H_
#define SOCKMESH_SERVICES_PLATFORM_POSTGRES_CONNECTION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

typedef struct pg_conn PGconn;

namespace sockmesh::platform {

// Rows of text values; SQL NULL reads as "".
using PostgresRows = std::vector<std::vector<std::string>>;

class PostgresConnection {
 public:
  static absl::StatusOr<std::unique_ptr<PostgresConnection>> Connect(const std::string& conninfo);
  ~PostgresConnection();

  // Runs `sql` with $1.. bound to `params` (text); without params `sql` may hold several commands.
  // A unique violation is AlreadyExists, a lost connection Unavailable, anything else Internal with
  // the server's message.
  absl::StatusOr<PostgresRows> Exec(const std::string& sql,
                                    const std::vector<std::string>& params = {});

 private:
  explicit PostgresConnection(PGconn* conn) : conn_(conn) {}
  absl::StatusOr<PostgresRows> ExecLocked(const std::string& sql,
                                          const std::vector<std::string>& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  PGconn* conn_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::platform

#endif  // SOCKMESH_SERVICES_PLATFORM_POSTGRES_CONNECTION_H_
