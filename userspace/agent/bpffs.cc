// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/bpffs.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "userspace/sys/errno_status.h"

namespace sockmesh::agent {

namespace fs = std::filesystem;

absl::Status EnsureBpffs(const std::string& root) {
  struct statfs st {};
  if (::statfs(root.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC) return absl::OkStatus();
  std::error_code ec;
  fs::create_directories(root, ec);
  if (::mount("bpf", root.c_str(), "bpf", 0, nullptr) != 0) {
    return sys::ErrnoToStatus(errno, absl::StrCat("mount bpffs at ", root));
  }
  return absl::OkStatus();
}

PinLayout MakePinLayout(const std::string& bpffs_root, const std::string& instance) {
  std::string dir = (fs::path(bpffs_root) / "sockmesh" / instance).string();
  return PinLayout{.instance_dir = dir, .maps_dir = dir + "/maps", .links_dir = dir + "/links"};
}

absl::Status ValidateInstanceName(const std::string& instance) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--instance: invalid value \"", instance, "\": ", why));
  };
  if (instance.empty() || instance.size() > 64) return bad("must be 1-64 characters");
  for (size_t i = 0; i < instance.size(); ++i) {
    char c = instance[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.'))) {
      return bad(
          "use lower-case letters, digits, '-', '_' and '.', starting with a letter or digit");
    }
  }
  return absl::OkStatus();
}

absl::Status RemovePins(const PinLayout& layout) {
  std::error_code ec;
  if (!fs::exists(layout.instance_dir, ec)) return absl::OkStatus();
  fs::remove_all(layout.instance_dir, ec);
  if (ec) return sys::ErrnoToStatus(ec.value(), absl::StrCat("remove ", layout.instance_dir));
  // Leave <root>/sockmesh when other instances still live there.
  fs::path parent = fs::path(layout.instance_dir).parent_path();
  if (fs::is_empty(parent, ec)) fs::remove(parent, ec);
  return absl::OkStatus();
}

}  // namespace sockmesh::agent
