// SPDX-License-Identifier: Apache-2.0
// One readable line per event on stderr: "2026-11-24T19:55:01.123Z INFO  sync: 3 services ...".
// absl/log is not in Debian 12's Abseil, and the agent needs nothing more than this.
#ifndef SOCKMESH_USERSPACE_LOG_LOG_H_
#define SOCKMESH_USERSPACE_LOG_LOG_H_

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sockmesh::log {

enum class Level { kDebug, kInfo, kWarning, kError };

void SetMinLevel(Level level);
// Parses "debug", "info", "warning", "error"; false when unknown.
bool ParseLevel(absl::string_view text, Level* level);
void Write(Level level, absl::string_view component, absl::string_view message);

template <typename... Args>
void Info(absl::string_view component, const Args&... args) {
  Write(Level::kInfo, component, absl::StrCat(args...));
}
template <typename... Args>
void Warn(absl::string_view component, const Args&... args) {
  Write(Level::kWarning, component, absl::StrCat(args...));
}
template <typename... Args>
void Error(absl::string_view component, const Args&... args) {
  Write(Level::kError, component, absl::StrCat(args...));
}
template <typename... Args>
void Debug(absl::string_view component, const Args&... args) {
  Write(Level::kDebug, component, absl::StrCat(args...));
}

}  // namespace sockmesh::log

#endif  // SOCKMESH_USERSPACE_LOG_LOG_H_
