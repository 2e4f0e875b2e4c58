// SPDX-License-Identifier: Apache-2.0
// Liveness of a loop: the loop beats every iteration, a probe asks whether it beat recently. A
// loop that stops beating is deadlocked or stuck in a call, which a restart cures.
#ifndef SOCKMESH_USERSPACE_METRICS_HEARTBEAT_H_
#define SOCKMESH_USERSPACE_METRICS_HEARTBEAT_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sockmesh::metrics {

class Heartbeat {
 public:
  using Clock = std::function<absl::Time()>;
  Heartbeat(std::string loop, absl::Duration limit, Clock now)
      : loop_(std::move(loop)), limit_(limit), now_(std::move(now)), last_(now_()) {}

  void Beat() {
    absl::MutexLock lock(&mu_);
    last_ = now_();
  }
  absl::Duration SinceLast() const {
    absl::MutexLock lock(&mu_);
    return now_() - last_;
  }
  absl::Duration limit() const { return limit_; }
  // Why the loop counts as stalled, or nullopt while it beats.
  std::optional<std::string> Stalled() const {
    const absl::Duration since = SinceLast();
    if (since <= limit_) return std::nullopt;
    return absl::StrCat(loop_, " stalled: no heartbeat for ", absl::FormatDuration(since),
                        " (limit ", absl::FormatDuration(limit_), ")");
  }

 private:
  const std::string loop_;
  const absl::Duration limit_;
  const Clock now_;
  mutable absl::Mutex mu_;
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sockmesh::metrics

#endif  // SOCKMESH_USERSPACE_METRICS_HEARTBEAT_H_
