// SPDX-License-Identifier: Apache-2.0
#include "services/loadgen/load_runner.h"

#include <algorithm>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sockmesh::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kLateThreshold = std::chrono::milliseconds(1);

// Shared between workers and the progress thread; the histograms stay per worker.
struct Counters {
  std::atomic<uint64_t> next{0};  // Open loop: the next request number to take.
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> latency_sum_ns{0};
};

struct WorkerResult {
  metrics::LatencyHistogram latency_ns;
  std::map<std::string, uint64_t> errors_by_kind;
  uint64_t late = 0;
};

void Record(Counters& counters, WorkerResult& result, const std::string& error,
            Clock::duration latency) {
  const auto ns =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count());
  result.latency_ns.Add(ns);
  counters.latency_sum_ns.fetch_add(ns, std::memory_order_relaxed);
  if (error.empty()) {
    counters.ok.fetch_add(1, std::memory_order_relaxed);
  } else {
    counters.errors.fetch_add(1, std::memory_order_relaxed);
    ++result.errors_by_kind[error];
  }
}

void OpenLoopWorker(const LoadOptions& options, RequestSender& sender, Clock::time_point start,
                    Clock::time_point end, uint64_t total, Counters& counters, WorkerResult& result,
                    const std::atomic<bool>& stop) {
  const double interval_ns = 1e9 / options.rate;
  while (!stop.load(std::memory_order_relaxed)) {
    const uint64_t i = counters.next.fetch_add(1, std::memory_order_relaxed);
    // The run ends on time even when the server fell behind; what was due but never left is
    // reported as unsent rather than sent after the end.
    if (i >= total || Clock::now() >= end) return;
    const Clock::time_point due =
        start +
        std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(i) * interval_ns));
    std::this_thread::sleep_until(due);
    if (stop.load(std::memory_order_relaxed)) return;
    const Clock::time_point sent_at = Clock::now();
    if (sent_at - due > kLateThreshold) ++result.late;
    counters.sent.fetch_add(1, std::memory_order_relaxed);
    const std::string error = sender.Send(i);
    Record(counters, result, error, Clock::now() - due);
  }
}

void ClosedLoopWorker(RequestSender& sender, int worker, int workers, Clock::time_point end,
                      Counters& counters, WorkerResult& result, const std::atomic<bool>& stop) {
  for (uint64_t i = static_cast<uint64_t>(worker);
       !stop.load(std::memory_order_relaxed) && Clock::now() < end; i += workers) {
    const Clock::time_point sent_at = Clock::now();
    counters.sent.fetch_add(1, std::memory_order_relaxed);
    const std::string error = sender.Send(i);
    Record(counters, result, error, Clock::now() - sent_at);
  }
}

}  // namespace

LoadResult RunLoad(const LoadOptions& options, const SenderFactory& senders,
                   const std::function<void(const Progress&)>& progress,
                   const std::atomic<bool>& stop) {
  Counters counters;
  std::vector<WorkerResult> results(static_cast<size_t>(options.workers));
  std::vector<std::unique_ptr<RequestSender>> worker_senders;
  for (int w = 0; w < options.workers; ++w) worker_senders.push_back(senders(w));

  const auto total =
      static_cast<uint64_t>(options.rate * std::chrono::duration<double>(options.duration).count());
  // The workers connect in parallel (a target that is down costs one connect timeout, not one
  // per worker); the clock starts once all have, and they read start and end after `go`.
  Clock::time_point start, end;
  std::latch prepared(options.workers);
  std::latch go(1);
  std::vector<std::thread> threads;
  for (int w = 0; w < options.workers; ++w) {
    threads.emplace_back([&, w] {
      RequestSender& sender = *worker_senders[static_cast<size_t>(w)];
      WorkerResult& result = results[static_cast<size_t>(w)];
      sender.Prepare();
      prepared.count_down();
      go.wait();
      if (options.rate > 0) {
        OpenLoopWorker(options, sender, start, end, total, counters, result, stop);
      } else {
        ClosedLoopWorker(sender, w, options.workers, end, counters, result, stop);
      }
    });
  }

  prepared.wait();
  start = Clock::now();
  end = start + options.duration;
  go.count_down();

  std::atomic<bool> done{false};
  std::thread reporter;
  if (progress) {
    reporter = std::thread([&] {
      uint64_t last_completed = 0, last_sum = 0;
      Clock::time_point last = start;
      while (!done.load()) {
        // Short sleeps so the reporter notices the end at once.
        const Clock::time_point next = last + std::chrono::seconds(1);
        while (!done.load() && Clock::now() < next) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (done.load()) break;
        const Clock::time_point now = Clock::now();
        Progress p;
        p.elapsed_s = std::chrono::duration<double>(now - start).count();
        p.sent = counters.sent.load();
        p.ok = counters.ok.load();
        p.errors = counters.errors.load();
        const uint64_t completed = p.ok + p.errors;
        const uint64_t sum = counters.latency_sum_ns.load();
        const double seconds = std::chrono::duration<double>(now - last).count();
        p.interval_rate = static_cast<double>(completed - last_completed) / seconds;
        p.interval_mean_ms = completed == last_completed
                                 ? 0
                                 : static_cast<double>(sum - last_sum) /
                                       static_cast<double>(completed - last_completed) / 1e6;
        progress(p);
        last_completed = completed;
        last_sum = sum;
        last = now;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  done = true;
  if (reporter.joinable()) reporter.join();

  LoadResult result;
  result.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  result.ok = counters.ok.load();
  result.errors = counters.errors.load();
  if (options.rate > 0) result.unsent = total - std::min(total, counters.sent.load());
  for (const WorkerResult& worker : results) {
    result.latency_ns.Merge(worker.latency_ns);
    result.late += worker.late;
    for (const auto& [kind, count] : worker.errors_by_kind) result.errors_by_kind[kind] += count;
  }
  return result;
}

}  // namespace sockmesh::loadgen
