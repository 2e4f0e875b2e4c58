// SPDX-License-Identifier: Apache-2.0
// The client side of the same-node benchmark: four loads, each run by the calling thread against
// one target address (a backend, or a service VIP that the connect hook rewrites). Every wait is
// bounded by `stall_timeout`, so a data plane that loses a wake-up or a message ends the load with
// an error instead of hanging the benchmark.
#ifndef SOCKMESH_BENCH_SAME_NODE_LOAD_H_
#define SOCKMESH_BENCH_SAME_NODE_LOAD_H_

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "userspace/metrics/latency_histogram.h"

namespace sockmesh::bench {

using metrics::LatencyHistogram;

struct LoadOptions {
  size_t request_bytes = 100;
  size_t response_bytes = 1024;
  double stall_timeout_s = 2;
  // Checked between requests; a load stops early (and says so) once it returns true.
  std::function<bool()> stopped = [] { return false; };
};

// What one load run measured.
struct LoadResult {
  double seconds = 0;      // measured wall time
  uint64_t completed = 0;  // requests answered / connections completed / bytes delivered
  uint64_t errors = 0;
  std::string first_error;  // what went wrong first, for the report ("" when nothing did)
  LatencyHistogram latency_ns;
  LatencyHistogram send_lag_ns;  // open loop: how late after its scheduled time a request left
  uint64_t window_waits = 0;     // bulk: times the sender waited for the receiver to catch up

  double per_sec() const { return seconds > 0 ? static_cast<double>(completed) / seconds : 0; }
  void Fail(const std::string& what);
};

// Closed loop on one persistent connection: send a request, wait for its whole response, repeat,
// for `seconds`. `completed` is requests; latency is send to last response byte.
LoadResult ClosedLoop(const sockaddr_in& target, double seconds, const LoadOptions& options);

// Open loop at `rate` requests/s over `conns` persistent connections (request i on connection
// i % conns), send times fixed in advance; latency from each request's scheduled time to the last
// byte of its response. Requests still unanswered `stall_timeout` after the last one was due are
// errors.
LoadResult OpenLoop(const sockaddr_in& target, double rate, int conns, double seconds,
                    const LoadOptions& options);

// One connection streaming `chunk`-byte writes for `seconds`; `completed` is the bytes the server
// read (`received`, its counter) in that time. The sender keeps at most `window` bytes ahead of
// what the server has read: plain TCP stops a sender far sooner (socket buffers), but a
// short-circuited socket on a kernel without back-pressure would queue without limit.
LoadResult Bulk(const sockaddr_in& target, double seconds, size_t chunk, uint64_t window,
                const std::atomic<uint64_t>& received, const LoadOptions& options);

// Connect-heavy: socket(), connect(), one request/response, close (RST, so no TIME_WAIT), for
// `seconds`. `completed` is connections; latency is connect() start to last response byte.
LoadResult ConnectHeavy(const sockaddr_in& target, double seconds, const LoadOptions& options);

uint64_t MonotonicNs();

}  // namespace sockmesh::bench

#endif  // SOCKMESH_BENCH_SAME_NODE_LOAD_H_
