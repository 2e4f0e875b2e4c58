// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/kubernetes/list_watch.h"

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "userspace/log/log.h"

namespace sockmesh::sources::kubernetes {
namespace {

using nlohmann::json;

constexpr char kLogComponent[] = "kubernetes";

// Jittered exponential backoff; Reset() after a success.
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max)
      : initial_(initial), max_(max), next_(initial) {}
  absl::Duration Next() {
    const absl::Duration d = next_;
    next_ = std::min(next_ * 2, max_);
    std::uniform_real_distribution<double> half_to_one(0.5, 1.0);
    return d * half_to_one(rng_);
  }
  void Reset() { next_ = initial_; }

 private:
  absl::Duration initial_, max_, next_;
  std::mt19937_64 rng_{std::random_device{}()};
};

std::string MetadataString(const json& object, const char* field) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  auto it = meta->find(field);
  return it != meta->end() && it->is_string() ? it->get<std::string>() : "";
}

// The message of a Kubernetes Status object (an HTTP error body or an ERROR event), or the text.
std::string StatusMessage(const json& status, absl::string_view fallback) {
  if (status.is_object()) {
    auto it = status.find("message");
    if (it != status.end() && it->is_string()) return it->get<std::string>();
  }
  return std::string(fallback.substr(0, 200));
}

absl::Status HttpError(absl::string_view what, const HttpResponse& response) {
  const std::string message =
      absl::StrCat(what, ": HTTP ", response.status, ": ",
                   StatusMessage(json::parse(response.body, nullptr, false), response.body));
  switch (response.status) {
    case 401:
      return absl::UnauthenticatedError(message);
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    case 410:
      return absl::OutOfRangeError(message);  // resourceVersion or continue token expired
    case 429:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::UnavailableError(message);
  }
}

}  // namespace

ResourceType ResourceTypeOf(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kService:
      return {kind, "v1", "/api/v1/services"};
    case ObjectKind::kEndpointSlice:
      return {kind, "discovery.k8s.io/v1", "/apis/discovery.k8s.io/v1/endpointslices"};
    case ObjectKind::kPod:
      return {kind, "v1", "/api/v1/pods"};
    case ObjectKind::kNamespace:
      return {kind, "v1", "/api/v1/namespaces"};
    case ObjectKind::kAuthorizationPolicy:
      return {kind, "sockmesh.io/v1alpha1", "/apis/sockmesh.io/v1alpha1/authorizationpolicies"};
    case ObjectKind::kTrafficPolicy:
      return {kind, "sockmesh.io/v1alpha1", "/apis/sockmesh.io/v1alpha1/trafficpolicies"};
  }
  return {kind, "v1", "/"};
}

ListWatcher::ListWatcher(const KubeClient* client, ObjectKind kind, ObjectCache* cache,
                         ListWatchOptions options)
    : client_(client), type_(ResourceTypeOf(kind)), cache_(cache), options_(options) {}

ListWatchStats ListWatcher::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::string ListWatcher::resource_version() const {
  absl::MutexLock lock(&mu_);
  return stats_.resource_version;
}

void ListWatcher::set_resource_version(std::string rv) {
  if (rv.empty()) return;
  absl::MutexLock lock(&mu_);
  stats_.resource_version = std::move(rv);
}

void ListWatcher::RecordFailure(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    ++stats_.failures;
    stats_.last_error = std::string(status.message());
  }
  log::Warn(kLogComponent, ObjectKindName(type_.kind), "s: ", status.message());
}

void ListWatcher::Run(const absl::Notification& stop) {
  Backoff backoff(options_.initial_backoff, options_.max_backoff);
  bool need_list = true;
  while (!stop.HasBeenNotified()) {
    if (need_list) {
      if (absl::Status s = List(stop); !s.ok()) {
        if (stop.HasBeenNotified()) break;
        RecordFailure(s);
        // No CRD, no objects of its kind: the rest of the state must not wait for it.
        if (absl::IsNotFound(s) && IsCustomResourceKind(type_.kind)) {
          cache_->Replace(type_.kind, {});
        }
        stop.WaitForNotificationWithTimeout(backoff.Next());
        continue;
      }
      need_list = false;
      backoff.Reset();
    }
    const absl::Time started = absl::Now();
    const WatchResult result = Watch(stop);
    if (stop.HasBeenNotified()) break;
    if (result.made_progress) backoff.Reset();
    if (result.end == WatchEnd::kRelist) {
      need_list = true;
      // A 410 is routine (compaction): relist at once. Anything else waits like a failure.
      if (!result.failed) continue;
    }
    // A quiet watch that the server ended at its timeout resumes at once; one ended within a
    // second with nothing in it means a server that ends watches at once, which must not be
    // hammered any more than a failing one.
    const bool quick_and_empty = !result.made_progress && absl::Now() - started < absl::Seconds(1);
    if (result.failed || quick_and_empty) {
      stop.WaitForNotificationWithTimeout(backoff.Next());
    }
  }
}

absl::Status ListWatcher::List(const absl::Notification& stop) {
  std::vector<json> items;
  std::string continue_token;
  std::string rv;
  do {
    std::string path = absl::StrCat(type_.path, "?limit=", options_.page_size);
    if (!continue_token.empty()) {
      absl::StrAppend(&path, "&continue=", KubeClient::QueryEscape(continue_token));
    }
    absl::StatusOr<HttpResponse> response = client_->Get(path, &stop);
    if (!response.ok()) return response.status();
    const std::string what = absl::StrCat("list ", ObjectKindName(type_.kind), "s");
    if (response->status != 200) return HttpError(what, *response);
    json list = json::parse(response->body, nullptr, false);
    if (!list.is_object() || !list.contains("items") ||
        !(list["items"].is_array() || list["items"].is_null())) {
      return absl::UnavailableError(absl::StrCat(what, ": the response is not a list"));
    }
    if (list["items"].is_array()) {
      for (json& item : list["items"]) {
        if (!item.is_object()) continue;
        // List items omit kind and apiVersion (the list's kind says it); the parser needs them.
        item["kind"] = ObjectKindName(type_.kind);
        item["apiVersion"] = type_.api_version;
        items.push_back(std::move(item));
      }
    }
    rv = MetadataString(list, "resourceVersion");
    continue_token = MetadataString(list, "continue");
  } while (!continue_token.empty());

  {
    absl::MutexLock lock(&mu_);
    ++stats_.lists;
    if (!rv.empty()) stats_.resource_version = rv;
  }
  cache_->Replace(type_.kind, items);
  log::Info(kLogComponent, "listed ", items.size(), " ", ObjectKindName(type_.kind),
            "s at resourceVersion ", rv);
  return absl::OkStatus();
}

ListWatcher::WatchResult ListWatcher::Watch(const absl::Notification& stop) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> one_to_two(1.0, 2.0);
  const absl::Duration server_timeout = options_.min_watch_timeout * one_to_two(rng);
  const int64_t timeout_seconds = std::max<int64_t>(1, absl::ToInt64Seconds(server_timeout));
  const std::string path = absl::StrCat(
      type_.path, "?watch=1&resourceVersion=", KubeClient::QueryEscape(resource_version()),
      "&allowWatchBookmarks=true&timeoutSeconds=", timeout_seconds);
  {
    absl::MutexLock lock(&mu_);
    ++stats_.watches;
  }
  WatchResult result;
  // The server ends the watch after timeout_seconds; the client's own bound leaves it room.
  absl::StatusOr<HttpResponse> response = client_->Stream(
      path, absl::Seconds(timeout_seconds) + absl::Seconds(30),
      [&](std::string_view line) { return HandleLine(line, result); }, &stop);
  if (stop.HasBeenNotified()) return result;
  if (!response.ok()) {
    RecordFailure(response.status());
    result.failed = true;
    return result;
  }
  if (response->status == 410) {
    absl::MutexLock lock(&mu_);
    ++stats_.gone;
    result.end = WatchEnd::kRelist;
    return result;
  }
  if (response->status != 200) {
    RecordFailure(HttpError(absl::StrCat("watch ", ObjectKindName(type_.kind), "s"), *response));
    result.failed = true;
  }
  return result;
}

bool ListWatcher::HandleLine(std::string_view line, WatchResult& result) {
  const json event = json::parse(line, nullptr, false);
  const char* kind = ObjectKindName(type_.kind);
  if (!event.is_object() || !event.contains("type") || !event["type"].is_string() ||
      !event.contains("object") || !event["object"].is_object()) {
    RecordFailure(absl::DataLossError(
        absl::StrCat("watch ", kind, "s: not a watch event: ",
                     absl::string_view(line.data(), std::min<size_t>(line.size(), 200)))));
    // The stream's position is unknown now; a fresh list is the only safe restart.
    result.end = WatchEnd::kRelist;
    result.failed = true;
    return false;
  }
  const std::string type = event["type"].get<std::string>();
  const json& object = event["object"];
  if (type == "ERROR") {
    const int64_t code = object.contains("code") && object["code"].is_number_integer()
                             ? object["code"].get<int64_t>()
                             : 0;
    result.end = WatchEnd::kRelist;
    if (code == 410) {
      absl::MutexLock lock(&mu_);
      ++stats_.gone;
    } else {
      RecordFailure(absl::UnavailableError(absl::StrCat("watch ", kind, "s: ERROR event, code ",
                                                        code, ": ", StatusMessage(object, ""))));
      result.failed = true;
    }
    return false;
  }
  result.made_progress = true;
  if (type == "BOOKMARK") {
    set_resource_version(MetadataString(object, "resourceVersion"));
    absl::MutexLock lock(&mu_);
    ++stats_.bookmarks;
    return true;
  }
  EventType event_type;
  if (type == "ADDED") {
    event_type = EventType::kAdded;
  } else if (type == "MODIFIED") {
    event_type = EventType::kModified;
  } else if (type == "DELETED") {
    event_type = EventType::kDeleted;
  } else {
    log::Warn(kLogComponent, "watch ", kind, "s: ignoring event of unknown type ", type);
    return true;
  }
  // The event's own object carries kind and apiVersion, unlike list items; set them anyway so
  // a server that omits them is read the same way.
  json with_kind = object;
  with_kind["kind"] = kind;
  with_kind["apiVersion"] = type_.api_version;
  // Stats first, so whoever sees the cache change also sees the counters that explain it.
  set_resource_version(MetadataString(object, "resourceVersion"));
  {
    absl::MutexLock lock(&mu_);
    ++stats_.events;
  }
  cache_->Apply(type_.kind, event_type, with_kind);
  return true;
}

}  // namespace sockmesh::sources::kubernetes
