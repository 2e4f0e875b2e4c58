// SPDX-License-Identifier: Apache-2.0
// The server side of the same-node benchmark: one epoll thread serving listeners of three kinds.
//   kRequestResponse  persistent connections; every `request_bytes` received are answered with
//                     `response_bytes` (requests are answered in order, as they complete);
//   kOneShot          the same for one request, then the server closes (connect-heavy load);
//   kSink             reads and discards, adding what it read to sink_bytes() (bulk throughput).
// A listener's sockets belong to the cgroup the process was in when Listen() created it (accepted
// sockets inherit the listener's), so the benchmark makes one set of listeners per data plane and
// switches cgroups in between. Every read is a non-blocking recv() after epoll says readable: a
// blocking recv() on a short-circuited socket can return a spurious EAGAIN on this kernel.
#ifndef SOCKMESH_BENCH_SAME_NODE_SERVER_H_
#define SOCKMESH_BENCH_SAME_NODE_SERVER_H_

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::bench {

class SameNodeServer {
 public:
  enum class Kind { kRequestResponse, kOneShot, kSink };

  struct Options {
    size_t request_bytes = 100;
    size_t response_bytes = 1024;
    int cpu = -1;  // the server thread is pinned to this CPU; -1: not pinned
  };

  static absl::StatusOr<std::unique_ptr<SameNodeServer>> Create(const Options& options);
  ~SameNodeServer();  // stops and joins the thread, closes every socket
  SameNodeServer(const SameNodeServer&) = delete;
  SameNodeServer& operator=(const SameNodeServer&) = delete;

  // A listener on `ip` and a port the kernel picks. Only before Start().
  absl::StatusOr<sockaddr_in> Listen(const std::string& ip, Kind kind);
  // Starts the serving thread.
  absl::Status Start();

  // Bytes read by kSink connections so far (the bulk sender paces itself on it).
  const std::atomic<uint64_t>& sink_bytes() const { return sink_bytes_; }
  // Connections that ended with an error other than the peer's close or reset.
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  struct Socket;

  explicit SameNodeServer(const Options& options);  // in the .cc, where Socket is complete
  void Run();
  void Accept(Socket& listener);
  // Reads what is there; false when the connection is finished (closed by the peer, or failed).
  bool Read(Socket& conn);
  // Sends queued response bytes; false on a send error.
  bool Flush(Socket& conn);
  void Close(Socket* conn);
  void WatchWritable(Socket& conn, bool on);

  Options options_;
  sys::UniqueFd epoll_;
  sys::UniqueFd stop_;  // eventfd; readable once the destructor runs
  std::vector<std::unique_ptr<Socket>> listeners_;
  // Accepted connections; only the serving thread touches them (the destructor after the join).
  std::unordered_map<Socket*, std::unique_ptr<Socket>> conns_;
  std::thread thread_;
  std::atomic<uint64_t> sink_bytes_{0};
  std::atomic<uint64_t> errors_{0};
};

}  // namespace sockmesh::bench

#endif  // SOCKMESH_BENCH_SAME_NODE_SERVER_H_
