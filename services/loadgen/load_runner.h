// SPDX-License-Identifier: Apache-2.0
// Drives a RequestSender from worker threads, open loop or closed loop, and measures latency.
//
// Open loop (`rate` > 0): request i is due at start + i / rate, whatever happened to earlier
// requests. A worker takes the next due request, sleeps until its time, sends it, and records the
// latency from the *due* time, not from when it was actually sent. When the server is slow and all
// workers are busy, the next request leaves late and that wait counts in its latency: the
// generator does not quietly slow down with the server (no coordinated omission). `late` counts
// requests that left more than 1 ms after their due time, a sign that more workers are needed.
// The run stops at the end of the duration; requests due by then that never left are `unsent`.
//
// Closed loop (`rate` == 0): each worker sends back to back; latency is per request, throughput
// is the maximum the workers achieve.
#ifndef SOCKMESH_SERVICES_LOADGEN_LOAD_RUNNER_H_
#define SOCKMESH_SERVICES_LOADGEN_LOAD_RUNNER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "services/loadgen/request_sender.h"
#include "userspace/metrics/latency_histogram.h"

namespace sockmesh::loadgen {

struct LoadOptions {
  double rate = 0;  // Requests per second; 0 = closed loop.
  std::chrono::milliseconds duration{10'000};
  int workers = 16;
};

// What the progress callback sees once a second.
struct Progress {
  double elapsed_s = 0;
  uint64_t sent = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  double interval_rate = 0;     // Completed per second over the last interval.
  double interval_mean_ms = 0;  // Mean latency over the last interval.
};

struct LoadResult {
  double elapsed_s = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t late = 0;    // Open loop: sent > 1 ms after due.
  uint64_t unsent = 0;  // Open loop: due within the duration but never sent (server behind).
  std::map<std::string, uint64_t> errors_by_kind;
  metrics::LatencyHistogram latency_ns;  // Successful and failed requests alike.
};

// Runs the load; `progress` (may be empty) is called from a separate thread once a second;
// `stop` ends the run early (Ctrl-C).
LoadResult RunLoad(const LoadOptions& options, const SenderFactory& senders,
                   const std::function<void(const Progress&)>& progress,
                   const std::atomic<bool>& stop);

}  // namespace sockmesh::loadgen

#endif  // SOCKMESH_SERVICES_LOADGEN_LOAD_RUNNER_H_
