// SPDX-License-Identifier: Apache-2.0
// Ctrl-C for the benchmarks: SIGINT and SIGTERM only ask the run to stop, so that it always ends
// through its destructors (cgroup left and removed, links detached, pins removed) and never by a
// default signal death halfway through.
#ifndef SOCKMESH_BENCH_SIGNAL_STOPPER_H_
#define SOCKMESH_BENCH_SIGNAL_STOPPER_H_

#include <signal.h>

#include <atomic>
#include <string>
#include <thread>

namespace sockmesh::bench {

// Blocks SIGINT and SIGTERM in every thread and takes them in its own thread with sigtimedwait();
// ignores SIGPIPE.
// Construct it before any other thread exists, so that all of them inherit the mask.
class SignalStopper {
 public:
  // `name` prefixes the messages it prints.
  explicit SignalStopper(std::string name);
  ~SignalStopper();
  SignalStopper(const SignalStopper&) = delete;
  SignalStopper& operator=(const SignalStopper&) = delete;

 private:
  void Run();

  std::string name_;
  sigset_t set_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Whether a SIGINT or SIGTERM has arrived; every benchmark loop checks it.
bool StopRequested();

}  // namespace sockmesh::bench

#endif  // SOCKMESH_BENCH_SIGNAL_STOPPER_H_
