// SPDX-License-Identifier: Apache-2.0
// A bounded number of full snapshots on their way at once, for streams that must not block: a
// stream that finds no free slot queues itself and is handed the next slot that frees, in
// arrival order, instead of waiting on a thread of its own.
#ifndef SOCKMESH_CONTROL_PLANE_SERVER_SNAPSHOT_SLOTS_H_
#define SOCKMESH_CONTROL_PLANE_SERVER_SNAPSHOT_SLOTS_H_

#include <deque>
#include <memory>

#include "absl/synchronization/mutex.h"

namespace sockmesh::cp {

template <typename Waiter>
class SnapshotSlots {
 public:
  explicit SnapshotSlots(int slots) : free_(slots) {}

  // Takes a slot, or queues `waiter` for the next one and returns false. A waiter must not queue
  // again before it is handed a slot.
  bool AcquireOrQueue(std::weak_ptr<Waiter> waiter) {
    absl::MutexLock lock(&mu_);
    if (free_ > 0) {
      --free_;
      return true;
    }
    waiters_.push_back(std::move(waiter));
    return false;
  }

  // Gives a slot back. Returns the waiter it now belongs to, if one is still alive: the caller
  // tells it so, and the waiter releases it again if it no longer needs it.
  std::shared_ptr<Waiter> Release() {
    absl::MutexLock lock(&mu_);
    while (!waiters_.empty()) {
      std::shared_ptr<Waiter> next = waiters_.front().lock();
      waiters_.pop_front();
      if (next != nullptr) return next;
    }
    ++free_;
    return nullptr;
  }

  int free() {
    absl::MutexLock lock(&mu_);
    return free_;
  }

 private:
  absl::Mutex mu_;
  int free_ ABSL_GUARDED_BY(mu_);
  std::deque<std::weak_ptr<Waiter>> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::cp

#endif  // SOCKMESH_CONTROL_PLANE_SERVER_SNAPSHOT_SLOTS_H_
