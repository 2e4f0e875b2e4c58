// SPDX-License-Identifier: Apache-2.0
// The control plane's desired state with a version that grows by one on every change, shared
// between the source that writes it and the agent streams that wait for it.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_VERSIONED_STATE_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_VERSIONED_STATE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control_plane/model/service_model.h"

namespace sockmesh::cp {

class VersionMessages;

struct StateVersion {
  uint64_t version = 0;
  // Immutable once published, so streams can hold it without copying or locking.
  std::shared_ptr<const model::DesiredState> state;
  // When it was published: push latency counts from here.
  absl::Time created = absl::InfinitePast();
  // The frontends added, changed or removed since version - 1, in order; null for the first
  // version. With it a delta from the previous version costs O(changes), not O(model).
  std::shared_ptr<const std::vector<model::Frontend>> changed_since_previous;
  // The messages for this version, built once and shared by every stream (see version_messages.h).
  std::shared_ptr<VersionMessages> messages;
};

class VersionedState {
 public:
  // Starts at version 1 with an empty state: an agent that connects before the first source read
  // still gets a (valid, empty) snapshot. Versions restart when the control plane restarts; the
  // first message on every stream is a full snapshot, so agents never mix versions of two runs.
  VersionedState();

  // Publishes `state`; bumps the version and wakes waiters only when it differs from the current
  // one. Returns whether it did. Comparing costs O(model) once per call, outside the lock readers
  // take.
  bool Update(model::DesiredState state, absl::Time now = absl::Now());
  StateVersion Current() const;
  // Waits until the version differs from `seen` or `timeout` passes; returns the current one.
  StateVersion WaitForChange(uint64_t seen, absl::Duration timeout) const;

 private:
  absl::Mutex update_mu_;  // one Update at a time, so the diff is against the version it replaces
  mutable absl::Mutex mu_;
  // Not Mutex::Await: with a thousand streams waiting, every unlock of mu_ (each Current()) would
  // evaluate a thousand conditions. CondVar waiters cost nothing until SignalAll.
  mutable absl::CondVar changed_;
  StateVersion current_ ABSL_GUARDED_BY(mu_);
};

// The frontends whose entry differs between `a` and `b` (present in one only, or different), in
// frontend order.
std::vector<model::Frontend> ChangedFrontends(const model::DesiredState& a,
                                              const model::DesiredState& b);

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_VERSIONED_STATE_H_
