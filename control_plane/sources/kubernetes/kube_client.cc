// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/kubernetes/kube_client.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sockmesh::sources::kubernetes {
namespace {

// RAII for the curl handle and the header list: a request that fails half-way still frees both.
struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlHeaders = std::unique_ptr<curl_slist, SlistDeleter>;

// A single response may not grow without bound; 256 MiB covers a list of every Pod of a large
// cluster in one page, and pagination keeps pages far smaller.
constexpr size_t kMaxBodyBytes = 256u << 20;
// A watch event is one object; a line longer than this is not a Kubernetes event.
constexpr size_t kMaxLineBytes = 16u << 20;

// What the curl callbacks share with the request.
struct Transfer {
  CURL* curl = nullptr;
  const std::function<bool(std::string_view)>* on_line = nullptr;  // null for plain GET
  const absl::Notification* cancel = nullptr;
  std::string body;     // whole body, or the error body of a failed stream
  std::string pending;  // streamed bytes after the last '\n'
  bool stopped_by_handler = false;
  bool too_large = false;
};

size_t OnWrite(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (t->on_line == nullptr || status != 200) {
    if (t->body.size() + n > kMaxBodyBytes) {
      t->too_large = true;
      return 0;
    }
    t->body.append(data, n);
    return n;
  }
  t->pending.append(data, n);
  size_t start = 0;
  for (size_t nl = t->pending.find('\n'); nl != std::string::npos;
       nl = t->pending.find('\n', start)) {
    const std::string_view line(t->pending.data() + start, nl - start);
    start = nl + 1;
    if (line.empty()) continue;
    if (!(*t->on_line)(line)) {
      t->stopped_by_handler = true;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR, which Perform reports as OK
    }
  }
  t->pending.erase(0, start);
  if (t->pending.size() > kMaxLineBytes) {
    t->too_large = true;
    return 0;
  }
  return n;
}

// Called by curl at least once a second even when no data flows, which bounds how long a
// cancelled watch that is waiting for events takes to notice.
int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->cancel != nullptr && t->cancel->HasBeenNotified() ? 1 : 0;
}

absl::Status CurlError(CURLcode code, const char* detail, absl::string_view url) {
  const std::string what =
      absl::StrCat("GET ", url, ": ", *detail != '\0' ? detail : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(what);
    case CURLE_ABORTED_BY_CALLBACK:
      return absl::CancelledError(what);
    case CURLE_OUT_OF_MEMORY:
      return absl::ResourceExhaustedError(what);
    case CURLE_URL_MALFORMAT:
      return absl::InvalidArgumentError(what);
    default:
      // Connection refused or reset, TLS failures (an unknown CA included), a stream cut short:
      // all are conditions a retry may outlive.
      return absl::UnavailableError(what);
  }
}

}  // namespace

absl::StatusOr<KubeClient> KubeClient::Create(KubeApiConfig config, Options options) {
  if (config.ca_file.empty()) {
    return absl::InvalidArgumentError("Kubernetes API client: a CA file is required");
  }
  // curl_global_init is not thread-safe; once per process, before any handle exists.
  static std::once_flag once;
  static CURLcode init = CURLE_OK;
  std::call_once(once, [] { init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init != CURLE_OK) {
    return absl::InternalError(absl::StrCat("curl_global_init: ", curl_easy_strerror(init)));
  }
  return KubeClient(std::move(config), options);
}

absl::StatusOr<HttpResponse> KubeClient::Get(std::string_view path,
                                             const absl::Notification* cancel) const {
  return Stream(path, options_.request_timeout, nullptr, cancel);
}

absl::StatusOr<HttpResponse> KubeClient::Stream(
    std::string_view path, absl::Duration timeout,
    const std::function<bool(std::string_view line)>& on_line,
    const absl::Notification* cancel) const {
  return Send(path, timeout, on_line, cancel, nullptr);
}

absl::StatusOr<HttpResponse> KubeClient::MergePatch(std::string_view path,
                                                    const std::string& body) const {
  return Send(path, options_.request_timeout, nullptr, nullptr, &body);
}

absl::StatusOr<HttpResponse> KubeClient::Send(
    std::string_view path, absl::Duration timeout,
    const std::function<bool(std::string_view line)>& on_line, const absl::Notification* cancel,
    const std::string* patch_body) const {
  CurlHandle curl(curl_easy_init());
  if (curl == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  absl::StatusOr<std::string> token = ReadToken(config_);
  if (!token.ok()) return token.status();

  const std::string url = absl::StrCat(config_.server, absl::string_view(path.data(), path.size()));
  CurlHeaders headers(curl_slist_append(nullptr, "Accept: application/json"));
  if (headers == nullptr) return absl::ResourceExhaustedError("curl_slist_append failed");
  if (!token->empty()) {
    const std::string auth = absl::StrCat("Authorization: Bearer ", *token);
    // Appending returns the list's head, or null (and leaves the list as it was) on failure.
    if (curl_slist_append(headers.get(), auth.c_str()) == nullptr) {
      return absl::ResourceExhaustedError("curl_slist_append failed");
    }
  }
  if (patch_body != nullptr &&
      curl_slist_append(headers.get(), "Content-Type: application/merge-patch+json") == nullptr) {
    return absl::ResourceExhaustedError("curl_slist_append failed");
  }

  Transfer t;
  t.curl = curl.get();
  t.on_line = on_line ? &on_line : nullptr;
  t.cancel = cancel;
  char error[CURL_ERROR_SIZE] = "";
  const std::string ca = config_.ca_file.string();
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
  // Only the given CA: the system bundle must not vouch for an API server.
  curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM in a multi-threaded process
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  // A peer that vanished without a FIN would otherwise leave a quiet watch hanging until timeout.
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 10L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  if (patch_body != nullptr) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, patch_body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(patch_body->size()));
  }

  const CURLcode code = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (t.stopped_by_handler) return HttpResponse{status, std::string()};
  if (t.too_large) {
    return absl::ResourceExhaustedError(
        absl::StrCat("GET ", url, ": response line or body too large"));
  }
  if (code != CURLE_OK) return CurlError(code, error, url);
  return HttpResponse{status, std::move(t.body)};
}

std::string KubeClient::QueryEscape(std::string_view value) {
  // curl_easy_escape accepts a null handle since 7.82 (Debian 12 ships 7.88).
  std::unique_ptr<char, decltype(&curl_free)> escaped(
      curl_easy_escape(nullptr, value.data(), static_cast<int>(value.size())), &curl_free);
  return escaped == nullptr ? std::string() : std::string(escaped.get());
}

}  // namespace sockmesh::sources::kubernetes
