// SPDX-License-Identifier: Apache-2.0
#include "control_plane/server/versioned_state.h"

#include <utility>

#include "control_plane/server/version_messages.h"

namespace sockmesh::cp {

VersionedState::VersionedState() {
  current_ = {.version = 1,
              .state = std::make_shared<const model::DesiredState>(),
              .created = absl::Now(),
              .messages = std::make_shared<VersionMessages>()};
}

std::vector<model::Frontend> ChangedFrontends(const model::DesiredState& a,
                                              const model::DesiredState& b) {
  // Both maps are ordered by frontend: one merge walk.
  std::vector<model::Frontend> out;
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      out.push_back((ia++)->first);
    } else if (ia == a.end() || ib->first < ia->first) {
      out.push_back((ib++)->first);
    } else {
      if (!(ia->second == ib->second)) out.push_back(ia->first);
      ++ia;
      ++ib;
    }
  }
  return out;
}

bool VersionedState::Update(model::DesiredState state, absl::Time now) {
  absl::MutexLock update_lock(&update_mu_);
  StateVersion previous = Current();
  auto changed = std::make_shared<const std::vector<model::Frontend>>(
      ChangedFrontends(*previous.state, state));
  // Workloads are few next to services: compared whole, and a change to them alone is a version.
  if (changed->empty() && previous.state->workloads == state.workloads &&
      previous.state->policy == state.policy &&
      previous.state->policy_status == state.policy_status) {
    return false;
  }
  StateVersion next{.version = previous.version + 1,
                    .state = std::make_shared<const model::DesiredState>(std::move(state)),
                    .created = now,
                    .changed_since_previous = std::move(changed),
                    .messages = std::make_shared<VersionMessages>()};
  absl::MutexLock lock(&mu_);
  current_ = std::move(next);
  changed_.SignalAll();
  return true;
}

StateVersion VersionedState::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

StateVersion VersionedState::WaitForChange(uint64_t seen, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (current_.version == seen) {
    if (changed_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
  }
  return current_;
}

}  // namespace sockmesh::cp
