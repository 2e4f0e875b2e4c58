// SPDX-License-Identifier: Apache-2.0
#include "services/echo/http_message.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace sockmesh::echo {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::ranges::equal(
      a, b, [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 token characters, the alphabet of methods and header names.
bool IsToken(std::string_view s) {
  return !s.empty() && std::ranges::all_of(s, [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

void ApplyConnection(std::string_view value, HttpRequestHead& head) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view option = Trim(value.substr(0, comma));
    if (EqualsIgnoreCase(option, "close")) head.connection_close = true;
    if (EqualsIgnoreCase(option, "keep-alive")) head.connection_keep_alive = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

void ApplyContentLength(std::string_view value, HttpRequestHead& head) {
  uint64_t length = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() ||
      (head.content_length && *head.content_length != length)) {
    head.bad_content_length = true;
    return;
  }
  head.content_length = length;
}

}  // namespace

bool HttpRequestHead::KeepAlive() const {
  if (connection_close) return false;
  return minor_version >= 1 || connection_keep_alive;
}

std::string_view HttpRequestHead::Path() const {
  std::string_view path = target;
  return path.substr(0, path.find_first_of("?#"));
}

std::optional<HttpRequestHead> ParseRequestLine(std::string_view line) {
  const size_t first = line.find(' ');
  const size_t last = line.rfind(' ');
  if (first == std::string_view::npos || first == last) return std::nullopt;
  const std::string_view method = line.substr(0, first);
  const std::string_view target = line.substr(first + 1, last - first - 1);
  const std::string_view version = line.substr(last + 1);
  if (!IsToken(method) || target.empty() || target.find(' ') != std::string_view::npos) {
    return std::nullopt;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return std::nullopt;
  HttpRequestHead head;
  head.method = method;
  head.target = target;
  head.minor_version = version.back() - '0';
  return head;
}

bool ApplyHeaderLine(std::string_view line, HttpRequestHead& head) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) return false;
  const std::string_view name = line.substr(0, colon);
  const std::string_view value = Trim(line.substr(colon + 1));
  if (EqualsIgnoreCase(name, "Connection")) ApplyConnection(value, head);
  if (EqualsIgnoreCase(name, "Content-Length")) ApplyContentLength(value, head);
  if (EqualsIgnoreCase(name, "Transfer-Encoding")) head.has_transfer_encoding = true;
  return true;
}

std::string SerializeResponse(const HttpResponse& response, bool keep_alive, bool include_body) {
  std::string out = absl::StrCat("HTTP/1.1 ", response.status, " ", std::string(response.reason),
                                 "\r\nContent-Type: ", std::string(response.content_type),
                                 "\r\nContent-Length: ", response.body.size(),
                                 "\r\nConnection: ", keep_alive ? "keep-alive" : "close", "\r\n");
  if (!response.allow.empty())
    absl::StrAppend(&out, "Allow: ", std::string(response.allow), "\r\n");
  out += "\r\n";
  if (include_body) out += response.body;
  return out;
}

}  // namespace sockmesh::echo
