// SPDX-License-Identifier: Apache-2.0
// sockmesh-echo: the demo backend. Answers HTTP/1.x GETs with a JSON description of itself, echoes
// lines over TCP and datagrams over UDP, each reply tagged with the backend's --name so a client
// can see which backend the mesh picked.
//
// One thread, one level-triggered epoll loop, non-blocking sockets throughout.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/echo/echo_session.h"
#include "services/echo/socket_address.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::echo {
namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;
// A client that sends without reading its replies stops being read past this much pending output,
// so one connection cannot grow the server's memory without bound.
constexpr size_t kOutputHighWaterBytes = 1024 * 1024;
// Per wakeup, so a flood on one socket cannot starve the others.
constexpr int kMaxAcceptsPerWakeup = 64;
constexpr int kMaxDatagramsPerWakeup = 64;
constexpr size_t kMaxDatagramBytes = 65536;
// The epoll flags as uint32_t: the macros name enumerators of a different type.
constexpr uint32_t kReadable = EPOLLIN;
constexpr uint32_t kWritable = EPOLLOUT;

void Log(std::string_view line) { std::cerr << "sockmesh-echo: " << line << std::endl; }

absl::Status ErrnoStatus(std::string_view what) {
  const int saved = errno;
  return absl::ErrnoToStatus(saved, std::string(what));
}

using sockmesh::sys::UniqueFd;

struct Listener {
  UniqueFd fd;
  bool tcp;
  SocketAddress bound;  // The address actually bound: port 0 is resolved.

  std::string Describe() const {
    return absl::StrCat(tcp ? "tcp " : "udp ", FormatSocketAddress(bound));
  }
};

struct Connection {
  Connection(UniqueFd socket, const std::string& name) : fd(std::move(socket)), session(name) {}

  UniqueFd fd;
  EchoSession session;
  bool input_closed = false;
  bool broken = false;        // A socket error: drop without flushing.
  uint32_t epoll_events = 0;  // The interest currently registered.
};

// How the listeners are opened.
struct ListenOptions {
  // Several servers on one TCP address, the kernel spreading connections over them: a process can
  // hold only RLIMIT_NOFILE connections, and the sidecar benchmark holds more than that.
  bool reuse_port = false;
};

absl::StatusOr<Listener> OpenListener(const SocketAddress& address, bool tcp,
                                      const ListenOptions& options) {
  const std::string label = absl::StrCat(tcp ? "tcp " : "udp ", FormatSocketAddress(address));
  UniqueFd fd(
      socket(address.family(), (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(absl::StrCat(label, ": socket"));
  const int one = 1;
  // Restarting the demo must not wait for TIME_WAIT connections of the previous run.
  if (tcp && setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return ErrnoStatus(absl::StrCat(label, ": SO_REUSEADDR"));
  }
  if (tcp && options.reuse_port &&
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return ErrnoStatus(absl::StrCat(label, ": SO_REUSEPORT"));
  }
  // So that [::]:P and 0.0.0.0:P can both be given instead of the first taking both families.
  if (address.family() == AF_INET6 &&
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
    return ErrnoStatus(absl::StrCat(label, ": IPV6_V6ONLY"));
  }
  if (bind(fd.get(), address.get(), address.length) != 0) {
    return ErrnoStatus(absl::StrCat(label, ": bind"));
  }
  if (tcp && listen(fd.get(), SOMAXCONN) != 0) return ErrnoStatus(absl::StrCat(label, ": listen"));
  Listener listener{std::move(fd), tcp, address};
  listener.bound.length = sizeof(listener.bound.storage);
  if (getsockname(listener.fd.get(), listener.bound.get(), &listener.bound.length) != 0) {
    return ErrnoStatus(absl::StrCat(label, ": getsockname"));
  }
  return listener;
}

class EchoServer {
 public:
  // SIGTERM and SIGINT must already be blocked in every thread: they are read from a signalfd.
  static absl::StatusOr<std::unique_ptr<EchoServer>> Create(std::string name,
                                                            const std::vector<SocketAddress>& tcp,
                                                            const std::vector<SocketAddress>& udp,
                                                            const ListenOptions& options);

  // Serves until SIGTERM or SIGINT arrives; returns that signal's name.
  absl::StatusOr<std::string> Run();

  std::string DescribeListeners() const;

 private:
  explicit EchoServer(std::string name) : name_(std::move(name)) {}

  absl::Status Watch(int fd, uint32_t events, int op = EPOLL_CTL_ADD);
  absl::Status AddListener(const SocketAddress& address, bool tcp, const ListenOptions& options);
  const Listener* FindListener(int fd) const;
  void AcceptConnections(const Listener& listener);
  void SetAccepting(bool accepting);
  void AnswerDatagrams(const Listener& listener);
  void OnConnectionEvent(int fd, uint32_t events);
  void ReadOnce(Connection& connection);
  void Flush(Connection& connection);
  void UpdateInterest(Connection& connection);
  void CloseConnection(int fd);
  std::string ReadSignal();

  std::string name_;
  UniqueFd epoll_;
  UniqueFd signals_;
  std::vector<Listener> listeners_;
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
  bool accepting_ = true;
  std::vector<char> buffer_ = std::vector<char>(kMaxDatagramBytes);
};

absl::StatusOr<std::unique_ptr<EchoServer>> EchoServer::Create(
    std::string name, const std::vector<SocketAddress>& tcp, const std::vector<SocketAddress>& udp,
    const ListenOptions& options) {
  std::unique_ptr<EchoServer> server(new EchoServer(std::move(name)));
  server->epoll_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  if (!server->epoll_.valid()) return ErrnoStatus("epoll_create1");
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  server->signals_ = UniqueFd(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!server->signals_.valid()) return ErrnoStatus("signalfd");
  if (absl::Status s = server->Watch(server->signals_.get(), kReadable); !s.ok()) return s;
  for (const SocketAddress& address : tcp) {
    if (absl::Status s = server->AddListener(address, true, options); !s.ok()) return s;
  }
  for (const SocketAddress& address : udp) {
    if (absl::Status s = server->AddListener(address, false, options); !s.ok()) return s;
  }
  return server;
}

absl::Status EchoServer::Watch(int fd, uint32_t events, int op) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  if (epoll_ctl(epoll_.get(), op, fd, &event) != 0) return ErrnoStatus("epoll_ctl");
  return absl::OkStatus();
}

absl::Status EchoServer::AddListener(const SocketAddress& address, bool tcp,
                                     const ListenOptions& options) {
  absl::StatusOr<Listener> listener = OpenListener(address, tcp, options);
  if (!listener.ok()) return listener.status();
  if (absl::Status s = Watch(listener->fd.get(), kReadable); !s.ok()) return s;
  listeners_.push_back(*std::move(listener));
  return absl::OkStatus();
}

std::string EchoServer::DescribeListeners() const {
  return absl::StrJoin(listeners_, ", ", [](std::string* out, const Listener& listener) {
    out->append(listener.Describe());
  });
}

const Listener* EchoServer::FindListener(int fd) const {
  for (const Listener& listener : listeners_) {
    if (listener.fd.get() == fd) return &listener;
  }
  return nullptr;
}

absl::StatusOr<std::string> EchoServer::Run() {
  std::vector<epoll_event> events(256);
  while (true) {
    const int n = epoll_wait(epoll_.get(), events.data(), events.size(), -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("epoll_wait");
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == signals_.get()) return ReadSignal();
      if (const Listener* listener = FindListener(fd); listener != nullptr) {
        listener->tcp ? AcceptConnections(*listener) : AnswerDatagrams(*listener);
      } else {
        OnConnectionEvent(fd, events[i].events);
      }
    }
  }
}

std::string EchoServer::ReadSignal() {
  signalfd_siginfo info{};
  if (read(signals_.get(), &info, sizeof(info)) != sizeof(info)) return "a signal";
  return sigabbrev_np(static_cast<int>(info.ssi_signo)) != nullptr
             ? absl::StrCat("SIG", sigabbrev_np(static_cast<int>(info.ssi_signo)))
             : "a signal";
}

void EchoServer::AcceptConnections(const Listener& listener) {
  for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
    UniqueFd fd(accept4(listener.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors or memory: the pending connection would wake us in a tight loop, so
      // stop accepting until a connection closes.
      Log(absl::StrCat(listener.Describe(), ": accept: ", std::strerror(errno),
                       "; pausing accepts until a connection closes"));
      SetAccepting(false);
      return;
    }
    const int one = 1;
    // Replies are small and latency is what the benchmarks measure.
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const int raw = fd.get();
    auto connection = std::make_unique<Connection>(std::move(fd), name_);
    connection->epoll_events = kReadable;
    if (!Watch(raw, kReadable).ok()) continue;  // Dropping the connection closes it.
    connections_[raw] = std::move(connection);
  }
}

void EchoServer::SetAccepting(bool accepting) {
  if (accepting_ == accepting) return;
  accepting_ = accepting;
  for (const Listener& listener : listeners_) {
    if (listener.tcp)
      Watch(listener.fd.get(), accepting ? kReadable : 0u, EPOLL_CTL_MOD).IgnoreError();
  }
}

void EchoServer::AnswerDatagrams(const Listener& listener) {
  for (int i = 0; i < kMaxDatagramsPerWakeup; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof(peer);
    const ssize_t n = recvfrom(listener.fd.get(), buffer_.data(), buffer_.size(), 0,
                               reinterpret_cast<sockaddr*>(&peer), &peer_length);
    if (n < 0) return;  // EAGAIN, or an error a datagram socket can shrug off.
    std::string reply = absl::StrCat(name_, ": ");
    reply.append(buffer_.data(), n);
    // UDP is lossy anyway: a reply that does not fit or finds a full buffer is dropped.
    sendto(listener.fd.get(), reply.data(), reply.size(), MSG_DONTWAIT,
           reinterpret_cast<sockaddr*>(&peer), peer_length);
  }
}

void EchoServer::OnConnectionEvent(int fd, uint32_t events) {
  auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  Connection& connection = *it->second;
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && (connection.epoll_events & EPOLLIN) != 0) {
    ReadOnce(connection);
  }
  if (!connection.broken) Flush(connection);
  const bool finished = connection.session.output().empty() &&
                        (connection.input_closed || connection.session.closing());
  if (connection.broken || finished) {
    CloseConnection(fd);
  } else {
    UpdateInterest(connection);
  }
}

// One read per wakeup keeps busy connections from starving the rest; level triggering brings us
// back for whatever is left.
void EchoServer::ReadOnce(Connection& connection) {
  const ssize_t n = recv(connection.fd.get(), buffer_.data(), kReadChunkBytes, 0);
  if (n > 0) {
    connection.session.OnData(std::string_view(buffer_.data(), n));
  } else if (n == 0) {
    connection.input_closed = true;
    connection.session.OnEndOfInput();
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    connection.broken = true;
  }
}

void EchoServer::Flush(Connection& connection) {
  std::string& output = connection.session.output();
  while (!output.empty()) {
    // MSG_NOSIGNAL: a peer that went away is a per-connection error, not a reason to die.
    const ssize_t n = send(connection.fd.get(), output.data(), output.size(), MSG_NOSIGNAL);
    if (n > 0) {
      output.erase(0, n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else if (errno != EINTR) {
      connection.broken = true;
      return;
    }
  }
}

void EchoServer::UpdateInterest(Connection& connection) {
  const size_t pending = connection.session.output().size();
  const bool want_input =
      !connection.input_closed && !connection.session.closing() && pending < kOutputHighWaterBytes;
  const uint32_t events = (want_input ? kReadable : 0u) | (pending > 0 ? kWritable : 0u);
  if (events == connection.epoll_events) return;
  if (Watch(connection.fd.get(), events, EPOLL_CTL_MOD).ok()) {
    connection.epoll_events = events;
  } else {
    CloseConnection(connection.fd.get());
  }
}

void EchoServer::CloseConnection(int fd) {
  connections_.erase(fd);  // Closing the descriptor also removes it from the epoll set.
  SetAccepting(true);
}

// Lets the server hold as many connections as the hard limit allows, not just the default 1024.
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

absl::StatusOr<std::vector<SocketAddress>> ParseAll(const std::vector<std::string>& flags) {
  std::vector<SocketAddress> addresses;
  for (const std::string& flag : flags) {
    absl::StatusOr<SocketAddress> address = ParseSocketAddress(flag);
    if (!address.ok()) return address.status();
    addresses.push_back(*address);
  }
  return addresses;
}

int Serve(const std::string& name, const std::vector<std::string>& tcp_flags,
          const std::vector<std::string>& udp_flags, const ListenOptions& options) {
  absl::StatusOr<std::vector<SocketAddress>> tcp = ParseAll(tcp_flags);
  absl::StatusOr<std::vector<SocketAddress>> udp = tcp.ok() ? ParseAll(udp_flags) : tcp;
  if (!udp.ok()) {
    Log(std::string(udp.status().message()));
    return 2;
  }
  if (tcp->empty() && udp->empty()) {
    Log("nothing to serve: give at least one --listen or --udp");
    return 2;
  }
  // Blocked before anything else so that the signals are only ever seen through the signalfd.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  RaiseOpenFileLimit();

  absl::StatusOr<std::unique_ptr<EchoServer>> server =
      EchoServer::Create(name, *tcp, *udp, options);
  if (!server.ok()) {
    Log(absl::StrCat("cannot start: ", server.status().ToString()));
    return 1;
  }
  Log(absl::StrCat("backend \"", name, "\" listening on ", (*server)->DescribeListeners()));
  absl::StatusOr<std::string> stopped_by = (*server)->Run();
  if (!stopped_by.ok()) {
    Log(absl::StrCat("stopped: ", stopped_by.status().ToString()));
    return 1;
  }
  Log(absl::StrCat("received ", *stopped_by, ", exiting"));
  return 0;
}

}  // namespace
}  // namespace sockmesh::echo

int main(int argc, char** argv) {
  CLI::App app{
      "sockmesh-echo: demo backend. TCP: answers HTTP/1.1 GET with JSON naming this backend "
      "(GET /health: health document), otherwise echoes each line as \"NAME: line\". "
      "UDP: answers each datagram with \"NAME: payload\"."};
  std::string name;
  std::vector<std::string> tcp;
  std::vector<std::string> udp;
  sockmesh::echo::ListenOptions options;
  app.add_option("--name", name, "Backend name put in every reply")->required();
  app.add_option("--listen", tcp, "TCP listen address, A.B.C.D:PORT or [IPV6]:PORT (repeatable)")
      ->type_name("ADDR:PORT");
  app.add_option("--udp", udp, "UDP listen address, A.B.C.D:PORT or [IPV6]:PORT (repeatable)")
      ->type_name("ADDR:PORT");
  app.add_flag("--reuse-port", options.reuse_port,
               "Set SO_REUSEPORT on the TCP listeners, so that several sockmesh-echo processes "
               "share an address and the kernel spreads connections over them");
  CLI11_PARSE(app, argc, argv);
  return sockmesh::echo::Serve(name, tcp, udp, options);
}
