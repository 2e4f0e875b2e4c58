// SPDX-License-Identifier: Apache-2.0
// One kind of request the load generator sends. Each worker thread owns one sender, so a sender
// needs no locking (an HTTP sender keeps its worker's keep-alive connection).
#ifndef SOCKMESH_SERVICES_LOADGEN_REQUEST_SENDER_H_
#define SOCKMESH_SERVICES_LOADGEN_REQUEST_SENDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace sockmesh::loadgen {

class RequestSender {
 public:
  virtual ~RequestSender() = default;
  // Sends request number `sequence` and waits for its answer. Returns "" on success, else a short
  // error class for the summary ("UNAVAILABLE", "http 503", "connect: Connection refused").
  virtual std::string Send(uint64_t sequence) = 0;
  // Opens what Send needs (the worker's connection, its channel's transport) before the clock
  // starts, so that a request's latency does not include connecting (as in wrk); connecting is
  // measured by --connection-per-request. Best effort: a failure shows as the first Send's error.
  virtual void Prepare() {}
};

// Makes the sender of worker `worker`.
using SenderFactory = std::function<std::unique_ptr<RequestSender>(int worker)>;

}  // namespace sockmesh::loadgen

#endif  // SOCKMESH_SERVICES_LOADGEN_REQUEST_SENDER_H_
