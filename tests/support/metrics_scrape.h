// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_TESTS_SUPPORT_METRICS_SCRAPE_H_
#define SOCKMESH_TESTS_SUPPORT_METRICS_SCRAPE_H_

#include <cstdint>
#include <optional>
#include <string>

namespace sockmesh::testing {

// GET /metrics from 127.0.0.1:`port` over a plain socket; the body, "" on failure.
std::string Scrape(uint16_t port);

// The value of the sample whose name-and-labels are exactly `series`; nullopt when absent.
std::optional<double> MetricValue(const std::string& text, const std::string& series);

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_METRICS_SCRAPE_H_
