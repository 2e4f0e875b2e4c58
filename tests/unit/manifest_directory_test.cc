// SPDX-License-Identifier: Apache-2.0
#include "control_plane/sources/manifest_directory.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sockmesh::sources {
namespace {

using model::Frontend;
using model::IpAddress;
using model::Protocol;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

Frontend Tcp(std::string_view ip, uint16_t port) {
  return Frontend{IpAddress::Parse(ip).value(), port, Protocol::kTcp};
}

// A Service `name` at `vip`:80 with one ready backend `backend`:8080.
std::string ServiceYaml(const std::string& name, const std::string& vip,
                        const std::string& backend) {
  return absl::StrReplaceAll(R"(
apiVersion: v1
kind: Service
metadata: {name: NAME}
spec: {clusterIP: VIP, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: NAME-1, labels: {kubernetes.io/service-name: NAME}}
addressType: IPv4
endpoints: [{addresses: [BACKEND]}]
)",
                             {{"NAME", name}, {"VIP", vip}, {"BACKEND", backend}});
}

class ManifestDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sockmesh-manifests-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes through a temporary file and a rename, as editors and ConfigMap updates do, so a
  // reader never sees half a file.
  void Write(const std::string& name, const std::string& content) {
    const std::filesystem::path tmp = dir_ / (".tmp-" + name);
    std::ofstream(tmp) << content;
    std::filesystem::rename(tmp, dir_ / name);
  }

  ReloadResult Reload(ManifestDirectory& dir) {
    absl::StatusOr<ReloadResult> result = dir.Reload();
    EXPECT_TRUE(result.ok()) << result.status();
    return result.value_or(ReloadResult{});
  }

  std::filesystem::path dir_;
};

TEST_F(ManifestDirectoryTest, LoadsYamlAndYmlFilesOnly) {
  Write("a.yaml", ServiceYaml("a", "127.10.0.1", "10.0.0.1"));
  Write("b.yml", ServiceYaml("b", "127.10.0.2", "10.0.0.2"));
  Write("c.json", "{not yaml at all");
  Write(".#d.yaml", "broken: [");  // an editor's lock file
  std::filesystem::create_directory(dir_ / "sub.yaml");
  std::ofstream(dir_ / "sub.yaml" / "e.yaml") << ServiceYaml("e", "127.10.0.5", "10.0.0.5");

  ManifestDirectory dir(dir_);
  ReloadResult result = Reload(dir);
  EXPECT_THAT(result.errors, IsEmpty());
  EXPECT_THAT(result.changed_files, ElementsAre("a.yaml", "b.yml"));
  EXPECT_TRUE(result.state_changed);
  ASSERT_THAT(result.state, SizeIs(2));
  EXPECT_EQ(result.state.at(Tcp("127.10.0.1", 80)).backends.at(0).ToString(),
            "10.0.0.1:8080 (weight 1)");
  EXPECT_TRUE(result.state.contains(Tcp("127.10.0.2", 80)));
  EXPECT_EQ(dir.state(), result.state);
}

TEST_F(ManifestDirectoryTest, UnchangedReloadReportsNothing) {
  Write("a.yaml", ServiceYaml("a", "127.10.0.1", "10.0.0.1"));
  ManifestDirectory dir(dir_);
  Reload(dir);
  ReloadResult again = Reload(dir);
  EXPECT_THAT(again.changed_files, IsEmpty());
  EXPECT_FALSE(again.state_changed);
  EXPECT_THAT(again.errors, IsEmpty());
  EXPECT_THAT(again.state, SizeIs(1));
}

TEST_F(ManifestDirectoryTest, BrokenFileKeepsItsLastGoodObjects) {
  Write("a.yaml", ServiceYaml("a", "127.10.0.1", "10.0.0.1"));
  Write("b.yaml", ServiceYaml("b", "127.10.0.2", "10.0.0.2"));
  ManifestDirectory dir(dir_);
  const model::DesiredState before = Reload(dir).state;

  // a.yaml now has a bad port: a's Service stays as it was; b's change still applies.
  std::string broken = ServiceYaml("a", "127.10.0.1", "10.0.0.9");
  broken.replace(broken.find("port: 80"), 8, "port: eighty");
  Write("a.yaml", broken);
  Write("b.yaml", ServiceYaml("b", "127.10.0.2", "10.0.0.3"));
  ReloadResult result = Reload(dir);
  EXPECT_THAT(result.changed_files, ElementsAre("a.yaml", "b.yaml"));
  EXPECT_THAT(result.errors,
              ElementsAre("a.yaml: Service default/a: spec.ports[0].port: invalid value "
                          "\"eighty\": must be an integer 1-65535"));
  EXPECT_TRUE(result.state_changed);
  EXPECT_EQ(result.state.at(Tcp("127.10.0.1", 80)), before.at(Tcp("127.10.0.1", 80)));
  EXPECT_EQ(result.state.at(Tcp("127.10.0.2", 80)).backends.at(0).address.ToString(), "10.0.0.3");

  // The error is repeated while it lasts, but the file is not reported as changed again.
  ReloadResult still = Reload(dir);
  EXPECT_THAT(still.changed_files, IsEmpty());
  EXPECT_THAT(still.errors, SizeIs(1));
  EXPECT_FALSE(still.state_changed);

  // Fixed: the new content takes over.
  Write("a.yaml", ServiceYaml("a", "127.10.0.1", "10.0.0.9"));
  ReloadResult fixed = Reload(dir);
  EXPECT_THAT(fixed.changed_files, ElementsAre("a.yaml"));
  EXPECT_THAT(fixed.errors, IsEmpty());
  EXPECT_EQ(fixed.state.at(Tcp("127.10.0.1", 80)).backends.at(0).address.ToString(), "10.0.0.9");
}

TEST_F(ManifestDirectoryTest, NewBrokenFileContributesNothing) {
  Write("a.yaml", ServiceYaml("a", "127.10.0.1", "10.0.0.1"));
  ManifestDirectory dir(dir_);
  Reload(dir);
  Write("b.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: b\n");
  ReloadResult result = Reload(dir);
  EXPECT_THAT(result.changed_files, ElementsAre("b.yaml"));
  ASSERT_THAT(result.errors, SizeIs(1));
  EXPECT_THAT(result.errors[0], HasSubstr("b.yaml: line "));
  EXPECT_THAT(result.errors[0], HasSubstr("YAML syntax error"));
  EXPECT_FALSE(result.state_changed);
  EXPECT_THAT(result.state, SizeIs(1));
}

TEST_F(ManifestDirectoryTest, DeletedFileTakesItsObjectsAlong) {
  Write("a.yaml", ServiceYaml("a", "127.10.0.1", "10.0.0.1"));
  Write("b.yaml", ServiceYaml("b", "127.10.0.2", "10.0.0.2"));
  ManifestDirectory dir(dir_);
  Reload(dir);

  // Even a file in error that is deleted takes its last good objects with it.
  Write("b.yaml", "kind: [");
  EXPECT_THAT(Reload(dir).state, SizeIs(2));
  std::filesystem::remove(dir_ / "b.yaml");
  ReloadResult result = Reload(dir);
  EXPECT_THAT(result.changed_files, ElementsAre("b.yaml"));
  EXPECT_THAT(result.errors, IsEmpty());
  EXPECT_TRUE(result.state_changed);
  EXPECT_THAT(result.state, SizeIs(1));
  EXPECT_TRUE(result.state.contains(Tcp("127.10.0.1", 80)));
}

TEST_F(ManifestDirectoryTest, JoinFailureKeepsTheWholePreviousState) {
  Write("a.yaml", ServiceYaml("a", "127.10.0.1", "10.0.0.1"));
  ManifestDirectory dir(dir_);
  const model::DesiredState before = Reload(dir).state;

  // b.yaml parses, but claims a's frontend; its other change must not half-apply either.
  Write("b.yaml", ServiceYaml("b", "127.10.0.1", "10.0.0.2"));
  ReloadResult result = Reload(dir);
  EXPECT_THAT(result.changed_files, ElementsAre("b.yaml"));
  EXPECT_THAT(result.errors,
              ElementsAre("frontend 127.10.0.1:80/TCP is claimed by two Services: Service "
                          "default/a (a.yaml) and Service default/b (b.yaml) (keeping the "
                          "previous state of 1 frontends)"));
  EXPECT_FALSE(result.state_changed);
  EXPECT_EQ(result.state, before);
  EXPECT_EQ(dir.state(), before);

  // Resolving the conflict lets the new state through.
  Write("b.yaml", ServiceYaml("b", "127.10.0.2", "10.0.0.2"));
  result = Reload(dir);
  EXPECT_THAT(result.errors, IsEmpty());
  EXPECT_THAT(result.state, SizeIs(2));
}

TEST_F(ManifestDirectoryTest, NotesAreReportedOnceForIgnoredObjects) {
  Write("extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
  ManifestDirectory dir(dir_);
  EXPECT_THAT(Reload(dir).notes, ElementsAre(HasSubstr("extra.yaml: document 1: ignored v1 "
                                                       "ConfigMap default/x")));
  EXPECT_THAT(Reload(dir).notes, IsEmpty());
}

// Root reads files whatever their mode, so under root (as in CI) the reloads run in a child
// process that has dropped to the unprivileged user `nobody`.
TEST_F(ManifestDirectoryTest, UnreadableFileKeepsItsLastGoodObjects) {
  Write("a.yaml", ServiceYaml("a", "127.10.0.1", "10.0.0.1"));
  std::filesystem::permissions(
      dir_, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                std::filesystem::perms::others_exec);
  std::filesystem::permissions(dir_ / "a.yaml", std::filesystem::perms::owner_read |
                                                    std::filesystem::perms::group_read |
                                                    std::filesystem::perms::others_read);
  // Returns what went wrong, "" when the behaviour is right.
  auto check = [&]() -> std::string {
    ManifestDirectory dir(dir_);
    absl::StatusOr<ReloadResult> first = dir.Reload();
    if (!first.ok() || first->state.size() != 1) return "first reload did not load a.yaml";
    std::filesystem::permissions(dir_ / "a.yaml", std::filesystem::perms::none);
    absl::StatusOr<ReloadResult> second = dir.Reload();
    if (!second.ok()) return std::string(second.status().message());
    if (second->errors.size() != 1 ||
        second->errors[0].find("a.yaml: Permission denied") == std::string::npos) {
      return "expected one 'a.yaml: Permission denied' error";
    }
    if (second->state.size() != 1) return "the last good objects of a.yaml were dropped";
    return "";
  };
  if (geteuid() != 0) {
    EXPECT_EQ(check(), "");
    return;
  }
  constexpr uid_t kNobody = 65534;
  ASSERT_EQ(chown((dir_ / "a.yaml").c_str(), kNobody, kNobody), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(3);
    std::string problem = check();
    if (!problem.empty()) fprintf(stderr, "as nobody: %s\n", problem.c_str());
    _exit(problem.empty() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "see the child's message above (3: could not drop to nobody)";
}

TEST_F(ManifestDirectoryTest, MissingDirectoryIsAnErrorAndKeepsState) {
  Write("a.yaml", ServiceYaml("a", "127.10.0.1", "10.0.0.1"));
  ManifestDirectory dir(dir_);
  Reload(dir);
  std::filesystem::remove_all(dir_);
  absl::StatusOr<ReloadResult> result = dir.Reload();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(result.status().message(), HasSubstr(dir_.string()));
  EXPECT_THAT(dir.state(), SizeIs(1));
}

// ---- ManifestWatcher ------------------------------------------------------------------------

TEST_F(ManifestDirectoryTest, WatcherNoticesAWrite) {
  absl::StatusOr<ManifestWatcher> watcher = ManifestWatcher::Create(dir_);
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  std::ofstream(dir_ / "a.yaml") << ServiceYaml("a", "127.10.0.1", "10.0.0.1");
  absl::StatusOr<bool> changed = watcher->WaitForChange(absl::Seconds(5));
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
}

TEST_F(ManifestDirectoryTest, WatcherTimesOutWhenQuiet) {
  absl::StatusOr<ManifestWatcher> watcher = ManifestWatcher::Create(dir_);
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  const absl::Time start = absl::Now();
  absl::StatusOr<bool> changed = watcher->WaitForChange(absl::Milliseconds(100));
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_FALSE(*changed);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));
}

TEST_F(ManifestDirectoryTest, WatcherFoldsABurstIntoOneChange) {
  absl::StatusOr<ManifestWatcher> watcher = ManifestWatcher::Create(dir_);
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  for (int i = 0; i < 5; ++i) {
    Write(absl::StrCat("f", i, ".yaml"), ServiceYaml("a", "127.10.0.1", "10.0.0.1"));
  }
  std::filesystem::remove(dir_ / "f0.yaml");
  absl::StatusOr<bool> changed = watcher->WaitForChange(absl::Seconds(5), absl::Milliseconds(50));
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  // Everything in the burst was consumed by the first wait.
  changed = watcher->WaitForChange(absl::Milliseconds(100));
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_FALSE(*changed);
}

TEST_F(ManifestDirectoryTest, MovedWatcherSeesADelete) {
  std::ofstream(dir_ / "a.yaml") << "x: 1\n";
  absl::StatusOr<ManifestWatcher> created = ManifestWatcher::Create(dir_);
  ASSERT_TRUE(created.ok()) << created.status();
  ManifestWatcher watcher = *std::move(created);  // the fd moves with it
  std::filesystem::remove(dir_ / "a.yaml");
  absl::StatusOr<bool> changed = watcher.WaitForChange(absl::Seconds(5));
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
}

TEST_F(ManifestDirectoryTest, WatcherReportsTheDirectoryGoingAway) {
  absl::StatusOr<ManifestWatcher> watcher = ManifestWatcher::Create(dir_);
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  std::filesystem::remove_all(dir_);
  absl::StatusOr<bool> changed = watcher->WaitForChange(absl::Seconds(5));
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(changed.status().message(), HasSubstr("was deleted or moved"));
  // And keeps saying so rather than blocking.
  EXPECT_EQ(watcher->WaitForChange(absl::Seconds(5)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ManifestDirectoryTest, WatcherOnMissingDirectoryIsNotFound) {
  absl::StatusOr<ManifestWatcher> watcher = ManifestWatcher::Create(dir_ / "nope");
  ASSERT_FALSE(watcher.ok());
  EXPECT_EQ(watcher.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(watcher.status().message(), HasSubstr("nope"));
}

}  // namespace
}  // namespace sockmesh::sources
