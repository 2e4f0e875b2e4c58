// SPDX-License-Identifier: Apache-2.0
#include "tests/support/fake_kube_apiserver.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

#ifndef SOCKMESH_PYTHON3
#error "SOCKMESH_PYTHON3 must name the python3 interpreter"
#endif
#ifndef SOCKMESH_OPENSSL
#error "SOCKMESH_OPENSSL must name the openssl binary"
#endif
#ifndef SOCKMESH_FAKE_APISERVER_PY
#error "SOCKMESH_FAKE_APISERVER_PY must name fake_kube_apiserver.py"
#endif

extern char** environ;

namespace sockmesh::testing {
namespace {

using nlohmann::json;

// Spawns argv with stdout and stderr sent to `output`; returns the PID or -1.
pid_t Spawn(const std::vector<std::string>& args, const std::filesystem::path& output) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs one openssl command to completion.
absl::Status Openssl(const std::filesystem::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), SOCKMESH_OPENSSL);
  const std::filesystem::path log = dir / "openssl.log";
  const pid_t pid = Spawn(args, log);
  if (pid < 0) return absl::InternalError("cannot start openssl");
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("openssl ", args[1], " failed: ", ReadFile(log)));
  }
  return absl::OkStatus();
}

// A CA (EC P-256: fast to generate) named `name` in dir/<name>.crt and .key.
absl::Status MakeCa(const std::filesystem::path& dir, const std::string& name) {
  return Openssl(
      dir, {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", (dir / (name + ".key")).string(), "-out", (dir / (name + ".crt")).string(),
            "-days", "2", "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
}

absl::Status MakeServerCert(const std::filesystem::path& dir) {
  const std::string d = dir.string() + "/";
  if (absl::Status s = Openssl(
          dir, {"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", d + "server.key", "-out", d + "server.csr", "-subj", "/CN=127.0.0.1"});
      !s.ok()) {
    return s;
  }
  std::ofstream(dir / "server.ext") << "subjectAltName=IP:127.0.0.1\n"
                                    << "basicConstraints=CA:FALSE\n"
                                    << "extendedKeyUsage=serverAuth\n";
  return Openssl(dir, {"x509", "-req", "-in", d + "server.csr", "-CA", d + "ca.crt", "-CAkey",
                       d + "ca.key", "-CAcreateserial", "-out", d + "server.crt", "-days", "2",
                       "-extfile", d + "server.ext"});
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeKubeApiServer>> FakeKubeApiServer::Start(const json& script) {
  const char* base = getenv("TMPDIR");
  std::string templ =
      absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/sockmesh-kube-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  std::unique_ptr<FakeKubeApiServer> server(new FakeKubeApiServer(templ));
  const std::filesystem::path& dir = server->dir_;
  if (absl::Status s = MakeCa(dir, "ca"); !s.ok()) return s;
  if (absl::Status s = MakeCa(dir, "other-ca"); !s.ok()) return s;
  if (absl::Status s = MakeServerCert(dir); !s.ok()) return s;
  server->ca_file_ = dir / "ca.crt";
  server->other_ca_file_ = dir / "other-ca.crt";
  server->token_file_ = dir / "token";
  server->log_file_ = dir / "requests.log";
  // A trailing newline, as in the mounted secret: the client must trim it.
  std::ofstream(server->token_file_) << kToken << "\n";
  std::ofstream(dir / "script.json") << script.dump();
  const std::filesystem::path port_file = dir / "port";
  server->pid_ =
      Spawn({SOCKMESH_PYTHON3, SOCKMESH_FAKE_APISERVER_PY, "--cert", (dir / "server.crt").string(),
             "--key", (dir / "server.key").string(), "--script", (dir / "script.json").string(),
             "--log", server->log_file_.string(), "--port-file", port_file.string()},
            dir / "server.out");
  if (server->pid_ < 0) return absl::InternalError("cannot start the fake API server");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::filesystem::exists(port_file)) {
      server->port_ = std::stoi(ReadFile(port_file));
      return server;
    }
    int status = 0;
    if (waitpid(server->pid_, &status, WNOHANG) == server->pid_) {
      server->pid_ = -1;
      return absl::InternalError(
          absl::StrCat("the fake API server exited: ", ReadFile(dir / "server.out")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("the fake API server did not start within 10 s");
}

FakeKubeApiServer::~FakeKubeApiServer() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string FakeKubeApiServer::url() const { return absl::StrCat("https://127.0.0.1:", port_); }

std::vector<json> FakeKubeApiServer::Requests() const {
  std::vector<json> out;
  std::ifstream in(log_file_);
  for (std::string line; std::getline(in, line);) {
    json request = json::parse(line, nullptr, false);
    if (!request.is_discarded()) out.push_back(std::move(request));
  }
  return out;
}

json ServiceJson(const std::string& ns, const std::string& name, const std::string& cluster_ip,
                 int port, int target_port, const std::string& resource_version) {
  return {
      {"kind", "Service"},
      {"apiVersion", "v1"},
      {"metadata",
       {{"name", name},
        {"namespace", ns},
        {"uid", absl::StrCat("uid-", ns, "-", name)},
        {"resourceVersion", resource_version},
        {"creationTimestamp", "2026-11-24T20:00:00Z"}}},
      {"spec",
       {{"type", "ClusterIP"},
        {"clusterIP", cluster_ip},
        {"clusterIPs", {cluster_ip}},
        {"ipFamilies", {"IPv4"}},
        {"ipFamilyPolicy", "SingleStack"},
        {"sessionAffinity", "None"},
        {"internalTrafficPolicy", "Cluster"},
        {"ports",
         {{{"name", "http"}, {"protocol", "TCP"}, {"port", port}, {"targetPort", target_port}}}},
        {"selector", {{"app", name}}}}},
      {"status", {{"loadBalancer", json::object()}}}};
}

json SliceJson(const std::string& ns, const std::string& name, const std::string& service,
               const std::vector<std::string>& addresses, int port,
               const std::string& resource_version) {
  json endpoints = json::array();
  for (const std::string& a : addresses) {
    endpoints.push_back(
        {{"addresses", {a}},
         {"conditions", {{"ready", true}, {"serving", true}, {"terminating", false}}},
         {"nodeName", "node-1"},
         {"targetRef", {{"kind", "Pod"}, {"namespace", ns}, {"name", "pod-" + a}}}});
  }
  return {{"kind", "EndpointSlice"},
          {"apiVersion", "discovery.k8s.io/v1"},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"resourceVersion", resource_version},
            {"labels",
             {{"kubernetes.io/service-name", service},
              {"endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"}}},
            {"generateName", service + "-"}}},
          {"addressType", "IPv4"},
          {"endpoints", endpoints},
          {"ports", {{{"name", "http"}, {"protocol", "TCP"}, {"port", port}}}}};
}

json ListJson(const std::string& list_kind, const std::string& api_version,
              const std::string& resource_version, std::vector<json> items) {
  for (json& item : items) {
    item.erase("kind");
    item.erase("apiVersion");
  }
  return {{"kind", list_kind},
          {"apiVersion", api_version},
          {"metadata", {{"resourceVersion", resource_version}}},
          {"items", items}};
}

json EventJson(const std::string& type, const json& object) {
  return {{"type", type}, {"object", object}};
}

json BookmarkJson(const std::string& kind, const std::string& api_version,
                  const std::string& resource_version) {
  return {{"type", "BOOKMARK"},
          {"object",
           {{"kind", kind},
            {"apiVersion", api_version},
            {"metadata",
             {{"resourceVersion", resource_version},
              {"annotations", {{"k8s.io/initial-events-end", "true"}}}}}}}};
}

json GoneJson() {
  return {{"type", "ERROR"},
          {"object",
           {{"kind", "Status"},
            {"apiVersion", "v1"},
            {"metadata", json::object()},
            {"status", "Failure"},
            {"message", "too old resource version: 100 (250)"},
            {"reason", "Expired"},
            {"code", 410}}}};
}

}  // namespace sockmesh::testing
