// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_USERSPACE_AGENT_BPFFS_H_
#define SOCKMESH_USERSPACE_AGENT_BPFFS_H_

#include <string>

#include "absl/status/status.h"

namespace sockmesh::agent {

// Mounts bpffs at `root` unless one is already there (fresh machines often lack it).
absl::Status EnsureBpffs(const std::string& root);

// Where an instance keeps its pins: <root>/sockmesh/<instance>/{maps,links}.
struct PinLayout {
  std::string instance_dir;
  std::string maps_dir;
  std::string links_dir;
};
PinLayout MakePinLayout(const std::string& bpffs_root, const std::string& instance);

// Instance names become directory names: [a-z0-9][a-z0-9-_.]*, at most 64 characters.
absl::Status ValidateInstanceName(const std::string& instance);

// Removes every pin under the instance directory and the directory itself. Unpinning a link whose
// last reference was the pin detaches its program.
absl::Status RemovePins(const PinLayout& layout);

}  // namespace sockmesh::agent

#endif  // SOCKMESH_USERSPACE_AGENT_BPFFS_H_
