// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/serialized_messages.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include "userspace/log/log.h"

namespace sockmesh::cp {

grpc::ByteBuffer SerializedMessages::Get(const std::shared_ptr<const v1::ServerMessage>& msg) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(msg.get());
  if (it != entries_.end() && !it->second.msg.expired()) return it->second.bytes;
  DropExpired();
  // Serialized under the lock: the streams that want the same message at the same moment (all of
  // them, right after a change) wait for one serialization instead of each doing their own.
  Entry entry{.msg = msg};
  bool own_buffer = false;
  grpc::Status serialized =
      grpc::SerializationTraits<v1::ServerMessage>::Serialize(*msg, &entry.bytes, &own_buffer);
  // Only a message over protobuf's 2 GB limit fails; the agent would then get an empty message,
  // which it ignores, and the version stays in flight on that stream (seen in `sockmeshctl
  // status`).
  if (!serialized.ok()) {
    log::Error("control",
               "cannot serialize a message for the agents: ", serialized.error_message());
  }
  grpc::ByteBuffer bytes = entry.bytes;
  entries_[msg.get()] = std::move(entry);
  return bytes;
}

size_t SerializedMessages::size() {
  absl::MutexLock lock(&mu_);
  DropExpired();
  return entries_.size();
}

void SerializedMessages::DropExpired() {
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = it->second.msg.expired() ? entries_.erase(it) : std::next(it);
  }
}

}  // namespace sockmesh::cp
