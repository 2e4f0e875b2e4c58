// SPDX-License-Identifier: Apache-2.0
#ifndef SOCKMESH_TESTS_SUPPORT_METRICS_SCRAPE_H_
#define SOCKMESH_TESTS_SUPPORT_METRICS_SCRAPE_H_

#include <cstdint>
#include <optional>
#include <string>

namespace sockmesh::testing {

// One HTTP/1.0 GET's answer: the status code (0 when there was no answer) and the body.
struct HttpAnswer {
  int status = 0;
  std::string body;
};
// GET `path` from 127.0.0.1:`port` over a plain socket.
HttpAnswer HttpGet(uint16_t port, const std::string& path);

// GET /metrics from 127.0.0.1:`port`; the body, "" on failure.
std::string Scrape(uint16_t port);

// The value of the sample whose name-and-labels are exactly `series`; nullopt when absent.
std::optional<double> MetricValue(const std::string& text, const std::string& series);

}  // namespace sockmesh::testing

#endif  // SOCKMESH_TESTS_SUPPORT_METRICS_SCRAPE_H_
