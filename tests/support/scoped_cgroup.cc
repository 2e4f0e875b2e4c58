// SPDX-License-Identifier: Apache-2.0
#include "tests/support/scoped_cgroup.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "userspace/agent/cgroup.h"

namespace sockmesh::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kPrefix[] = "sockmesh-test-";

absl::StatusOr<std::string> CurrentCgroup(const std::string& mount) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "0::")) return mount + line.substr(3);
  }
  return absl::NotFoundError("no cgroup v2 entry in /proc/self/cgroup");
}

// Removes sockmesh-test-<pid>-<n> cgroups whose creating process is gone: a crashed run's
// leftovers. Live processes' cgroups (other test binaries running now) are left alone.
void RemoveStale(const std::string& mount) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(mount, ec)) {
    std::string name = entry.path().filename().string();
    if (!entry.is_directory() || !absl::StartsWith(name, kPrefix)) continue;
    std::string rest = name.substr(sizeof(kPrefix) - 1);
    int pid = 0;
    if (!absl::SimpleAtoi(rest.substr(0, rest.find('-')), &pid) || pid <= 0) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    ::rmdir(entry.path().c_str());  // fails harmlessly while processes are still inside
  }
}

}  // namespace

std::string CurrentCgroup() {
  absl::StatusOr<std::string> mount = agent::FindCgroup2Mount();
  if (!mount.ok()) return "";
  return CurrentCgroup(*mount).value_or("");
}

absl::StatusOr<ScopedCgroup> ScopedCgroup::Create() {
  static std::atomic<int> counter{0};
  absl::StatusOr<std::string> mount = agent::FindCgroup2Mount();
  if (!mount.ok()) return mount.status();
  RemoveStale(*mount);
  absl::StatusOr<std::string> home = CurrentCgroup(*mount);
  if (!home.ok()) return home.status();
  std::string path = absl::StrCat(*mount, "/", kPrefix, ::getpid(), "-", counter++);
  if (absl::Status s = agent::EnsureCgroup(path); !s.ok()) return s;
  return ScopedCgroup(path, *home);
}

ScopedCgroup::ScopedCgroup(ScopedCgroup&& other) noexcept
    : path_(std::move(other.path_)), home_(std::move(other.home_)), joined_(other.joined_) {
  other.path_.clear();
  other.joined_ = false;
}

absl::Status ScopedCgroup::Join() {
  absl::Status s = agent::JoinCgroup(path_, ::getpid());
  if (s.ok()) joined_ = true;
  return s;
}

absl::Status ScopedCgroup::Leave() {
  if (!joined_) return absl::OkStatus();
  absl::Status s = agent::JoinCgroup(home_, ::getpid());
  if (s.ok()) joined_ = false;
  return s;
}

ScopedCgroup::~ScopedCgroup() {
  if (path_.empty()) return;
  (void)Leave();
  // Children we started may take a moment to be reaped out of the cgroup.
  for (int i = 0; i < 50 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace sockmesh::testing
