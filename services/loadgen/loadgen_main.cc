// SPDX-License-Identifier: Apache-2.0
// sockmesh-loadgen: load for the platform services, gRPC or HTTP/1.1, open or closed loop, with a
// latency histogram. See load_runner.h for how open-loop latency is measured.
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>

#include "CLI/CLI.hpp"
#include "services/loadgen/grpc_senders.h"
#include "services/loadgen/http_sender.h"
#include "services/loadgen/load_report.h"
#include "services/platform/service_address.h"
#include "userspace/sys/stop_signal.h"

int main(int argc, char** argv) {
  using namespace sockmesh;
  CLI::App app{
      "sockmesh-loadgen: load for the platform services. Open loop at --rate (requests scheduled "
      "in advance, latency from the scheduled time) or closed loop (--rate 0) with --concurrency "
      "workers; gRPC (place-order, get-product) or HTTP/1.1 GET. Workers connect before the clock "
      "starts (connecting is measured by --connection-per-request). Prints progress each second "
      "and a latency summary (p50/p90/p99/p99.9/max)."};
  std::string protocol = "grpc";
  std::string call = "place-order";
  std::string addr;
  std::string path = "/health";
  double rate = 100;
  double duration_s = 10;
  int concurrency = 16;
  int connections = 8;
  int timeout_ms = 5000;
  loadgen::GrpcCallOptions grpc_options;
  std::string output = "text";
  bool quiet = false;
  bool json_histogram = false;
  bool connection_per_request = false;
  app.add_option("--protocol", protocol, "grpc or http")
      ->check(CLI::IsMember({"grpc", "http"}))
      ->capture_default_str();
  app.add_option("--call", call, "gRPC call: place-order (OrderService) or get-product")
      ->check(CLI::IsMember({"place-order", "get-product"}))
      ->capture_default_str();
  app.add_option("--addr", addr,
                 "Target HOST:PORT (gRPC default: ORDER_SERVICE_HOST/_PORT for place-order, "
                 "PRODUCT_SERVICE_HOST/_PORT for get-product; required for http)")
      ->type_name("HOST:PORT");
  app.add_option("--path", path, "HTTP path to GET")->capture_default_str();
  app.add_flag("--connection-per-request", connection_per_request,
               "HTTP: a new connection for every request (\"Connection: close\"), to load "
               "connection setup instead of keep-alive requests");
  app.add_option("--rate", rate, "Requests per second (open loop); 0 = closed loop")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--duration", duration_s, "Seconds to run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("-c,--concurrency", concurrency, "Worker threads (requests in flight at most)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--connections", connections,
                 "gRPC connections, shared by the workers (the mesh balances connections)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--users", grpc_options.users, "place-order cycles through users u-1 ... u-N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--products", grpc_options.products, "Requests cycle through p-1 ... p-N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "Per-request timeout")->capture_default_str();
  app.add_option("-o,--output", output, "Summary format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_flag("--json-histogram", json_histogram,
               "With -o json: also the latency histogram (latency_histogram_ns: [value_ns, count] "
               "per non-empty bucket), to merge runs and take percentiles over all of them");
  app.add_flag("-q,--quiet", quiet, "No progress lines");
  CLI11_PARSE(app, argc, argv);
  if (json_histogram && output != "json") {
    std::cerr << "sockmesh-loadgen: --json-histogram needs -o json (got -o " << output << ")\n";
    return 2;
  }

  const std::string service = call == "get-product" ? "product" : "order";
  absl::StatusOr<std::string> target =
      protocol == "http" && addr.empty()
          ? absl::InvalidArgumentError("--addr is required with --protocol http")
          : platform::ResolveServiceAddress(service, "--addr", addr, 80);
  if (!target.ok()) {
    std::cerr << "sockmesh-loadgen: " << target.status().message() << "\n";
    return 2;
  }
  grpc_options.call = call;
  grpc_options.timeout = std::chrono::milliseconds(timeout_ms);
  loadgen::SenderFactory senders;
  if (protocol == "http") {
    absl::StatusOr<loadgen::SenderFactory> http = loadgen::HttpSenderFactory(
        *target, path, std::chrono::milliseconds(timeout_ms), connection_per_request);
    if (!http.ok()) {
      std::cerr << "sockmesh-loadgen: --addr: " << http.status().message() << "\n";
      return 2;
    }
    senders = *std::move(http);
  } else {
    senders = loadgen::GrpcSenderFactory(
        std::make_shared<platform::ChannelPool>(platform::ChannelPool::Dial(*target, connections)),
        grpc_options);
  }

  loadgen::LoadDescription what{
      .protocol = protocol,
      .request = protocol == "http" ? path : call,
      .target = *target,
      .options = {.rate = rate,
                  .duration = std::chrono::milliseconds(static_cast<int64_t>(duration_s * 1000)),
                  .workers = concurrency}};
  const std::atomic<bool>& stop = sys::InstallStopSignalHandlers();
  std::function<void(const loadgen::Progress&)> progress;
  if (!quiet) {
    progress = [](const loadgen::Progress& p) {
      std::cerr << "sockmesh-loadgen: " << loadgen::ProgressLine(p) << std::endl;
    };
  }
  loadgen::LoadResult result = loadgen::RunLoad(what.options, senders, progress, stop);
  if (output == "json") {
    // One line with the histogram: hundreds of buckets would be thousands of indented lines.
    std::cout << loadgen::ReportJson(what, result, json_histogram).dump(json_histogram ? -1 : 2)
              << std::endl;
  } else {
    std::cout << loadgen::ReportText(what, result);
  }
  return 0;
}
