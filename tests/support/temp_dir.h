// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_TESTS_SUPPORT_TEMP_DIR_H_
#define SOCKMESH_TESTS_SUPPORT_TEMP_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <string>

namespace sockmesh::testing {

// A private directory /tmp/<prefix>-XXXXXX for manifests and logs, removed with everything in it
// unless SOCKMESH_KEEP_TEST_DIRS is set (to read the processes' logs after a run).
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty() && std::getenv("SOCKMESH_KEEP_TEST_DIRS") == nullptr) {
      std::filesystem::remove_all(path_, ec);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_TEMP_DIR_H_
