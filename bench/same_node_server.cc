// SPDX-License-Identifier: Apache-2.0
#include "bench/same_node_server.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::bench {
namespace {

// Deep enough that a burst of connects never has a SYN dropped (a 1 s retransmit stall).
constexpr int kBacklog = 4096;
constexpr int kMaxEvents = 64;
constexpr size_t kIoBytes = 256 * 1024;

// Response bytes are all the same, so any slice of this buffer is a valid piece of a response and
// a connection only needs to remember how many bytes it still owes.
const std::array<char, kIoBytes>& ResponseBytes() {
  static const std::array<char, kIoBytes> bytes = [] {
    std::array<char, kIoBytes> b;
    b.fill('r');
    return b;
  }();
  return bytes;
}

}  // namespace

struct SameNodeServer::Socket {
  sys::UniqueFd fd;
  Kind kind = Kind::kRequestResponse;
  bool listener = false;
  bool watching_writable = false;
  uint64_t received = 0;  // request bytes read
  uint64_t answered = 0;  // requests answered
  uint64_t owed = 0;      // response bytes not yet sent
};

SameNodeServer::SameNodeServer(const Options& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<SameNodeServer>> SameNodeServer::Create(const Options& options) {
  if (options.request_bytes == 0 || options.response_bytes == 0) {
    return absl::InvalidArgumentError("request and response sizes must be positive");
  }
  std::unique_ptr<SameNodeServer> s(new SameNodeServer(options));
  s->epoll_.Reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!s->epoll_.valid()) return sys::ErrnoToStatus(errno, "epoll_create1");
  s->stop_.Reset(::eventfd(0, EFD_CLOEXEC));
  if (!s->stop_.valid()) return sys::ErrnoToStatus(errno, "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the stop event
  if (::epoll_ctl(s->epoll_.get(), EPOLL_CTL_ADD, s->stop_.get(), &ev) != 0) {
    return sys::ErrnoToStatus(errno, "epoll_ctl stop");
  }
  return s;
}

absl::StatusOr<sockaddr_in> SameNodeServer::Listen(const std::string& ip, Kind kind) {
  if (thread_.joinable()) return absl::FailedPreconditionError("Listen() after Start()");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("bad IPv4 address ", ip));
  }
  auto l = std::make_unique<Socket>();
  l->fd.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!l->fd.valid()) return sys::ErrnoToStatus(errno, "socket");
  l->kind = kind;
  l->listener = true;
  int one = 1;
  ::setsockopt(l->fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(l->fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return sys::ErrnoToStatus(errno, absl::StrCat("bind ", ip));
  }
  if (::listen(l->fd.get(), kBacklog) != 0) return sys::ErrnoToStatus(errno, "listen");
  socklen_t len = sizeof(addr);
  if (::getsockname(l->fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return sys::ErrnoToStatus(errno, "getsockname");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = l.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, l->fd.get(), &ev) != 0) {
    return sys::ErrnoToStatus(errno, "epoll_ctl listener");
  }
  listeners_.push_back(std::move(l));
  return addr;
}

absl::Status SameNodeServer::Start() {
  if (thread_.joinable()) return absl::FailedPreconditionError("already started");
  thread_ = std::thread([this] {
    if (options_.cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(options_.cpu, &set);
      (void)::sched_setaffinity(0, sizeof(set), &set);
    }
    Run();
  });
  return absl::OkStatus();
}

SameNodeServer::~SameNodeServer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof(one));
    thread_.join();
  }
}

void SameNodeServer::Run() {
  epoll_event events[kMaxEvents];
  while (true) {
    int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      errors_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    for (int i = 0; i < n; ++i) {
      auto* sock = static_cast<Socket*>(events[i].data.ptr);
      if (sock == nullptr) return;  // stop
      if (sock->listener) {
        Accept(*sock);
        continue;
      }
      bool alive = true;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) alive = Read(*sock);
      if (alive && (events[i].events & EPOLLOUT)) alive = Flush(*sock);
      // A one-shot connection is done once its answer is out: the server closes first (the
      // client then closes with RST, so neither side keeps a TIME_WAIT).
      if (alive && sock->kind == Kind::kOneShot && sock->answered > 0 && sock->owed == 0) {
        alive = false;
      }
      if (!alive) Close(sock);
    }
  }
}

void SameNodeServer::Accept(Socket& listener) {
  while (true) {
    int fd = ::accept4(listener.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: drained; anything else: the client already gave up
    auto conn = std::make_unique<Socket>();
    conn->fd.Reset(fd);
    conn->kind = listener.kind;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = conn.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      continue;  // conn closes its fd
    }
    Socket* raw = conn.get();
    conns_.emplace(raw, std::move(conn));
  }
}

bool SameNodeServer::Read(Socket& conn) {
  static char buf[kIoBytes];
  while (true) {
    ssize_t r = ::recv(conn.fd.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (r == 0) return false;
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno != ECONNRESET) errors_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (conn.kind == Kind::kSink) {
      sink_bytes_.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
      continue;
    }
    conn.received += static_cast<uint64_t>(r);
  }
  if (conn.kind == Kind::kSink) return true;
  const uint64_t complete = conn.received / options_.request_bytes;
  if (complete > conn.answered) {
    conn.owed += (complete - conn.answered) * options_.response_bytes;
    conn.answered = complete;
  }
  return Flush(conn);
}

bool SameNodeServer::Flush(Socket& conn) {
  while (conn.owed > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(conn.owed, kIoBytes));
    ssize_t w = ::send(conn.fd.get(), ResponseBytes().data(), n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno != ECONNRESET && errno != EPIPE) errors_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    conn.owed -= static_cast<uint64_t>(w);
  }
  WatchWritable(conn, conn.owed > 0);
  return true;
}

void SameNodeServer::WatchWritable(Socket& conn, bool on) {
  if (conn.watching_writable == on) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.ptr = &conn;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, conn.fd.get(), &ev) == 0) {
    conn.watching_writable = on;
  } else {
    errors_.fetch_add(1, std::memory_order_relaxed);
  }
}

void SameNodeServer::Close(Socket* conn) {
  // Removing it from the epoll set first: a closed fd number can be reused at once.
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, conn->fd.get(), nullptr);
  conns_.erase(conn);
}

}  // namespace sockmesh::bench
