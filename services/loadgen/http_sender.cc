// SPDX-License-Identifier: Apache-2.0
#include "services/loadgen/http_sender.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/echo/socket_address.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::loadgen {
namespace {

// A response head larger than this is an error, not a reason to buffer without bound.
constexpr size_t kMaxHeadBytes = 64 * 1024;

class HttpSender : public RequestSender {
 public:
  HttpSender(echo::SocketAddress address, std::string request, std::chrono::milliseconds timeout,
             bool close_after_response)
      : address_(address),
        request_(std::move(request)),
        timeout_(timeout),
        close_after_response_(close_after_response) {}

  std::string Send(uint64_t) override {
    if (!fd_.valid()) {
      if (std::string error = Connect(); !error.empty()) return error;
    }
    std::string error = Exchange();
    if (!error.empty()) fd_.Reset();  // Whatever state the connection is in, start afresh.
    return error;
  }

  void Prepare() override {
    if (!close_after_response_ && !fd_.valid()) (void)Connect();
  }

 private:
  std::string Connect() {
    fd_.Reset(::socket(address_.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd_.valid()) return absl::StrCat("socket: ", std::strerror(errno));
    const int one = 1;
    ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const timeval tv{static_cast<time_t>(timeout_.count() / 1000),
                     static_cast<suseconds_t>(timeout_.count() % 1000 * 1000)};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::connect(fd_.get(), address_.get(), address_.length) != 0) {
      const std::string error = absl::StrCat("connect: ", std::strerror(errno));
      fd_.Reset();
      return error;
    }
    return "";
  }

  std::string Exchange() {
    std::string_view out = request_;
    while (!out.empty()) {
      const ssize_t n = ::send(fd_.get(), out.data(), out.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return absl::StrCat("send: ", std::strerror(errno));
      out.remove_prefix(static_cast<size_t>(n));
    }
    size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (buffer_.size() > kMaxHeadBytes) return "http: response head too large";
      if (std::string error = ReadMore(); !error.empty()) return error;
    }
    absl::StatusOr<HttpResponseHead> head =
        ParseResponseHead(std::string_view(buffer_).substr(0, head_end));
    if (!head.ok()) return "http: malformed response";
    const size_t total = head_end + 4 + head->content_length;
    while (buffer_.size() < total) {
      if (std::string error = ReadMore(); !error.empty()) return error;
    }
    buffer_.erase(0, total);
    if (head->close || close_after_response_) {
      fd_.Reset();
      buffer_.clear();
    }
    if (head->status < 200 || head->status > 299) return absl::StrCat("http ", head->status);
    return "";
  }

  std::string ReadMore() {
    char chunk[16 * 1024];
    while (true) {
      const ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
      if (n > 0) {
        buffer_.append(chunk, static_cast<size_t>(n));
        return "";
      }
      if (n < 0 && errno == EINTR) continue;
      buffer_.clear();
      if (n == 0) return "recv: connection closed";
      if (errno == EAGAIN || errno == EWOULDBLOCK) return "timeout";
      return absl::StrCat("recv: ", std::strerror(errno));
    }
  }

  const echo::SocketAddress address_;
  const std::string request_;
  const std::chrono::milliseconds timeout_;
  // The request asked for "Connection: close": even a server that keeps the connection open
  // (a proxy may) gets a new connection for the next request.
  const bool close_after_response_;
  sys::UniqueFd fd_;
  std::string buffer_;
};

}  // namespace

absl::StatusOr<HttpResponseHead> ParseResponseHead(std::string_view head) {
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::string_view(head.data(), head.size()), "\r\n");
  HttpResponseHead out;
  const absl::string_view status_line = lines[0];
  if (!absl::StartsWith(status_line, "HTTP/1.") || status_line.size() < 12 ||
      status_line[8] != ' ' || !absl::SimpleAtoi(status_line.substr(9, 3), &out.status)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad status line \"", std::string(status_line), "\""));
  }
  bool has_length = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view name = lines[i].substr(0, colon);
    const absl::string_view value = absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "Content-Length")) {
      has_length = absl::SimpleAtoi(value, &out.content_length);
    } else if (absl::EqualsIgnoreCase(name, "Connection")) {
      out.close = absl::EqualsIgnoreCase(value, "close");
    } else if (absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
      return absl::InvalidArgumentError("Transfer-Encoding responses are not supported");
    }
  }
  // 204 and 304 have no body and may omit the length.
  if (!has_length && out.status != 204 && out.status != 304) {
    return absl::InvalidArgumentError("response without Content-Length");
  }
  return out;
}

absl::StatusOr<SenderFactory> HttpSenderFactory(std::string address, std::string path,
                                                std::chrono::milliseconds timeout,
                                                bool connection_per_request) {
  absl::StatusOr<echo::SocketAddress> parsed = echo::ParseSocketAddress(address);
  if (!parsed.ok()) return parsed.status();
  const std::string request = absl::StrCat(
      "GET ", path, " HTTP/1.1\r\nHost: ", address, "\r\nUser-Agent: sockmesh-loadgen\r\n",
      connection_per_request ? "Connection: close\r\n" : "", "\r\n");
  return SenderFactory([parsed = *parsed, request, timeout,
                        connection_per_request](int) -> std::unique_ptr<RequestSender> {
    return std::make_unique<HttpSender>(parsed, request, timeout, connection_per_request);
  });
}

}  // namespace sockmesh::loadgen
