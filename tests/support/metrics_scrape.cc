// SPDX-License-Identifier: Apache-2.0
#include "tests/support/metrics_scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <sstream>

#include "absl/strings/match.h"
#include "userspace/sys/unique_fd.h"

namespace sockmesh::testing {

HttpAnswer HttpGet(uint16_t port, const std::string& path) {
  sys::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return {};
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return {};
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) return {};
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd.get(), buf, sizeof(buf), 0)) > 0) response.append(buf, n);
  size_t body = response.find("\r\n\r\n");
  // "HTTP/1.x NNN ..."
  if (body == std::string::npos || response.size() < 12) return {};
  return HttpAnswer{.status = std::atoi(response.substr(9, 3).c_str()),
                    .body = response.substr(body + 4)};
}

std::string Scrape(uint16_t port) {
  HttpAnswer answer = HttpGet(port, "/metrics");
  return answer.status == 200 ? answer.body : "";
}

std::optional<double> MetricValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, series + " ")) {
      return std::strtod(line.c_str() + series.size(), nullptr);
    }
  }
  return std::nullopt;
}

}  // namespace sockmesh::testing
