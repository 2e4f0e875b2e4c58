// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_TESTS_SUPPORT_NAME_SERVER_H_
#define SOCKMESH_TESTS_SUPPORT_NAME_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::testing {

// A backend that tells who it is: a TCP server writes its name to each connection and closes it;
// a UDP server answers each datagram with its name. Runs on its own thread until destroyed.
class NameServer {
 public:
  enum class Kind { kTcp, kUdp };
  // `ip` is IPv4 or IPv6 text; port 0 picks a free port.
  static absl::StatusOr<std::unique_ptr<NameServer>> Start(std::string name, Kind kind,
                                                           const std::string& ip,
                                                           uint16_t port = 0);
  ~NameServer();

  const std::string& name() const { return name_; }
  const std::string& ip() const { return ip_; }
  uint16_t port() const { return port_; }
  uint64_t served() const { return served_.load(); }

 private:
  NameServer(std::string name, Kind kind, std::string ip)
      : name_(std::move(name)), kind_(kind), ip_(std::move(ip)) {}
  void Loop();
  void ServeTcp();
  void ServeUdp();

  std::string name_;
  Kind kind_;
  std::string ip_;
  uint16_t port_ = 0;
  sys::UniqueFd fd_;
  sys::UniqueFd stop_;  // eventfd
  std::atomic<uint64_t> served_{0};
  std::thread thread_;
};

// The outcome of one client call. `error` is the errno of the failing step (0 on success).
struct DialResult {
  int error = 0;
  std::string reply;  // what the server sent
  std::string peer;   // getpeername() (TCP) or recvfrom()'s source (UDP), "ip:port" / "[ip]:port"
};

// Connects over TCP, reads the server's reply until EOF. A non-empty `bind_ip` / non-zero
// `bind_port` binds the client socket first (SO_REUSEADDR; closed with RST so the port is reusable
// at once).
DialResult DialTcp(const std::string& ip, uint16_t port, const std::string& bind_ip = "",
                   uint16_t bind_port = 0, int timeout_ms = 3000);
// Sends one datagram and waits for the answer; recvfrom()'s source goes to `peer`. Unconnected
// (sendto) by default; with `connected`, connect() first and send().
DialResult DialUdp(const std::string& ip, uint16_t port, const std::string& payload = "ping",
                   int timeout_ms = 3000, bool connected = false);

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_NAME_SERVER_H_
