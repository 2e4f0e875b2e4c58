// SPDX-License-Identifier: Apache-2.0
// The backends of the connect benchmark: TCP listeners that accept each connection and close it at
// once (optionally after writing one byte). tests/support's NameServer polls and accepts one
// connection per wakeup, which would make the server, not the hook, what limits the rate; this one
// drains the accept queue per wakeup. Every benchmark mode dials the same server, so whatever it
// costs is common to both sides of a ratio.
#ifndef SOCKMESH_BENCH_ACCEPT_CLOSE_SERVER_H_
#define SOCKMESH_BENCH_ACCEPT_CLOSE_SERVER_H_

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::bench {

class AcceptCloseServer {
 public:
  struct Options {
    std::vector<std::string> ips;  // IPv4; one listener each, on a port the kernel picks
    int threads = 1;               // listeners are dealt round-robin to this many epoll threads
    bool payload = false;          // write one byte before closing
  };

  static absl::StatusOr<std::unique_ptr<AcceptCloseServer>> Start(const Options& options);
  ~AcceptCloseServer();  // stops and joins the threads, closes the listeners
  AcceptCloseServer(const AcceptCloseServer&) = delete;
  AcceptCloseServer& operator=(const AcceptCloseServer&) = delete;

  // The listeners' addresses, in the order of Options::ips.
  const std::vector<sockaddr_in>& addresses() const { return addresses_; }
  uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }

 private:
  struct Worker {
    sys::UniqueFd epoll;
    std::thread thread;
  };

  explicit AcceptCloseServer(bool payload) : payload_(payload) {}
  void Run(int epoll_fd);
  void Drain(int listener);

  bool payload_;
  std::vector<sys::UniqueFd> listeners_;
  std::vector<sockaddr_in> addresses_;
  sys::UniqueFd stop_;  // eventfd; readable (level-triggered) once the destructor runs
  std::vector<Worker> workers_;
  std::atomic<uint64_t> accepted_{0};
};

}  // namespace sockmesh::bench

#endif  // SOCKMESH_BENCH_ACCEPT_CLOSE_SERVER_H_
