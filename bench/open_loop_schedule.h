// SPDX-License-Identifier: Apache-2.0
// The pure logic of the same-node benchmark's open-loop load: when each request is due, and which
// requests a stream of response bytes completes.
//
// Send times are fixed before the run starts (request i at start + i / rate), and a request's
// latency is measured from its scheduled time, not from when the client got round to sending it.
// A client that falls behind (a slow response, a late wake-up) therefore sees the delay in the
// latency of every request it held up, instead of quietly sending fewer requests: no coordinated
// omission (Gil Tene's term; wrk2 schedules the same way).
#ifndef SOCKMESH_BENCH_OPEN_LOOP_SCHEDULE_H_
#define SOCKMESH_BENCH_OPEN_LOOP_SCHEDULE_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>

namespace sockmesh::bench {

// Request i is due at start_ns + floor(i * 1e9 / rate). Computed from i each time rather than by
// adding a period, so rounding never accumulates into a rate drift.
class OpenLoopSchedule {
 public:
  // `rate` in requests per second (> 0); `seconds` of load; times in ns of one clock.
  OpenLoopSchedule(uint64_t start_ns, double rate, double seconds)
      : start_ns_(start_ns),
        rate_(rate),
        total_(static_cast<uint64_t>(std::floor(rate * seconds))) {}

  uint64_t total() const { return total_; }

  // When request i (0-based) is due.
  uint64_t At(uint64_t i) const {
    return start_ns_ + static_cast<uint64_t>(static_cast<double>(i) * 1e9 / rate_);
  }

  // How many requests are due at `now_ns` (those with At(i) <= now), capped at total().
  uint64_t DueBy(uint64_t now_ns) const {
    if (now_ns < start_ns_ || total_ == 0) return 0;
    // Estimate, then correct the floating-point rounding either way.
    uint64_t n = static_cast<uint64_t>(static_cast<double>(now_ns - start_ns_) * rate_ / 1e9) + 1;
    while (n > 0 && At(n - 1) > now_ns) --n;
    while (n < total_ && At(n) <= now_ns) ++n;
    return n < total_ ? n : total_;
  }

 private:
  uint64_t start_ns_;
  double rate_;
  uint64_t total_;
};

// One connection's requests in flight. Responses have a fixed size and come back in order on a
// connection (the server answers each request as it completes), so counting received bytes says
// which requests are answered. Keeps each outstanding request's scheduled time.
class InFlight {
 public:
  explicit InFlight(size_t response_bytes) : response_bytes_(response_bytes) {}

  void Sent(uint64_t scheduled_ns) { scheduled_.push_back(scheduled_ns); }

  // Adds `n` received bytes and calls done(scheduled_ns) for every request they complete.
  // Returns false when the bytes complete more responses than requests were sent (a protocol
  // error: the stream is out of step).
  template <typename Fn>
  bool Received(size_t n, Fn&& done) {
    partial_ += n;
    while (partial_ >= response_bytes_) {
      if (scheduled_.empty()) return false;
      partial_ -= response_bytes_;
      done(scheduled_.front());
      scheduled_.pop_front();
    }
    return true;
  }

  size_t outstanding() const { return scheduled_.size(); }
  // The scheduled time of the oldest unanswered request; only when outstanding() > 0.
  uint64_t oldest() const { return scheduled_.front(); }

 private:
  size_t response_bytes_;
  size_t partial_ = 0;  // bytes of the response now arriving
  std::deque<uint64_t> scheduled_;
};

}  // namespace sockmesh::bench

#endif  // SOCKMESH_BENCH_OPEN_LOOP_SCHEDULE_H_
