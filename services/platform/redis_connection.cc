// SPDX-License-Identifier: Apache-2.0
#include "services/platform/redis_connection.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sockmesh::platform {
namespace {

constexpr timeval kTimeout{5, 0};

absl::StatusOr<redisContext*> Open(const std::string& host, int port) {
  redisContext* context = redisConnectWithTimeout(host.c_str(), port, kTimeout);
  if (context == nullptr) return absl::ResourceExhaustedError("Redis: out of memory");
  if (context->err != 0) {
    absl::Status error =
        absl::UnavailableError(absl::StrCat("Redis ", host, ":", port, ": ", context->errstr));
    redisFree(context);
    return error;
  }
  // Replies are bounded too: a stalled server fails the call instead of hanging it.
  redisSetTimeout(context, kTimeout);
  return context;
}

std::string ElementText(const redisReply* element) {
  if (element->type == REDIS_REPLY_INTEGER) return absl::StrCat(element->integer);
  if (element->type == REDIS_REPLY_NIL) return "";
  return std::string(element->str, element->len);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(const std::string& host,
                                                                          int port) {
  absl::StatusOr<redisContext*> context = Open(host, port);
  if (!context.ok()) return context.status();
  return std::unique_ptr<RedisConnection>(new RedisConnection(host, port, *context));
}

RedisConnection::~RedisConnection() {
  absl::MutexLock lock(&mu_);
  if (context_ != nullptr) redisFree(context_);
}

absl::Status RedisConnection::ReconnectLocked() {
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
  absl::StatusOr<redisContext*> context = Open(host_, port_);
  if (!context.ok()) return context.status();
  context_ = *context;
  return absl::OkStatus();
}

absl::StatusOr<RedisReply> RedisConnection::Command(const std::vector<std::string>& words) {
  absl::MutexLock lock(&mu_);
  if (context_ == nullptr || context_->err != 0) {
    if (absl::Status status = ReconnectLocked(); !status.ok()) return status;
  }
  absl::StatusOr<RedisReply> reply = CommandLocked(words);
  if (absl::IsUnavailable(reply.status()) && ReconnectLocked().ok()) reply = CommandLocked(words);
  return reply;
}

absl::StatusOr<RedisReply> RedisConnection::CommandLocked(const std::vector<std::string>& words) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::string& word : words) {
    argv.push_back(word.data());
    lengths.push_back(word.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data()));
  if (reply == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("Redis ", host_, ":", port_, ": ", context_->errstr));
  }
  RedisReply out;
  absl::Status status;
  switch (reply->type) {
    case REDIS_REPLY_ERROR:
      status = absl::InternalError(absl::StrCat("Redis: ", std::string(reply->str, reply->len)));
      break;
    case REDIS_REPLY_NIL:
      out.nil = true;
      break;
    case REDIS_REPLY_INTEGER:
      out.integer = reply->integer;
      break;
    case REDIS_REPLY_ARRAY:
      for (size_t i = 0; i < reply->elements; ++i) {
        out.elements.push_back(ElementText(reply->element[i]));
      }
      break;
    default:
      out.text = std::string(reply->str, reply->len);
  }
  freeReplyObject(reply);
  if (!status.ok()) return status;
  return out;
}

}  // namespace sockmesh::platform
