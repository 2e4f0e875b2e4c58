// SPDX-License-Identifier: Apache-2.0
// A database server as a child process of the test (PostgreSQL, Redis), optionally run as
// another user (PostgreSQL refuses root). Output goes to a log file for failure messages. The
// destructor stops this one PID (SIGINT, then SIGKILL after 10 s) and reaps it.
#ifndef SOCKMESH_TESTS_SUPPORT_DATABASE_PROCESS_H_
#define SOCKMESH_TESTS_SUPPORT_DATABASE_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sockmesh::testing {

// The uid/gid to run a server as: the `postgres` account when root, else ourselves.
struct RunAs {
  uid_t uid;
  gid_t gid;
};
absl::StatusOr<RunAs> PostgresRunAs();

class DatabaseProcess {
 public:
  static absl::StatusOr<std::unique_ptr<DatabaseProcess>> Start(
      const std::string& binary, const std::vector<std::string>& args, const std::string& log_path,
      const RunAs* run_as = nullptr);
  ~DatabaseProcess();
  DatabaseProcess(const DatabaseProcess&) = delete;
  DatabaseProcess& operator=(const DatabaseProcess&) = delete;

  bool Running();
  // The log's last lines, for failure messages.
  std::string LogTail() const;

 private:
  DatabaseProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  bool reaped_ = false;
  std::string log_path_;
};

// Runs `binary` to completion (as `run_as` if given); an error with the output when it fails.
absl::Status RunToCompletion(const std::string& binary, const std::vector<std::string>& args,
                             const std::string& log_path, const RunAs* run_as = nullptr);

// A TCP port on 127.0.0.1 that was free a moment ago.
absl::StatusOr<int> FreeLoopbackPort();

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_DATABASE_PROCESS_H_
