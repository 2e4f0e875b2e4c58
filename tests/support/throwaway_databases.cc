// SPDX-License-Identifier: Apache-2.0
#include "tests/support/throwaway_databases.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "services/platform/redis_connection.h"

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;

constexpr auto kStartTimeout = std::chrono::seconds(30);

// Debian installs the server binaries per major version, outside PATH:
// /usr/lib/postgresql/<major>/bin. The newest wins.
absl::StatusOr<std::string> PostgresBinDir() {
  std::error_code ec;
  std::string best;
  int best_major = -1;
  for (const fs::directory_entry& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const fs::path bin = entry.path() / "bin";
    const int major = std::atoi(entry.path().filename().c_str());
    if (fs::exists(bin / "initdb") && fs::exists(bin / "postgres") && major > best_major) {
      best = bin.string();
      best_major = major;
    }
  }
  if (best.empty()) {
    return absl::NotFoundError(
        "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb, postgres): "
        "install the Debian package postgresql (scripts/install-deps.sh)");
  }
  return best;
}

absl::StatusOr<std::string> RedisServerBinary() {
  for (const char* candidate : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
    if (::access(candidate, X_OK) == 0) return std::string(candidate);
  }
  return absl::NotFoundError(
      "redis-server not found: install the Debian package redis-server (scripts/install-deps.sh)");
}

}  // namespace

absl::StatusOr<std::unique_ptr<ThrowawayPostgres>> ThrowawayPostgres::Start() {
  absl::StatusOr<std::string> bin = PostgresBinDir();
  if (!bin.ok()) return bin.status();
  absl::StatusOr<RunAs> run_as = PostgresRunAs();
  if (!run_as.ok()) return run_as.status();
  absl::StatusOr<int> port = FreeLoopbackPort();
  if (!port.ok()) return port.status();
  std::unique_ptr<ThrowawayPostgres> pg(new ThrowawayPostgres());
  if (pg->dir_.path().empty()) return absl::InternalError("mkdtemp /tmp/sockmesh-pg-XXXXXX failed");
  pg->port_ = *port;
  // The server runs as `postgres` and needs its directory; mkdtemp made it 0700 for us.
  if (::chown(pg->dir_.path().c_str(), run_as->uid, run_as->gid) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("chown ", pg->dir_.path()));
  }
  const std::string data = pg->dir_.path() + "/data";
  const std::string log = pg->dir_.path() + "/postgres.log";
  absl::Status init = RunToCompletion(
      *bin + "/initdb",
      {"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-locale"},
      pg->dir_.path() + "/initdb.log", &*run_as);
  if (!init.ok()) return init;
  // The socket lives in the private directory, not /var/run/postgresql (which may not exist or
  // belong to a system cluster).
  absl::StatusOr<std::unique_ptr<DatabaseProcess>> server = DatabaseProcess::Start(
      *bin + "/postgres",
      {"-D", data, "-h", "127.0.0.1", "-p", absl::StrCat(*port), "-k", pg->dir_.path(), "-c",
       "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"},
      log, &*run_as);
  if (!server.ok()) return server.status();
  pg->server_ = std::move(*server);
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (PQping(pg->conninfo().c_str()) != PQPING_OK) {
    if (!pg->server_->Running() || std::chrono::steady_clock::now() > deadline) {
      return absl::UnavailableError(absl::StrCat("PostgreSQL did not start on 127.0.0.1:", *port,
                                                 ": ", pg->server_->LogTail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pg;
}

ThrowawayPostgres::~ThrowawayPostgres() { server_.reset(); }  // Before TempDir removes the files.

std::string ThrowawayPostgres::conninfo() const {
  return absl::StrCat("host=127.0.0.1 port=", port_,
                      " dbname=postgres user=postgres connect_timeout=5");
}

absl::StatusOr<std::unique_ptr<ThrowawayRedis>> ThrowawayRedis::Start() {
  absl::StatusOr<std::string> binary = RedisServerBinary();
  if (!binary.ok()) return binary.status();
  absl::StatusOr<int> port = FreeLoopbackPort();
  if (!port.ok()) return port.status();
  std::unique_ptr<ThrowawayRedis> redis(new ThrowawayRedis());
  if (redis->dir_.path().empty()) {
    return absl::InternalError("mkdtemp /tmp/sockmesh-redis-XXXXXX failed");
  }
  redis->port_ = *port;
  absl::StatusOr<std::unique_ptr<DatabaseProcess>> server = DatabaseProcess::Start(
      *binary,
      {"--port", absl::StrCat(*port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
       "--dir", redis->dir_.path(), "--daemonize", "no"},
      redis->dir_.path() + "/redis.log");
  if (!server.ok()) return server.status();
  redis->server_ = std::move(*server);
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (true) {
    absl::StatusOr<std::unique_ptr<platform::RedisConnection>> connection =
        platform::RedisConnection::Connect("127.0.0.1", *port);
    if (connection.ok() && (*connection)->Command({"PING"}).ok()) break;
    if (!redis->server_->Running() || std::chrono::steady_clock::now() > deadline) {
      return absl::UnavailableError(absl::StrCat("redis-server did not start on 127.0.0.1:", *port,
                                                 ": ", redis->server_->LogTail()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return redis;
}

ThrowawayRedis::~ThrowawayRedis() { server_.reset(); }

}  // namespace sockmesh::testing
