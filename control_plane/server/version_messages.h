// SPDX-License-Identifier: Apache-2.0
// The messages of one version, built once and shared by every agent's stream. With a thousand
// agents, building the snapshot (or the delta from the version they all ACKed) per stream would
// repeat the same O(model) work and hold a thousand copies of it at once.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_VERSION_MESSAGES_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_VERSION_MESSAGES_H_

#include <cstdint>
#include <map>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "control_plane/server/versioned_state.h"
#include "sockmesh/v1/control_plane.pb.h"

namespace sockmesh::cp {

class VersionMessages {
 public:
  // The full snapshot of `target` (whose `messages` is this object).
  std::shared_ptr<const v1::ServerMessage> Snapshot(const StateVersion& target);
  // The delta from `base` to `target`. From the version just before, it is built from
  // target.changed_since_previous in O(changes); from an older one, by comparing both states.
  // Deltas are kept per base version, for as long as the version is.
  std::shared_ptr<const v1::ServerMessage> Delta(const StateVersion& base,
                                                 const StateVersion& target);

 private:
  // Built under the lock: the streams that ask at the same time wait for one build.
  absl::Mutex mu_;
  std::shared_ptr<const v1::ServerMessage> snapshot_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::shared_ptr<const v1::ServerMessage>> deltas_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_VERSION_MESSAGES_H_
