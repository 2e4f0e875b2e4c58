// SPDX-License-Identifier: Apache-2.0
#include "services/platform/postgres_connection.h"

#include <libpq-fe.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sockmesh::platform {
namespace {

// SQLSTATE of a unique_violation.
constexpr char kUniqueViolation[] = "23505";

std::string ConnectionError(PGconn* conn) {
  absl::string_view message = PQerrorMessage(conn);
  while (!message.empty() && message.back() == '\n') message.remove_suffix(1);
  return std::string(message);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresConnection>> PostgresConnection::Connect(
    const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return absl::ResourceExhaustedError("PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    absl::Status error =
        absl::UnavailableError(absl::StrCat("PostgreSQL: connect: ", ConnectionError(conn)));
    PQfinish(conn);
    return error;
  }
  return std::unique_ptr<PostgresConnection>(new PostgresConnection(conn));
}

PostgresConnection::~PostgresConnection() {
  absl::MutexLock lock(&mu_);
  PQfinish(conn_);
}

absl::StatusOr<PostgresRows> PostgresConnection::Exec(const std::string& sql,
                                                      const std::vector<std::string>& params) {
  absl::MutexLock lock(&mu_);
  if (PQstatus(conn_) != CONNECTION_OK) PQreset(conn_);
  absl::StatusOr<PostgresRows> rows = ExecLocked(sql, params);
  if (absl::IsUnavailable(rows.status())) {
    // The server went away between statements: one fresh connection, one retry.
    PQreset(conn_);
    if (PQstatus(conn_) == CONNECTION_OK) rows = ExecLocked(sql, params);
  }
  return rows;
}

absl::StatusOr<PostgresRows> PostgresConnection::ExecLocked(
    const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const std::string& param : params) values.push_back(param.c_str());
  // Without parameters, PQexec: it accepts several commands in one string (run as one
  // transaction), which PQexecParams refuses.
  PGresult* result = params.empty()
                         ? PQexec(conn_, sql.c_str())
                         : PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()),
                                        nullptr, values.data(), nullptr, nullptr, 0);
  const ExecStatusType status = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    const char* field = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const std::string sqlstate = field == nullptr ? "" : field;
    const std::string message = absl::StrCat("PostgreSQL: ", ConnectionError(conn_));
    PQclear(result);
    if (PQstatus(conn_) != CONNECTION_OK) return absl::UnavailableError(message);
    if (sqlstate == kUniqueViolation) {
      return absl::AlreadyExistsError(message);
    }
    return absl::InternalError(message);
  }
  PostgresRows rows(static_cast<size_t>(PQntuples(result)));
  for (int r = 0; r < PQntuples(result); ++r) {
    for (int c = 0; c < PQnfields(result); ++c) rows[r].emplace_back(PQgetvalue(result, r, c));
  }
  PQclear(result);
  return rows;
}

}  // namespace sockmesh::platform
