// SPDX-License-Identifier: Apache-2.0
// The small subset of HTTP/1.x (RFC 9112) the echo backend speaks: request heads in, JSON
// responses out. Requests are framed by Content-Length only; see EchoSession for the rest.
#ifndef SOCKMESH_SERVICES_ECHO_HTTP_MESSAGE_H_
#define SOCKMESH_SERVICES_ECHO_HTTP_MESSAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sockmesh::echo {

// What the echo backend needs to know about a request: the request line plus framing and
// persistence headers. Other headers are read and ignored.
struct HttpRequestHead {
  std::string method;
  std::string target;
  int minor_version = 1;  // The x of HTTP/1.x.
  std::optional<uint64_t> content_length;
  bool bad_content_length = false;  // Unparsable, or repeated with different values.
  bool has_transfer_encoding = false;
  bool connection_close = false;
  bool connection_keep_alive = false;

  // HTTP/1.1 persists unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive".
  bool KeepAlive() const;
  // The target without its query or fragment.
  std::string_view Path() const;
};

// Parses "METHOD TARGET HTTP/1.x" (no trailing CR/LF). Returns nullopt if `line` is not one, which
// is also how a connection is told apart from a line-echo client.
std::optional<HttpRequestHead> ParseRequestLine(std::string_view line);

// Applies one "Name: value" header line to `head`. Returns false if the line is malformed.
bool ApplyHeaderLine(std::string_view line, HttpRequestHead& head);

struct HttpResponse {
  int status = 200;
  std::string_view reason = "OK";
  std::string body;
  std::string_view content_type = "application/json";
  std::string_view allow;  // Allow header value, for 405; empty for none.
};

// Status line, headers and (unless `include_body` is false, as for HEAD) the body.
std::string SerializeResponse(const HttpResponse& response, bool keep_alive, bool include_body);

}  // namespace sockmesh::echo

#endif  // SOCKMESH_SERVICES_ECHO_HTTP_MESSAGE_H_
