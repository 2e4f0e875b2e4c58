// SPDX-License-Identifier: Apache-2.0
// The load generator's summary: a few readable lines, or one JSON object (-o json) for scripts.
#ifndef SOCKMESH_SERVICES_LOADGEN_LOAD_REPORT_H_
#define SOCKMESH_SERVICES_LOADGEN_LOAD_REPORT_H_

#include <string>

#include "nlohmann/json.hpp"
#include "services/loadgen/load_runner.h"

namespace sockmesh::loadgen {

// What was run, for the report's header.
struct LoadDescription {
  std::string protocol;  // "grpc" or "http"
  std::string request;   // "place-order", "get-product", or the HTTP path
  std::string target;    // HOST:PORT
  LoadOptions options;
};

// {"protocol", "request", "target", "mode": "open"|"closed", "rate_rps" (open only),
//  "duration_s", "workers", "elapsed_s", "requests", "ok", "errors", "errors_by_kind": {...},
//  "late" and "unsent" (open only), "achieved_rps", "latency_ms":
//  {"p50","p90","p99","p99.9","max"}}; with `histogram`, also "latency_histogram_ns":
//  [[value_ns, count], ...] for every non-empty bucket (value as the quantiles report it), so
//  that a script can merge several runs and take percentiles over all of their requests.
nlohmann::json ReportJson(const LoadDescription& what, const LoadResult& result,
                          bool histogram = false);
std::string ReportText(const LoadDescription& what, const LoadResult& result);
std::string ProgressLine(const Progress& progress);

}  // namespace sockmesh::loadgen

#endif  // SOCKMESH_SERVICES_LOADGEN_LOAD_REPORT_H_
