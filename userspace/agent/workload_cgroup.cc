// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/workload_cgroup.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/agent/cgroup.h"

namespace sockmesh::agent {
namespace {

bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-') return false;
  }
  return true;
}

std::vector<std::filesystem::path> SubDirectories(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec)) out.push_back(entry.path());
  }
  return out;
}

}  // namespace

absl::StatusOr<WorkloadName> ParseWorkloadName(std::string_view text) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(text.data(), text.size()), '/');
  if (parts.size() != 2 || !IsDnsLabel({parts[0].data(), parts[0].size()}) ||
      !IsDnsLabel({parts[1].data(), parts[1].size()})) {
    return absl::InvalidArgumentError(
        absl::StrCat("workload \"", absl::string_view(text.data(), text.size()),
                     "\": want NAMESPACE/NAME, both lower-case DNS labels (a-z, 0-9, '-')"));
  }
  return WorkloadName{std::string(parts[0]), std::string(parts[1])};
}

std::string WorkloadCgroupPath(std::string_view mesh_cgroup, const WorkloadName& workload) {
  std::string base(mesh_cgroup);
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return absl::StrCat(base, "/", workload.namespace_name, "/", workload.name);
}

absl::StatusOr<std::vector<WorkloadCgroup>> ListWorkloadCgroups(const std::string& mesh_cgroup) {
  std::error_code ec;
  if (!std::filesystem::is_directory(mesh_cgroup, ec)) {
    return absl::NotFoundError(absl::StrCat("mesh cgroup ", mesh_cgroup, " does not exist"));
  }
  std::vector<WorkloadCgroup> out;
  for (const auto& ns_dir : SubDirectories(mesh_cgroup)) {
    if (!IsDnsLabel(ns_dir.filename().string())) continue;
    for (const auto& wl_dir : SubDirectories(ns_dir)) {
      if (!IsDnsLabel(wl_dir.filename().string())) continue;
      absl::StatusOr<uint64_t> id = CgroupId(wl_dir.string());
      if (!id.ok()) continue;  // removed while we listed it
      out.push_back(
          {{ns_dir.filename().string(), wl_dir.filename().string()}, wl_dir.string(), *id});
    }
  }
  return out;
}

}  // namespace sockmesh::agent
