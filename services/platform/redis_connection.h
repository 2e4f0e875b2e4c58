// SPDX-License-Identifier: Apache-2.0
// One hiredis connection behind a mutex, replies flattened into a small struct and errors as
// absl::Status. A broken connection is re-established once before a command fails.
#ifndef SOCKMESH_SERVICES_PLATFORM_REDIS_CONNECTION_H_
#define SOCKMESH_SERVICES_PLATFORM_REDIS_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

struct redisContext;

namespace sockmesh::platform {

// A Redis reply as the stores use it: nil, an integer, a string, or an array of integers/strings
// (each element's text in `elements`, integers in decimal).
struct RedisReply {
  bool nil = false;
  long long integer = 0;
  std::string text;
  std::vector<std::string> elements;
};

class RedisConnection {
 public:
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(const std::string& host,
                                                                  int port);
  ~RedisConnection();

  // Runs one command given as its words (binary-safe). A Redis error reply is Internal with its
  // text; a lost connection Unavailable.
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& words);

 private:
  RedisConnection(std::string host, int port, redisContext* context)
      : host_(std::move(host)), port_(port), context_(context) {}
  absl::StatusOr<RedisReply> CommandLocked(const std::vector<std::string>& words)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReconnectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string host_;
  const int port_;
  absl::Mutex mu_;
  redisContext* context_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::platform

#endif  // SOCKMESH_SERVICES_PLATFORM_REDIS_CONNECTION_H_
