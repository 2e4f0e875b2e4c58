// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/workload_status_file.h"

#include <google/protobuf/util/json_util.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "control_plane/model/workload_conversion.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::agent {

std::string WorkloadStatusPath(const std::string& run_dir, const std::string& instance) {
  return absl::StrCat(run_dir, "/", instance, "/workloads.json");
}

absl::Status WriteWorkloadStatus(const std::string& path, const model::WorkloadState& state,
                                 const v1::CompiledPolicy& policy) {
  v1::Snapshot snapshot;
  model::AddWorkloads(state, snapshot);
  *snapshot.mutable_policy()->mutable_policies() = policy.policies();
  *snapshot.mutable_policy()->mutable_endpoints() = policy.endpoints();
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  if (auto s = google::protobuf::util::MessageToJsonString(snapshot, &json, options); !s.ok()) {
    return absl::InternalError(absl::StrCat("encode ", path, ": ", s.ToString()));
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec)
    return absl::InternalError(absl::StrCat("create directory for ", path, ": ", ec.message()));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json;
    if (!out.flush()) return sys::ErrnoToStatus(errno, absl::StrCat("write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return sys::ErrnoToStatus(errno, absl::StrCat("rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

absl::Status RemoveWorkloadStatus(const std::string& run_dir, const std::string& instance) {
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path(run_dir) / instance, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("remove ", run_dir, "/", instance, ": ", ec.message()));
  return absl::OkStatus();
}

namespace {

absl::StatusOr<v1::Snapshot> ReadStatusSnapshot(const std::string& path) {
  std::ifstream in(path);
  if (!in) return sys::ErrnoToStatus(errno, path);
  std::stringstream text;
  text << in.rdbuf();
  v1::Snapshot snapshot;
  if (auto s = google::protobuf::util::JsonStringToMessage(text.str(), &snapshot); !s.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": ", s.ToString()));
  }
  return snapshot;
}

}  // namespace

absl::StatusOr<v1::CompiledPolicy> ReadPolicyStatus(const std::string& path) {
  absl::StatusOr<v1::Snapshot> snapshot = ReadStatusSnapshot(path);
  if (!snapshot.ok()) return snapshot.status();
  return snapshot->policy();
}

absl::StatusOr<model::WorkloadState> ReadWorkloadStatus(const std::string& path) {
  absl::StatusOr<v1::Snapshot> read = ReadStatusSnapshot(path);
  if (!read.ok()) return read.status();
  const v1::Snapshot& snapshot = *read;
  absl::StatusOr<model::WorkloadState> state = model::WorkloadsFromSnapshot(snapshot);
  if (!state.ok()) return absl::DataLossError(absl::StrCat(path, ": ", state.status().message()));
  return state;
}

}  // namespace sockmesh::agent
