// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/versioned_state.h"

#include <utility>

namespace sockmesh::cp {

VersionedState::VersionedState() {
  current_ = {.version = 1, .state = std::make_shared<const model::DesiredState>()};
}

bool VersionedState::Update(model::DesiredState state) {
  absl::MutexLock lock(&mu_);
  if (*current_.state == state) return false;
  current_ = {.version = current_.version + 1,
              .state = std::make_shared<const model::DesiredState>(std::move(state))};
  return true;
}

StateVersion VersionedState::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

StateVersion VersionedState::WaitForChange(uint64_t seen, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto changed = [this, seen]()
                     ABSL_SHARED_LOCKS_REQUIRED(mu_) { return current_.version != seen; };
  mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
  return current_;
}

}  // namespace sockmesh::cp
