// SPDX-License-Identifier: Apache-2.0
#include "services/platform/health_server.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "services/echo/http_message.h"
#include "services/echo/socket_address.h"
#include "userspace/log/log.h"

namespace sockmesh::platform {
namespace {

// A request head larger than this is refused (431) rather than buffered without bound.
constexpr size_t kMaxHeadBytes = 16 * 1024;
// A client that sends nothing for this long loses its connection, so idle sockets do not pin
// threads forever.
constexpr int kIdleTimeoutMs = 30'000;

std::string Reply(int status, std::string_view reason, std::string body, bool keep_alive,
                  bool include_body, std::string_view allow = {}) {
  echo::HttpResponse response;
  response.status = status;
  response.reason = reason;
  response.body = std::move(body);
  response.allow = allow;
  return echo::SerializeResponse(response, keep_alive, include_body);
}

std::string ErrorBody(std::string_view message) {
  return nlohmann::json{{"error", std::string(message)}}.dump();
}

bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

HealthReply AnswerHealthRequest(std::string_view service, std::string_view head) {
  std::vector<absl::string_view> split =
      absl::StrSplit(absl::string_view(head.data(), head.size()), "\r\n");
  std::vector<std::string_view> lines;
  for (absl::string_view line : split) lines.emplace_back(line.data(), line.size());
  std::optional<echo::HttpRequestHead> request =
      lines.empty() ? std::nullopt : echo::ParseRequestLine(lines[0]);
  bool headers_ok = request.has_value();
  for (size_t i = 1; headers_ok && i < lines.size(); ++i) {
    if (!lines[i].empty()) headers_ok = echo::ApplyHeaderLine(lines[i], *request);
  }
  // Bodies are not expected on this port; a request that has one (or unclear framing) is refused
  // and the connection closed, so its body is never mistaken for the next request.
  if (!headers_ok || request->bad_content_length || request->has_transfer_encoding ||
      request->content_length.value_or(0) > 0) {
    return {Reply(400, "Bad Request", ErrorBody("malformed or unsupported request"), false, true),
            false};
  }
  const bool keep_alive = request->KeepAlive();
  const bool head_only = request->method == "HEAD";
  if (request->method != "GET" && !head_only) {
    return {Reply(405, "Method Not Allowed", ErrorBody("only GET and HEAD"), keep_alive, true,
                  "GET, HEAD"),
            keep_alive};
  }
  if (request->Path() != "/health") {
    return {Reply(404, "Not Found",
                  ErrorBody(absl::StrCat("no such path: ", std::string(request->Path()))),
                  keep_alive, !head_only),
            keep_alive};
  }
  const std::string body =
      nlohmann::json{{"status", "ok"}, {"service", std::string(service)}}.dump();
  return {Reply(200, "OK", body, keep_alive, !head_only), keep_alive};
}

absl::StatusOr<std::unique_ptr<HealthServer>> HealthServer::Start(std::string service,
                                                                  std::string_view listen) {
  absl::StatusOr<echo::SocketAddress> address = echo::ParseSocketAddress(listen);
  if (!address.ok()) return address.status();
  sys::UniqueFd fd(::socket(address->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "health listener: socket");
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), address->get(), address->length) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("health listener: bind ", std::string(listen)));
  }
  if (::listen(fd.get(), 128) != 0) return absl::ErrnoToStatus(errno, "health listener: listen");
  echo::SocketAddress bound;
  bound.length = sizeof(bound.storage);
  ::getsockname(fd.get(), bound.get(), &bound.length);
  const int port = ntohs(bound.family() == AF_INET6
                             ? reinterpret_cast<const sockaddr_in6*>(bound.get())->sin6_port
                             : reinterpret_cast<const sockaddr_in*>(bound.get())->sin_port);
  return std::unique_ptr<HealthServer>(new HealthServer(std::move(service), std::move(fd), port));
}

HealthServer::HealthServer(std::string service, sys::UniqueFd listener, int port)
    : service_(std::move(service)), listener_(std::move(listener)), port_(port) {
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

HealthServer::~HealthServer() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  all_closed_.wait(lock, [this] { return open_fds_.empty(); });
  lock.unlock();
  acceptor_.join();
}

void HealthServer::AcceptLoop() {
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    // Polled with a timeout rather than blocking in accept(), so stopping needs no signal.
    pollfd pfd{listener_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    open_fds_.push_back(fd);
    std::thread([this, fd] { Serve(fd); }).detach();
  }
}

void HealthServer::Serve(int fd) {
  std::string buffer;
  char chunk[4096];
  bool open = true;
  while (open) {
    const size_t end = buffer.find("\r\n\r\n");
    if (end != std::string::npos) {
      HealthReply reply = AnswerHealthRequest(service_, std::string_view(buffer).substr(0, end));
      buffer.erase(0, end + 4);
      open = SendAll(fd, reply.bytes) && reply.keep_alive;
      continue;
    }
    if (buffer.size() > kMaxHeadBytes) {
      SendAll(fd, Reply(431, "Request Header Fields Too Large", ErrorBody("request head too large"),
                        false, true));
      break;
    }
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, kIdleTimeoutMs) <= 0) break;
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
  }
  std::lock_guard lock(mu_);
  open_fds_.erase(std::find(open_fds_.begin(), open_fds_.end(), fd));
  ::close(fd);
  if (open_fds_.empty()) all_closed_.notify_all();
}

}  // namespace sockmesh::platform
