// SPDX-License-Identifier: Apache-2.0
#include "services/echo/echo_session.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "services/echo/http_message.h"

namespace sockmesh::echo {
namespace {

// Paths and names come from the network and the command line and need not be UTF-8; dump() would
// throw on them by default, so invalid bytes are replaced instead.
std::string ToJson(const nlohmann::ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string ErrorBody(std::string_view message) {
  return ToJson({{"error", std::string(message)}});
}

// The number N of a "/bytes/N" path: decimal digits only, at most EchoSession::kMaxPayloadBytes.
std::optional<size_t> PayloadSize(std::string_view digits) {
  if (digits.empty() || digits.size() > 9) return std::nullopt;
  size_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  if (n > EchoSession::kMaxPayloadBytes) return std::nullopt;
  return n;
}

}  // namespace

EchoSession::EchoSession(std::string backend_name) : name_(std::move(backend_name)) {}

void EchoSession::OnData(std::string_view data) {
  if (closing_) return;
  input_.append(data);
  Process();
}

void EchoSession::OnEndOfInput() {
  if (closing_) return;
  // An unfinished HTTP request gets no answer: there is no complete request to answer.
  if (mode_ != Mode::kHttp && consumed_ < input_.size()) {
    EchoLine(std::string_view(input_).substr(consumed_), "\n");
  }
  input_.clear();
  consumed_ = 0;
  closing_ = true;
}

void EchoSession::Process() {
  while (!closing_) {
    if (mode_ == Mode::kHttp && http_state_ == HttpState::kBody) {
      if (!SkipBody()) break;
      continue;
    }
    const std::string_view pending = std::string_view(input_).substr(consumed_);
    const size_t newline = pending.find('\n');
    if (newline == std::string_view::npos) {
      if (pending.size() < kMaxLineBytes) break;
      HandleOverlongLine(pending.substr(0, kMaxLineBytes));
      continue;
    }
    std::string_view line = pending.substr(0, newline);
    consumed_ += newline + 1;
    const bool crlf = !line.empty() && line.back() == '\r';
    if (crlf) line.remove_suffix(1);
    HandleLine(line, crlf ? "\r\n" : "\n");
  }
  input_.erase(0, consumed_);
  consumed_ = 0;
}

bool EchoSession::SkipBody() {
  const uint64_t available = input_.size() - consumed_;
  const uint64_t n = std::min(body_remaining_, available);
  consumed_ += n;
  body_remaining_ -= n;
  if (body_remaining_ > 0) return false;
  http_state_ = HttpState::kRequestLine;
  return true;
}

void EchoSession::HandleLine(std::string_view line, std::string_view eol) {
  if (mode_ == Mode::kUndecided) {
    mode_ = ParseRequestLine(line) ? Mode::kHttp : Mode::kLines;
  }
  if (mode_ == Mode::kLines) {
    EchoLine(line, eol);
  } else {
    HandleHttpLine(line);
  }
}

void EchoSession::HandleOverlongLine(std::string_view partial) {
  if (mode_ == Mode::kHttp) {
    Reject(431, "Request Header Fields Too Large", "request head too large");
    return;
  }
  mode_ = Mode::kLines;
  EchoLine(partial, "\n");
  consumed_ += partial.size();
}

void EchoSession::HandleHttpLine(std::string_view line) {
  head_bytes_ += line.size();
  if (head_bytes_ > kMaxLineBytes) {
    Reject(431, "Request Header Fields Too Large", "request head too large");
    return;
  }
  if (http_state_ == HttpState::kRequestLine) {
    if (line.empty()) return;  // RFC 9112 2.2: ignore blank lines before a request line.
    std::optional<HttpRequestHead> head = ParseRequestLine(line);
    if (!head) {
      Reject(400, "Bad Request", "malformed request line");
      return;
    }
    request_ = std::move(*head);
    http_state_ = HttpState::kHeaders;
    return;
  }
  if (line.empty()) {
    FinishRequestHead();
  } else if (!ApplyHeaderLine(line, request_)) {
    Reject(400, "Bad Request", "malformed header line");
  }
}

void EchoSession::FinishRequestHead() {
  head_bytes_ = 0;
  // Without chunked decoding the end of such a body cannot be found, so the connection cannot be
  // reused safely.
  if (request_.has_transfer_encoding) {
    Reject(501, "Not Implemented", "Transfer-Encoding is not supported");
    return;
  }
  if (request_.bad_content_length) {
    Reject(400, "Bad Request", "invalid Content-Length");
    return;
  }
  const bool keep_alive = request_.KeepAlive();
  HttpResponse response;
  if (request_.method == "GET" || request_.method == "HEAD") {
    response = AnswerGet();
  } else {
    response.status = 405;
    response.reason = "Method Not Allowed";
    response.body = ErrorBody("method not allowed");
    response.allow = "GET, HEAD";
  }
  Respond(response, keep_alive, request_.method != "HEAD");
  body_remaining_ = request_.content_length.value_or(0);
  http_state_ = body_remaining_ > 0 ? HttpState::kBody : HttpState::kRequestLine;
}

HttpResponse EchoSession::AnswerGet() const {
  const std::string_view path = request_.Path();
  HttpResponse response;
  constexpr std::string_view kBytesPrefix = "/bytes/";
  if (path.substr(0, kBytesPrefix.size()) == kBytesPrefix) {
    if (std::optional<size_t> size = PayloadSize(path.substr(kBytesPrefix.size()))) {
      response.body.assign(*size, 'x');
      response.content_type = "application/octet-stream";
    } else {
      response.status = 400;
      response.reason = "Bad Request";
      response.body = ErrorBody(absl::StrCat("/bytes/N: N must be a number of bytes from 0 to ",
                                             kMaxPayloadBytes, ", not '",
                                             std::string(path.substr(kBytesPrefix.size())), "'"));
    }
  } else if (path == "/health") {
    response.body = ToJson({{"status", "ok"}, {"service", "echo"}});
  } else {
    response.body = ToJson({{"service", "echo"}, {"backend", name_}, {"path", std::string(path)}});
  }
  return response;
}

void EchoSession::EchoLine(std::string_view line, std::string_view eol) {
  output_.append(name_).append(": ").append(line).append(eol);
}

void EchoSession::Reject(int status, std::string_view reason, std::string_view message) {
  HttpResponse response;
  response.status = status;
  response.reason = reason;
  response.body = ErrorBody(message);
  Respond(response, /*keep_alive=*/false);
}

void EchoSession::Respond(const HttpResponse& response, bool keep_alive, bool include_body) {
  output_ += SerializeResponse(response, keep_alive, include_body);
  if (!keep_alive) closing_ = true;
}

}  // namespace sockmesh::echo
