// SPDX-License-Identifier: Apache-2.0
#include "bench/accept_close_server.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::bench {
namespace {

// The kernel clamps this to net.core.somaxconn (4096 by default since 5.4). A deep queue keeps a
// SYN from being dropped, which would stall a client's connect() for a whole retransmit timeout.
constexpr int kBacklog = 4096;
constexpr int kMaxEvents = 16;

absl::Status AddToEpoll(int epoll_fd, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return sys::ErrnoToStatus(errno, "epoll_ctl");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<AcceptCloseServer>> AcceptCloseServer::Start(
    const Options& options) {
  if (options.ips.empty()) return absl::InvalidArgumentError("no listen addresses");
  std::unique_ptr<AcceptCloseServer> s(new AcceptCloseServer(options.payload));
  for (const std::string& ip : options.ips) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("bad IPv4 address ", ip));
    }
    // Non-blocking, so a worker can drain the accept queue and stop at EAGAIN.
    sys::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return sys::ErrnoToStatus(errno, "socket");
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return sys::ErrnoToStatus(errno, absl::StrCat("bind ", ip));
    }
    if (::listen(fd.get(), kBacklog) != 0) return sys::ErrnoToStatus(errno, "listen");
    socklen_t len = sizeof(addr);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return sys::ErrnoToStatus(errno, "getsockname");
    }
    s->addresses_.push_back(addr);
    s->listeners_.push_back(std::move(fd));
  }
  s->stop_.Reset(::eventfd(0, EFD_CLOEXEC));
  if (!s->stop_.valid()) return sys::ErrnoToStatus(errno, "eventfd");

  const int threads = std::clamp(options.threads, 1, static_cast<int>(s->listeners_.size()));
  s->workers_.resize(static_cast<size_t>(threads));
  for (size_t w = 0; w < s->workers_.size(); ++w) {
    Worker& worker = s->workers_[w];
    worker.epoll.Reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!worker.epoll.valid()) return sys::ErrnoToStatus(errno, "epoll_create1");
    if (absl::Status st = AddToEpoll(worker.epoll.get(), s->stop_.get()); !st.ok()) return st;
    for (size_t i = w; i < s->listeners_.size(); i += s->workers_.size()) {
      if (absl::Status st = AddToEpoll(worker.epoll.get(), s->listeners_[i].get()); !st.ok()) {
        return st;
      }
    }
  }
  // Threads start only once every fd is in place: an error above returns before any thread runs,
  // so the destructor never has to join a thread that watches a half-built epoll set.
  for (Worker& worker : s->workers_) {
    worker.thread = std::thread([raw = s.get(), fd = worker.epoll.get()] { raw->Run(fd); });
  }
  return s;
}

AcceptCloseServer::~AcceptCloseServer() {
  if (stop_.valid()) {
    uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof(one));
  }
  for (Worker& worker : workers_) {
    if (worker.thread.joinable()) worker.thread.join();
  }
}

void AcceptCloseServer::Run(int epoll_fd) {
  epoll_event events[kMaxEvents];
  while (true) {
    int n = ::epoll_wait(epoll_fd, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == stop_.get()) return;
      Drain(events[i].data.fd);
    }
  }
}

void AcceptCloseServer::Drain(int listener) {
  static constexpr char kByte = 'x';
  while (true) {
    int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return;  // EAGAIN: queue drained; anything else: the client already gave up
    if (payload_) (void)!::send(conn, &kByte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    // A plain close: the client closes with RST, which frees this side without TIME_WAIT.
    ::close(conn);
    accepted_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace sockmesh::bench
