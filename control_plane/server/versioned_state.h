// SPDX-License-Identifier: Apache-2.0
// The control plane's desired state with a version that grows by one on every change, shared
// between the source that writes it and the agent streams that wait for it.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_VERSIONED_STATE_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_VERSIONED_STATE_H_

#include <cstdint>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control_plane/model/service_model.h"

namespace sockmesh::cp {

struct StateVersion {
  uint64_t version = 0;
  // Immutable once published, so streams can hold it without copying or locking.
  std::shared_ptr<const model::DesiredState> state;
};

class VersionedState {
 public:
  // Starts at version 1 with an empty state: an agent that connects before the first source read
  // still gets a (valid, empty) snapshot. Versions restart when the control plane restarts; the
  // first message on every stream is a full snapshot, so agents never mix versions of two runs.
  VersionedState();

  // Publishes `state`; bumps the version and wakes waiters only when it differs from the current
  // one. Returns whether it did.
  bool Update(model::DesiredState state);
  StateVersion Current() const;
  // Waits until the version differs from `seen` or `timeout` passes; returns the current one.
  StateVersion WaitForChange(uint64_t seen, absl::Duration timeout) const;

 private:
  mutable absl::Mutex mu_;
  StateVersion current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_VERSIONED_STATE_H_
