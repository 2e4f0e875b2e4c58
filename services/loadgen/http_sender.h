// SPDX-License-Identifier: Apache-2.0
// HTTP/1.1 GET for the load generator, one keep-alive connection per worker (re-opened when the
// server closes it or a request fails). Responses are framed by Content-Length; a 2xx status is
// success.
#ifndef SOCKMESH_SERVICES_LOADGEN_HTTP_SENDER_H_
#define SOCKMESH_SERVICES_LOADGEN_HTTP_SENDER_H_

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "services/loadgen/request_sender.h"

namespace sockmesh::loadgen {

struct HttpResponseHead {
  int status = 0;
  size_t content_length = 0;
  bool close = false;  // "Connection: close"
};

// Parses a response head (status line and headers, without the blank line). InvalidArgument for
// anything but "HTTP/1.x NNN ..." with a Content-Length (chunked bodies are not supported).
absl::StatusOr<HttpResponseHead> ParseResponseHead(std::string_view head);

// `address` is "A.B.C.D:PORT" or "[V6]:PORT" (numeric); `path` like "/health". InvalidArgument for
// an address that is not one. With `connection_per_request` every request says "Connection:
// close", so each one opens (and the server closes) a connection: a load of new connections.
absl::StatusOr<SenderFactory> HttpSenderFactory(std::string address, std::string path,
                                                std::chrono::milliseconds timeout,
                                                bool connection_per_request = false);

}  // namespace sockmesh::loadgen

#endif  // SOCKMESH_SERVICES_LOADGEN_HTTP_SENDER_H_
