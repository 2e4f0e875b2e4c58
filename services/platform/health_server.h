// SPDX-License-Identifier: Apache-2.0
// The HTTP side of every platform service: `GET /health` answers
// {"status":"ok","service":NAME}. HTTP/1.0 and 1.1 with keep-alive; anything else gets a proper
// 404/405/400. A thread per connection: health checks and load tests hold few connections.
#ifndef SOCKMESH_SERVICES_PLATFORM_HEALTH_SERVER_H_
#define SOCKMESH_SERVICES_PLATFORM_HEALTH_SERVER_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::platform {

// The response to one request head (request line and headers, without the blank line), as bytes
// to send, and whether the connection stays open. Exposed for tests.
struct HealthReply {
  std::string bytes;
  bool keep_alive = false;
};
HealthReply AnswerHealthRequest(std::string_view service, std::string_view head);

class HealthServer {
 public:
  // Binds `listen` ("A.B.C.D:PORT", port 0 for an ephemeral one) and starts serving.
  static absl::StatusOr<std::unique_ptr<HealthServer>> Start(std::string service,
                                                             std::string_view listen);
  ~HealthServer();  // Stops: closes the listener and every connection, joins the threads.

  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  int port() const { return port_; }

 private:
  HealthServer(std::string service, sys::UniqueFd listener, int port);
  void AcceptLoop();
  void Serve(int fd);

  const std::string service_;
  sys::UniqueFd listener_;
  const int port_;
  std::mutex mu_;
  std::condition_variable all_closed_;
  bool stopping_ = false;
  // Connection threads are detached; they register their socket here so that stopping can shut it
  // down (a blocked read returns) and wait for the set to empty.
  std::vector<int> open_fds_;
  std::thread acceptor_;
};

}  // namespace sockmesh::platform

#endif  // SOCKMESH_SERVICES_PLATFORM_HEALTH_SERVER_H_
