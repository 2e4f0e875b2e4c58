// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/manifest_directory.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <set>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "control_plane/sources/desired_state_builder.h"
#include "control_plane/sources/workload_builder.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::sources {
namespace {

bool IsManifestName(const std::string& name) {
  // Dot-files are skipped: editors' lock files (emacs' ".#echo.yaml") end in .yaml too, and a
  // ConfigMap volume's "..data" entries are directories of the same files.
  if (name.empty() || name.front() == '.') return false;
  return absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml");
}

// Sorted names of the manifest files directly in `dir`. Symlinks to regular files count, because a
// mounted ConfigMap presents its keys as symlinks.
absl::StatusOr<std::set<std::string>> ListManifests(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return sys::ErrnoToStatus(ec.value(), absl::StrCat("cannot list ", dir.string()));
  std::set<std::string> names;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (IsManifestName(name) && it->is_regular_file(type_ec)) names.insert(name);
  }
  if (ec) return sys::ErrnoToStatus(ec.value(), absl::StrCat("cannot list ", dir.string()));
  return names;
}

}  // namespace

ManifestDirectory::ManifestDirectory(std::filesystem::path dir) : dir_(std::move(dir)) {}

bool ManifestDirectory::Refresh(const std::string& name, FileState& file, ReloadResult& result) {
  absl::StatusOr<std::string> content = ReadManifestFile(dir_ / name);
  if (!content.ok()) {
    // Unreadable (permissions, removed since the listing, too large): like a parse error, the last
    // good objects stay in force until the file can be read again.
    const bool changed = file.content.has_value() || file.error.empty();
    file.content.reset();
    file.error = std::string(content.status().message());
    return changed;
  }
  if (file.content.has_value() && *file.content == *content) return false;
  file.content = *std::move(content);
  absl::StatusOr<ParsedManifests> parsed = ParseManifests(*file.content, name);
  if (!parsed.ok()) {
    file.error = std::string(parsed.status().message());
    return true;
  }
  file.error.clear();
  result.notes.insert(result.notes.end(), parsed->notes.begin(), parsed->notes.end());
  file.last_good = *std::move(parsed);
  return true;
}

absl::StatusOr<ReloadResult> ManifestDirectory::Reload() {
  absl::StatusOr<std::set<std::string>> names = ListManifests(dir_);
  if (!names.ok()) return names.status();

  ReloadResult result;
  for (auto it = files_.begin(); it != files_.end();) {
    if (names->contains(it->first)) {
      ++it;
      continue;
    }
    result.changed_files.push_back(it->first);  // deleted: its objects leave with it
    it = files_.erase(it);
  }
  for (const std::string& name : *names) {
    if (Refresh(name, files_[name], result)) result.changed_files.push_back(name);
  }
  std::sort(result.changed_files.begin(), result.changed_files.end());

  ParsedManifests all;
  for (const auto& [name, file] : files_) {
    if (!file.error.empty()) result.errors.push_back(file.error);
    if (!file.last_good.has_value()) continue;
    AppendManifests(*file.last_good, all);
  }

  absl::StatusOr<model::DesiredState> state = BuildDesiredState(all, state_);
  if (state.ok()) {
    result.state_changed = *state != state_;
    state_ = *std::move(state);
  } else {
    result.errors.push_back(absl::StrCat(state.status().message(),
                                         " (keeping the previous state of ", state_.size(),
                                         " frontends)"));
  }
  result.state = state_;
  return result;
}

// ---- ManifestWatcher ------------------------------------------------------------------------

namespace {

// Directory-entry events that can change what Reload() reads. IN_CLOSE_WRITE rather than
// IN_MODIFY, so a file being written is read once, when complete.
constexpr uint32_t kChangeMask =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE;
// The watched directory itself going away ends the watch (the kernel then sends IN_IGNORED).
constexpr uint32_t kEndMask = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT;

int PollMillis(absl::Duration remaining) {
  if (remaining == absl::InfiniteDuration()) return -1;
  if (remaining <= absl::ZeroDuration()) return 0;
  // Round up, or a 0.5 ms remainder would busy-loop with poll(0).
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(remaining, absl::Milliseconds(1)));
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

}  // namespace

absl::StatusOr<ManifestWatcher> ManifestWatcher::Create(const std::filesystem::path& dir) {
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return sys::ErrnoToStatus(errno, "inotify_init1");
  if (inotify_add_watch(fd, dir.c_str(), kChangeMask | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) <
      0) {
    const int err = errno;
    ::close(fd);
    return sys::ErrnoToStatus(err, absl::StrCat("cannot watch ", dir.string()));
  }
  return ManifestWatcher(fd, dir);
}

ManifestWatcher::ManifestWatcher(ManifestWatcher&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      dir_(std::move(other.dir_)),
      watch_ended_(other.watch_ended_) {}

ManifestWatcher& ManifestWatcher::operator=(ManifestWatcher&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    dir_ = std::move(other.dir_);
    watch_ended_ = other.watch_ended_;
  }
  return *this;
}

ManifestWatcher::~ManifestWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status ManifestWatcher::WatchEnded() const {
  return absl::FailedPreconditionError(
      absl::StrCat(dir_.string(), " was deleted or moved: no longer watching it"));
}

absl::StatusOr<bool> ManifestWatcher::WaitForChange(absl::Duration timeout,
                                                    absl::Duration debounce) {
  if (fd_ < 0) return absl::FailedPreconditionError("ManifestWatcher was moved from");
  absl::StatusOr<bool> changed = PollAndDrain(timeout);
  if (!changed.ok() || !*changed) return changed;
  const absl::Time give_up = absl::Now() + std::max(kMaxDebounce, debounce);
  while (true) {
    const absl::Duration left = give_up - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    absl::StatusOr<bool> more = PollAndDrain(std::min(debounce, left));
    if (!more.ok()) return more.status();
    if (!*more) break;  // quiet for a whole debounce period
  }
  return true;
}

absl::StatusOr<bool> ManifestWatcher::PollAndDrain(absl::Duration timeout) {
  if (watch_ended_) return WatchEnded();
  const absl::Time deadline =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  while (true) {
    pollfd pfd{.fd = fd_, .events = POLLIN, .revents = 0};
    const int n = ::poll(&pfd, 1, PollMillis(deadline - absl::Now()));
    if (n < 0 && errno == EINTR) continue;  // the deadline bounds the retries
    if (n < 0) return sys::ErrnoToStatus(errno, "poll on inotify");
    if (n == 0) return false;
    return Drain();
  }
}

// Consumes every pending event. Any change event counts, including for files Reload() skips: the
// directory is small and Reload() does not re-parse unchanged files, so filtering would only add
// ways to miss a change (a ConfigMap update is a rename of "..data"). IN_Q_OVERFLOW means events
// were lost, which also calls for a reload.
absl::StatusOr<bool> ManifestWatcher::Drain() {
  alignas(inotify_event) char buf[16 * 1024];
  bool changed = false;
  while (true) {
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return sys::ErrnoToStatus(errno, "read from inotify");
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buf + off);
      if (event->mask & kEndMask) watch_ended_ = true;
      changed = true;
      off += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
    }
  }
  if (watch_ended_) return WatchEnded();
  return changed;
}

}  // namespace sockmesh::sources
