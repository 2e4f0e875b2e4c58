// SPDX-License-Identifier: Apache-2.0
// The wire form of the messages VersionMessages builds, serialized once per message. A thousand
// streams writing the same delta then share one buffer (gRPC slices are reference-counted, so a
// stream's copy costs a reference, not a copy of the bytes) instead of serializing it a thousand
// times on the threads that should be writing.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_SERIALIZED_MESSAGES_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_SERIALIZED_MESSAGES_H_

#include <grpcpp/support/byte_buffer.h>

#include <map>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::cp {

class SerializedMessages {
 public:
  // `msg` serialized; the same bytes for as long as `msg` lives.
  grpc::ByteBuffer Get(const std::shared_ptr<const v1::ServerMessage>& msg);

  // Messages with bytes held (for tests: entries leave once their message is gone).
  size_t size();

 private:
  struct Entry {
    // Not owning: a message lives as long as its version (version_messages.h), and its bytes
    // should not keep it, or the version's snapshot, alive longer.
    std::weak_ptr<const v1::ServerMessage> msg;
    grpc::ByteBuffer bytes;
  };
  void DropExpired() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  // Keyed by address: an expired entry's address may be reused by a new message, which the
  // weak_ptr tells apart.
  std::map<const v1::ServerMessage*, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_SERIALIZED_MESSAGES_H_
