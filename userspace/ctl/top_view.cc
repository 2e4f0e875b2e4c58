// SPDX-License-Identifier: Apache-2.0
#include "userspace/ctl/top_view.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "userspace/ctl/text_table.h"

namespace sockmesh::ctl {
namespace {

// Per svc_id, over every source cgroup.
std::map<uint32_t, sm_conn_stats> BySvc(const std::vector<bpf::ConnStatsEntry>& entries) {
  std::map<uint32_t, sm_conn_stats> out;
  for (const bpf::ConnStatsEntry& e : entries) bpf::AddConnStats(out[e.key.svc_id], e.stats);
  return out;
}

std::string Duration(double seconds) {
  if (seconds == 0) return "-";
  if (seconds < 1e-3) return absl::StrFormat("%.0fus", seconds * 1e6);
  if (seconds < 1) return absl::StrFormat("%.2fms", seconds * 1e3);
  return absl::StrFormat("%.2fs", seconds);
}

std::string Rate(double per_second) { return absl::StrFormat("%.1f", per_second); }

}  // namespace

std::vector<TopRow> ComputeTop(const std::vector<bpf::ConnStatsEntry>& before,
                               const std::vector<bpf::ConnStatsEntry>& after,
                               const std::map<uint32_t, std::string>& frontends, double seconds) {
  std::map<uint32_t, sm_conn_stats> old = BySvc(before);
  std::vector<TopRow> rows;
  for (auto& [svc_id, now] : BySvc(after)) {
    sm_conn_stats d = now;
    if (auto o = old.find(svc_id); o != old.end()) bpf::SubtractConnStats(d, o->second);
    auto name = frontends.find(svc_id);
    double per_second = seconds > 0 ? 1 / seconds : 0;
    rows.push_back(TopRow{
        .frontend = name != frontends.end() ? name->second : absl::StrCat("svc_id ", svc_id),
        .requests_per_second = static_cast<double>(d.requests) * per_second,
        .request_p50_seconds = bpf::HistQuantileSeconds(d.request_us, 0.5),
        .request_p99_seconds = bpf::HistQuantileSeconds(d.request_us, 0.99),
        .connections_per_second = static_cast<double>(d.opened) * per_second,
        .failed_per_second = static_cast<double>(d.failed) * per_second,
        .active = now.established >= now.closed ? now.established - now.closed : 0,
    });
  }
  std::sort(rows.begin(), rows.end(), [](const TopRow& a, const TopRow& b) {
    return std::tie(b.requests_per_second, a.frontend) <
           std::tie(a.requests_per_second, b.frontend);
  });
  return rows;
}

std::string FormatTopTable(const std::vector<TopRow>& rows, double seconds) {
  TextTable table({"FRONTEND", "REQ/S", "P50", "P99", "CONN/S", "FAILED/S", "ACTIVE"});
  for (const TopRow& r : rows) {
    table.AddRow({r.frontend, Rate(r.requests_per_second), Duration(r.request_p50_seconds),
                  Duration(r.request_p99_seconds), Rate(r.connections_per_second),
                  Rate(r.failed_per_second), absl::StrCat(r.active)});
  }
  std::string out = absl::StrFormat(
      "over the last %.1fs; latency: first request byte to first response byte, in the kernel\n",
      seconds);
  if (rows.empty()) return out + "no mesh connections to a service yet\n";
  return out + table.Render();
}

std::string FormatTopJson(const std::vector<TopRow>& rows, double seconds) {
  nlohmann::ordered_json services = nlohmann::ordered_json::array();
  for (const TopRow& r : rows) {
    services.push_back({{"frontend", r.frontend},
                        {"requests_per_second", r.requests_per_second},
                        {"request_p50_seconds", r.request_p50_seconds},
                        {"request_p99_seconds", r.request_p99_seconds},
                        {"connections_per_second", r.connections_per_second},
                        {"failed_per_second", r.failed_per_second},
                        {"active_connections", r.active}});
  }
  nlohmann::ordered_json out = {{"interval_seconds", seconds}, {"services", std::move(services)}};
  return out.dump(2) + "\n";
}

}  // namespace sockmesh::ctl
