// SPDX-License-Identifier: Apache-2.0
#include "tests/support/name_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::testing {
namespace {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = AF_UNSPEC;
};

absl::StatusOr<SockAddr> MakeSockAddr(const std::string& ip, uint16_t port) {
  SockAddr a;
  if (ip.find(':') == std::string::npos) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, ip.c_str(), &sin->sin_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("bad IPv4 address ", ip));
    }
    a.len = sizeof(sockaddr_in);
    a.family = AF_INET;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip.c_str(), &sin6->sin6_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("bad IPv6 address ", ip));
    }
    a.len = sizeof(sockaddr_in6);
    a.family = AF_INET6;
  }
  return a;
}

std::string FormatSockAddr(const sockaddr_storage& s) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (s.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&s);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    return absl::StrCat(buf, ":", ntohs(sin->sin_port));
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&s);
  inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
  return absl::StrCat("[", buf, "]:", ntohs(sin6->sin6_port));
}

uint16_t BoundPort(int fd) {
  sockaddr_storage s{};
  socklen_t len = sizeof(s);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len);
  return s.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&s)->sin_port)
                                : ntohs(reinterpret_cast<sockaddr_in6*>(&s)->sin6_port);
}

bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

void SetTimeouts(int fd, int timeout_ms) {
  timeval tv{.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

}  // namespace

absl::StatusOr<std::unique_ptr<NameServer>> NameServer::Start(std::string name, Kind kind,
                                                              const std::string& ip,
                                                              uint16_t port) {
  absl::StatusOr<SockAddr> addr = MakeSockAddr(ip, port);
  if (!addr.ok()) return addr.status();
  std::unique_ptr<NameServer> s(new NameServer(std::move(name), kind, ip));
  int type = kind == Kind::kTcp ? SOCK_STREAM : SOCK_DGRAM;
  s->fd_.Reset(::socket(addr->family, type | SOCK_CLOEXEC, 0));
  if (!s->fd_.valid()) return sys::ErrnoToStatus(errno, "socket");
  int one = 1;
  ::setsockopt(s->fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (addr->family == AF_INET6)
    ::setsockopt(s->fd_.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(s->fd_.get(), reinterpret_cast<sockaddr*>(&addr->storage), addr->len) != 0) {
    return sys::ErrnoToStatus(errno, absl::StrCat("bind ", ip, ":", port));
  }
  if (kind == Kind::kTcp && ::listen(s->fd_.get(), 4096) != 0)
    return sys::ErrnoToStatus(errno, "listen");
  s->port_ = BoundPort(s->fd_.get());
  s->stop_.Reset(::eventfd(0, EFD_CLOEXEC));
  s->thread_ = std::thread([raw = s.get()] { raw->Loop(); });
  return s;
}

NameServer::~NameServer() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void NameServer::Loop() {
  pollfd fds[2] = {{.fd = fd_.get(), .events = POLLIN, .revents = 0},
                   {.fd = stop_.get(), .events = POLLIN, .revents = 0}};
  while (true) {
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    kind_ == Kind::kTcp ? ServeTcp() : ServeUdp();
  }
}

void NameServer::ServeTcp() {
  sys::UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn.valid()) return;
  (void)!::send(conn.get(), name_.data(), name_.size(), MSG_NOSIGNAL);
  served_++;
}

void NameServer::ServeUdp() {
  char buf[2048];
  sockaddr_storage from{};
  socklen_t len = sizeof(from);
  ssize_t n = ::recvfrom(fd_.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
  if (n < 0) return;
  ::sendto(fd_.get(), name_.data(), name_.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  served_++;
}

DialResult DialTcp(const std::string& ip, uint16_t port, const std::string& bind_ip,
                   uint16_t bind_port, int timeout_ms) {
  DialResult r;
  absl::StatusOr<SockAddr> addr = MakeSockAddr(ip, port);
  if (!addr.ok()) {
    r.error = EINVAL;
    return r;
  }
  sys::UniqueFd fd(::socket(addr->family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    r.error = errno;
    return r;
  }
  SetTimeouts(fd.get(), timeout_ms);
  if (!bind_ip.empty() || bind_port != 0) {
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    absl::StatusOr<SockAddr> local = MakeSockAddr(
        bind_ip.empty() ? (addr->family == AF_INET ? "0.0.0.0" : "::") : bind_ip, bind_port);
    if (!local.ok() ||
        ::bind(fd.get(), reinterpret_cast<sockaddr*>(&local->storage), local->len) != 0) {
      r.error = errno ? errno : EINVAL;
      return r;
    }
  }
  // RST on close: no TIME_WAIT on the client side, so tight loops and fixed source ports work.
  linger lg{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr->storage), addr->len) != 0) {
    r.error = errno;
    return r;
  }
  sockaddr_storage peer{};
  socklen_t plen = sizeof(peer);
  if (::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&peer), &plen) == 0) {
    r.peer = FormatSockAddr(peer);
  }
  char buf[512];
  while (true) {
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n > 0) {
      r.reply.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0) r.error = errno;
    break;
  }
  return r;
}

DialResult DialUdp(const std::string& ip, uint16_t port, const std::string& payload, int timeout_ms,
                   bool connected) {
  DialResult r;
  absl::StatusOr<SockAddr> addr = MakeSockAddr(ip, port);
  if (!addr.ok()) {
    r.error = EINVAL;
    return r;
  }
  sys::UniqueFd fd(::socket(addr->family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    r.error = errno;
    return r;
  }
  auto* dest = reinterpret_cast<sockaddr*>(&addr->storage);
  if (connected && ::connect(fd.get(), dest, addr->len) != 0) {
    r.error = errno;
    return r;
  }
  if (::sendto(fd.get(), payload.data(), payload.size(), 0, connected ? nullptr : dest,
               connected ? 0 : addr->len) < 0) {
    r.error = errno;
    return r;
  }
  if (!WaitReadable(fd.get(), timeout_ms)) {
    r.error = ETIMEDOUT;
    return r;
  }
  char buf[512];
  sockaddr_storage from{};
  socklen_t len = sizeof(from);
  ssize_t n = ::recvfrom(fd.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
  if (n < 0) {
    r.error = errno;
    return r;
  }
  r.reply.assign(buf, static_cast<size_t>(n));
  r.peer = FormatSockAddr(from);
  return r;
}

}  // namespace sockmesh::testing
