// SPDX-License-Identifier: Apache-2.0
// Standalone mode's source of desired state: a directory of Kubernetes manifests that an operator
// edits (or a ConfigMap mounted as a volume), reloaded whenever it changes.
//
// A typo in one file must not take down the services of the others, nor the ones the broken file
// itself defined: each file keeps its last good parse until it parses again, and a reload whose
// objects contradict each other leaves the whole previous state in force.
#ifndef SOCKMESH_CONTROL_PLANE_SOURCES_MANIFEST_DIRECTORY_H_
#define SOCKMESH_CONTROL_PLANE_SOURCES_MANIFEST_DIRECTORY_H_

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control_plane/model/service_model.h"
#include "control_plane/sources/manifest_parser.h"

namespace sockmesh::sources {

struct ReloadResult {
  model::DesiredState state;   // the state in force after this reload
  bool state_changed = false;  // whether `state` differs from the one before this reload
  // Names of files added, modified (including newly broken or fixed) or removed since the last
  // reload, sorted. Empty when nothing on disk changed.
  std::vector<std::string> changed_files;
  // One message per file that currently fails to read or parse (sorted by file name; those still
  // contribute their last good parse), then the join error if the files' objects contradict each
  // other. Repeated on every reload until fixed, so a caller can export "files in error".
  std::vector<std::string> errors;
  // Notes about ignored objects in the files parsed by this reload; said once per change.
  std::vector<std::string> notes;
};

class ManifestDirectory {
 public:
  explicit ManifestDirectory(std::filesystem::path dir);

  // Reads every regular `*.yaml` / `*.yml` file directly in the directory (not subdirectories, not
  // dot-files such as editor lock files), in name order, and rebuilds the desired state. Files
  // whose content is unchanged are not parsed again. Returns an error only when the directory
  // itself cannot be listed (NotFound, PermissionDenied, ...); the previous state then stays.
  absl::StatusOr<ReloadResult> Reload();

  const model::DesiredState& state() const { return state_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  struct FileState {
    std::optional<std::string> content;  // last content read; nullopt if it could not be read
    std::optional<ParsedManifests> last_good;
    std::string error;  // why the current content is not in force; "" when it is
  };

  // Re-reads one listed file into `file`; returns whether it changed.
  bool Refresh(const std::string& name, FileState& file, ReloadResult& result);

  std::filesystem::path dir_;
  std::map<std::string, FileState> files_;  // by file name
  model::DesiredState state_;
};

// Waits for changes in a manifest directory with inotify. Move-only; owns the inotify fd.
class ManifestWatcher {
 public:
  // Long enough to cover an editor's write-then-rename or a `cp *.yaml`, short enough to feel
  // immediate to someone who just saved a file.
  static constexpr absl::Duration kDefaultDebounce = absl::Milliseconds(200);
  // A directory that never goes quiet still gets reloaded this often.
  static constexpr absl::Duration kMaxDebounce = absl::Seconds(2);

  // Watches `dir` for files written, created, deleted or moved in or out. NotFound if it does not
  // exist; ResourceExhausted when the inotify instance or watch limit is reached.
  static absl::StatusOr<ManifestWatcher> Create(const std::filesystem::path& dir);

  ManifestWatcher(ManifestWatcher&& other) noexcept;
  ManifestWatcher& operator=(ManifestWatcher&& other) noexcept;
  ManifestWatcher(const ManifestWatcher&) = delete;
  ManifestWatcher& operator=(const ManifestWatcher&) = delete;
  ~ManifestWatcher();

  // Waits up to `timeout` (absl::InfiniteDuration() for ever) for a change, then keeps consuming
  // events until none arrived for `debounce` (or kMaxDebounce passed), so a burst yields one
  // reload. Returns true after a change, false on timeout. FailedPrecondition once the directory
  // itself was deleted or moved away: the watch is gone and the caller must create a new watcher.
  absl::StatusOr<bool> WaitForChange(absl::Duration timeout,
                                     absl::Duration debounce = kDefaultDebounce);

  // For callers that multiplex: readable when events are pending.
  int fd() const { return fd_; }

 private:
  ManifestWatcher(int fd, std::filesystem::path dir) : fd_(fd), dir_(std::move(dir)) {}
  absl::StatusOr<bool> PollAndDrain(absl::Duration timeout);
  absl::StatusOr<bool> Drain();
  absl::Status WatchEnded() const;

  int fd_ = -1;
  std::filesystem::path dir_;
  bool watch_ended_ = false;
};

}  // namespace sockmesh::sources

#endif  // SOCKMESH_CONTROL_PLANE_SOURCES_MANIFEST_DIRECTORY_H_
