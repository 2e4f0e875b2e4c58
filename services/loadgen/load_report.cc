// SPDX-License-Identifier: Apache-2.0
#include "services/loadgen/load_report.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sockmesh::loadgen {
namespace {

double Ms(double ns) { return std::round(ns / 1e3) / 1e3; }  // microsecond resolution

struct Quantile {
  const char* name;
  double q;
};
constexpr Quantile kQuantiles[] = {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}};

double Achieved(const LoadResult& result) {
  return result.elapsed_s > 0 ? static_cast<double>(result.ok + result.errors) / result.elapsed_s
                              : 0;
}

}  // namespace

nlohmann::json ReportJson(const LoadDescription& what, const LoadResult& result, bool histogram) {
  const bool open = what.options.rate > 0;
  nlohmann::json latency;
  for (const Quantile& quantile : kQuantiles) {
    latency[quantile.name] = Ms(result.latency_ns.Quantile(quantile.q));
  }
  latency["max"] = Ms(static_cast<double>(result.latency_ns.max()));
  nlohmann::json out = {
      {"protocol", what.protocol},
      {"request", what.request},
      {"target", what.target},
      {"mode", open ? "open" : "closed"},
      {"duration_s", std::chrono::duration<double>(what.options.duration).count()},
      {"workers", what.options.workers},
      {"elapsed_s", result.elapsed_s},
      {"requests", result.ok + result.errors},
      {"ok", result.ok},
      {"errors", result.errors},
      {"errors_by_kind", result.errors_by_kind},
      {"achieved_rps", Achieved(result)},
      {"latency_ms", latency},
  };
  if (open) {
    out["rate_rps"] = what.options.rate;
    out["late"] = result.late;
    out["unsent"] = result.unsent;
  }
  if (histogram) {
    nlohmann::json buckets = nlohmann::json::array();
    result.latency_ns.ForEachBucket([&buckets](double value_ns, uint64_t count) {
      buckets.push_back({value_ns, count});
    });
    out["latency_histogram_ns"] = std::move(buckets);
  }
  return out;
}

std::string ReportText(const LoadDescription& what, const LoadResult& result) {
  const bool open = what.options.rate > 0;
  std::string out = absl::StrFormat(
      "%s %s to %s, %s, %d workers\n", what.protocol, what.request, what.target,
      open ? absl::StrFormat("open loop at %.0f req/s for %.1f s", what.options.rate,
                             std::chrono::duration<double>(what.options.duration).count())
           : absl::StrFormat("closed loop for %.1f s",
                             std::chrono::duration<double>(what.options.duration).count()),
      what.options.workers);
  absl::StrAppendFormat(&out, "requests %d  ok %d  errors %d  achieved %.1f req/s\n",
                        result.ok + result.errors, result.ok, result.errors, Achieved(result));
  absl::StrAppend(&out, "latency ");
  for (const Quantile& quantile : kQuantiles) {
    absl::StrAppendFormat(&out, " %s %.3f ms ", quantile.name,
                          Ms(result.latency_ns.Quantile(quantile.q)));
  }
  absl::StrAppendFormat(&out, " max %.3f ms\n", Ms(static_cast<double>(result.latency_ns.max())));
  for (const auto& [kind, count] : result.errors_by_kind) {
    absl::StrAppendFormat(&out, "errors: %s: %d\n", kind, count);
  }
  if (open && result.unsent > 0) {
    absl::StrAppendFormat(&out,
                          "note: %d requests due within the run were never sent: the target (or "
                          "--concurrency) could not keep up with --rate\n",
                          result.unsent);
  }
  if (open && result.late > 0) {
    absl::StrAppendFormat(&out,
                          "note: %d requests left more than 1 ms after their scheduled time "
                          "(counted in their latency); more --concurrency may be needed\n",
                          result.late);
  }
  return out;
}

std::string ProgressLine(const Progress& progress) {
  return absl::StrFormat("[%5.1fs] sent %d  ok %d  errors %d  %.1f req/s  mean %.3f ms",
                         progress.elapsed_s, progress.sent, progress.ok, progress.errors,
                         progress.interval_rate, progress.interval_mean_ms);
}

}  // namespace sockmesh::loadgen
