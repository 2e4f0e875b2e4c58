// SPDX-License-Identifier: Apache-2.0
#include "bench/same_node_load.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/open_loop_schedule.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::bench {
namespace {

using sys::UniqueFd;

constexpr size_t kIoBytes = 256 * 1024;

char* IoBuffer() {
  static thread_local std::array<char, kIoBytes> buf{};
  return buf.data();
}

uint64_t ToNs(double seconds) { return static_cast<uint64_t>(seconds * 1e9); }

// The open-loop client sleeps until the next send time; the default 50 us timer slack would add up
// to 50 us to every wake-up (and to the measured latency).
void TightTimerSlack() { ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); }

// Waits until `fd` has one of `events` or `deadline_ns` passes (false then, or on error).
bool WaitFd(int fd, short events, uint64_t deadline_ns) {
  while (true) {
    const uint64_t now = MonotonicNs();
    if (now >= deadline_ns) return false;
    const uint64_t left = deadline_ns - now;
    const timespec ts{.tv_sec = static_cast<time_t>(left / 1'000'000'000),
                      .tv_nsec = static_cast<long>(left % 1'000'000'000)};
    pollfd p{.fd = fd, .events = events, .revents = 0};
    int n = ::ppoll(&p, 1, &ts, nullptr);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// A connected, non-blocking TCP socket to `target` with TCP_NODELAY; "" or what failed in `error`.
// `rst_close`: SO_LINGER 0, so close() sends RST and leaves no TIME_WAIT.
UniqueFd Dial(const sockaddr_in& target, double timeout_s, bool rst_close, std::string* error) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    *error = absl::StrCat("socket: ", strerror(errno));
    return fd;
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (rst_close) {
    const linger lg{.l_onoff = 1, .l_linger = 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  // SO_SNDTIMEO bounds a blocking connect(): a lost SYN would otherwise wait ~2 minutes.
  const timeval tv{
      .tv_sec = static_cast<time_t>(timeout_s),
      .tv_usec = static_cast<suseconds_t>((timeout_s - static_cast<int>(timeout_s)) * 1e6)};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) {
    *error = absl::StrCat("connect: ", strerror(errno));
    fd.Reset();
    return fd;
  }
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
  return fd;
}

// Sends `n` bytes (content irrelevant) before `deadline_ns`; "" or what went wrong.
std::string SendBytes(int fd, size_t n, uint64_t deadline_ns) {
  const char* buf = IoBuffer();
  size_t sent = 0;
  while (sent < n) {
    ssize_t w = ::send(fd, buf, std::min(n - sent, kIoBytes), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
      sent += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (WaitFd(fd, POLLOUT, deadline_ns)) continue;
      return absl::StrCat("send stalled after ", sent, " of ", n, " bytes");
    }
    return absl::StrCat("send: ", strerror(errno));
  }
  return "";
}

// Receives exactly `n` bytes before `deadline_ns`. recv() first and poll() only on EAGAIN (an
// event loop's order): a spurious wake-up without data is just another EAGAIN.
std::string RecvBytes(int fd, size_t n, uint64_t deadline_ns) {
  char* buf = IoBuffer();
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, buf, std::min(n - got, kIoBytes), MSG_DONTWAIT);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return absl::StrCat("EOF after ", got, " of ", n, " response bytes");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (WaitFd(fd, POLLIN, deadline_ns)) continue;
      return absl::StrCat("response stalled after ", got, " of ", n, " bytes");
    }
    return absl::StrCat("recv: ", strerror(errno));
  }
  return "";
}

}  // namespace

uint64_t MonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

void LoadResult::Fail(const std::string& what) {
  ++errors;
  if (first_error.empty()) first_error = what;
}

LoadResult ClosedLoop(const sockaddr_in& target, double seconds, const LoadOptions& options) {
  LoadResult r;
  std::string err;
  UniqueFd fd = Dial(target, options.stall_timeout_s, /*rst_close=*/true, &err);
  if (!fd.valid()) {
    r.Fail(err);
    return r;
  }
  const uint64_t stall = ToNs(options.stall_timeout_s);
  const uint64_t start = MonotonicNs();
  const uint64_t end = start + ToNs(seconds);
  uint64_t now = start;
  while (now < end && !options.stopped()) {
    const uint64_t t0 = now;
    err = SendBytes(fd.get(), options.request_bytes, t0 + stall);
    if (err.empty()) err = RecvBytes(fd.get(), options.response_bytes, t0 + stall);
    now = MonotonicNs();
    if (!err.empty()) {
      r.Fail(err);
      break;  // the stream is out of step; the connection is no use any more
    }
    r.latency_ns.Add(now - t0);
    ++r.completed;
  }
  r.seconds = static_cast<double>(now - start) / 1e9;
  return r;
}

LoadResult OpenLoop(const sockaddr_in& target, double rate, int conns, double seconds,
                    const LoadOptions& options) {
  LoadResult r;
  TightTimerSlack();
  std::vector<UniqueFd> fds;
  std::vector<InFlight> flights;
  std::vector<pollfd> pfds;
  for (int i = 0; i < conns; ++i) {
    std::string err;
    fds.push_back(Dial(target, options.stall_timeout_s, /*rst_close=*/true, &err));
    if (!fds.back().valid()) {
      r.Fail(err);
      return r;
    }
    flights.emplace_back(options.response_bytes);
    pfds.push_back({.fd = fds.back().get(), .events = POLLIN, .revents = 0});
  }
  const uint64_t stall = ToNs(options.stall_timeout_s);
  // The first request 1 ms from now, after the set-up above is out of the way.
  const OpenLoopSchedule schedule(MonotonicNs() + 1'000'000, rate, seconds);
  const uint64_t last_due = schedule.total() ? schedule.At(schedule.total() - 1) : 0;
  uint64_t next = 0;  // the next request to send
  uint64_t answered = 0;
  char* buf = IoBuffer();
  while (answered < schedule.total() && !options.stopped()) {
    uint64_t now = MonotonicNs();
    // Send everything that is due. A request of 100 bytes fits a socket buffer that the server
    // keeps draining; a send that cannot complete at once means the data plane stalled.
    for (const uint64_t due = schedule.DueBy(now); next < due; ++next) {
      const size_t c = static_cast<size_t>(next % static_cast<uint64_t>(conns));
      ssize_t w = ::send(fds[c].get(), buf, options.request_bytes, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w != static_cast<ssize_t>(options.request_bytes)) {
        r.Fail(w < 0 ? absl::StrCat("send: ", strerror(errno))
                     : absl::StrCat("short send of ", w, " request bytes"));
        r.seconds = static_cast<double>(now - schedule.At(0)) / 1e9;
        r.completed = answered;
        return r;
      }
      const uint64_t scheduled = schedule.At(next);
      r.send_lag_ns.Add(now - scheduled);
      flights[c].Sent(scheduled);
    }
    // Read what has arrived; the latency clock stops when recv() returns the last byte.
    for (size_t c = 0; c < fds.size(); ++c) {
      if (flights[c].outstanding() == 0) continue;
      while (true) {
        ssize_t n = ::recv(fds[c].get(), buf, kIoBytes, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
          r.Fail(n == 0 ? std::string("server closed a persistent connection")
                        : absl::StrCat("recv: ", strerror(errno)));
          r.seconds = static_cast<double>(MonotonicNs() - schedule.At(0)) / 1e9;
          r.completed = answered;
          return r;
        }
        const uint64_t at = MonotonicNs();
        const bool in_step = flights[c].Received(static_cast<size_t>(n), [&](uint64_t scheduled) {
          r.latency_ns.Add(at - scheduled);
          ++answered;
        });
        if (!in_step) {
          r.Fail("more response bytes than requests");
          r.completed = answered;
          return r;
        }
      }
    }
    now = MonotonicNs();
    uint64_t oldest = UINT64_MAX;
    for (const InFlight& f : flights) {
      if (f.outstanding()) oldest = std::min(oldest, f.oldest());
    }
    if (oldest != UINT64_MAX && now > oldest + stall) {
      r.Fail(absl::StrCat(schedule.total() - answered, " requests unanswered; the oldest for ",
                          (now - oldest) / 1'000'000, " ms"));
      break;
    }
    if (answered == schedule.total()) break;
    // Sleep until the next send is due, or a response arrives, or the stall deadline.
    uint64_t wake = next < schedule.total() ? schedule.At(next) : UINT64_MAX;
    if (oldest != UINT64_MAX) wake = std::min(wake, oldest + stall + 1);
    if (wake <= now) continue;
    const uint64_t left = wake - now;
    const timespec ts{.tv_sec = static_cast<time_t>(left / 1'000'000'000),
                      .tv_nsec = static_cast<long>(left % 1'000'000'000)};
    for (size_t c = 0; c < pfds.size(); ++c) {
      pfds[c].events = flights[c].outstanding() ? POLLIN : 0;
    }
    ::ppoll(pfds.data(), pfds.size(), &ts, nullptr);
  }
  r.completed = answered;
  // The offered load's span: from the first scheduled send to the last (the achieved rate is
  // `completed` over it, so an open loop that kept up reports its target rate).
  r.seconds = static_cast<double>(last_due - schedule.At(0)) / 1e9 + 1 / rate;
  return r;
}

LoadResult Bulk(const sockaddr_in& target, double seconds, size_t chunk, uint64_t window,
                const std::atomic<uint64_t>& received, const LoadOptions& options) {
  LoadResult r;
  std::string err;
  UniqueFd fd = Dial(target, options.stall_timeout_s, /*rst_close=*/false, &err);
  if (!fd.valid()) {
    r.Fail(err);
    return r;
  }
  chunk = std::min(chunk, kIoBytes);
  const char* buf = IoBuffer();
  const uint64_t stall = ToNs(options.stall_timeout_s);
  const uint64_t base = received.load(std::memory_order_relaxed);
  const uint64_t start = MonotonicNs();
  const uint64_t end = start + ToNs(seconds);
  uint64_t sent = 0;
  uint64_t last_progress = start;
  uint64_t now = start;
  while (now < end && !options.stopped()) {
    if (sent - (received.load(std::memory_order_relaxed) - base) > window) {
      ++r.window_waits;
      if (now > last_progress + stall) {
        r.Fail("the server stopped reading (bulk stalled)");
        break;
      }
      ::usleep(20);
      now = MonotonicNs();
      continue;
    }
    ssize_t w = ::send(fd.get(), buf, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
    now = MonotonicNs();
    if (w > 0) {
      sent += static_cast<uint64_t>(w);
      last_progress = now;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!WaitFd(fd.get(), POLLOUT, std::min(end, now + stall)) &&
          MonotonicNs() > last_progress + stall) {
        r.Fail("send stalled (socket never became writable)");
        break;
      }
      now = MonotonicNs();
      continue;
    }
    r.Fail(absl::StrCat("send: ", strerror(errno)));
    break;
  }
  r.completed = received.load(std::memory_order_relaxed) - base;
  r.seconds = static_cast<double>(MonotonicNs() - start) / 1e9;
  return r;
}

LoadResult ConnectHeavy(const sockaddr_in& target, double seconds, const LoadOptions& options) {
  LoadResult r;
  const uint64_t stall = ToNs(options.stall_timeout_s);
  const uint64_t start = MonotonicNs();
  const uint64_t end = start + ToNs(seconds);
  uint64_t now = start;
  while (now < end && !options.stopped()) {
    const uint64_t t0 = now;
    std::string err;
    UniqueFd fd = Dial(target, options.stall_timeout_s, /*rst_close=*/true, &err);
    if (fd.valid()) err = SendBytes(fd.get(), options.request_bytes, t0 + stall);
    if (err.empty()) err = RecvBytes(fd.get(), options.response_bytes, t0 + stall);
    now = MonotonicNs();
    if (!err.empty()) {
      r.Fail(err);
      // Persistent failure (a refused VIP, say) must not spin through thousands of errors.
      if (r.errors >= 100) break;
      continue;
    }
    r.latency_ns.Add(now - t0);
    ++r.completed;
  }
  r.seconds = static_cast<double>(now - start) / 1e9;
  return r;
}

}  // namespace sockmesh::bench
