// SPDX-License-Identifier: Apache-2.0
// The protocol of one TCP connection to the echo backend, without any socket: bytes in, reply
// bytes out. The server owns the socket and moves bytes; this decides what to answer.
#ifndef SOCKMESH_SERVICES_ECHO_ECHO_SESSION_H_
#define SOCKMESH_SERVICES_ECHO_ECHO_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "services/echo/http_message.h"

namespace sockmesh::echo {

// A connection whose first line is an HTTP/1.x request line is served as HTTP for its whole life:
// GET/HEAD get a JSON description of this backend (`/health` a health document; `/bytes/N` a body
// of N bytes, so benchmarks can choose the response size), other methods 405, keep-alive and
// pipelining included. Any other first line turns it into a line echo: each
// line comes back as "NAME: line", with the client's line ending.
class EchoSession {
 public:
  // Longest line (or HTTP head) buffered while waiting for its end. Longer echo lines are answered
  // in pieces; longer HTTP heads get 431 and a close.
  static constexpr size_t kMaxLineBytes = 64 * 1024;
  // Largest body `/bytes/N` answers; larger N gets 400.
  static constexpr size_t kMaxPayloadBytes = 16 * 1024 * 1024;

  explicit EchoSession(std::string backend_name);

  // Consumes bytes received from the client; replies are appended to output().
  void OnData(std::string_view data);
  // The client will send nothing more: a trailing unterminated echo line is still answered.
  void OnEndOfInput();

  // Reply bytes not yet sent. The caller writes them out and erases what was written.
  std::string& output() { return output_; }
  // True once the session takes no more input; close the connection when output() is empty.
  bool closing() const { return closing_; }

 private:
  enum class Mode { kUndecided, kLines, kHttp };
  enum class HttpState { kRequestLine, kHeaders, kBody };

  // Handles complete lines and body bytes in input_ until it needs more data.
  void Process();
  // Consumes request body bytes; false if it needs more input.
  bool SkipBody();
  void HandleLine(std::string_view line, std::string_view eol);
  void HandleOverlongLine(std::string_view partial);
  void HandleHttpLine(std::string_view line);
  void FinishRequestHead();
  void EchoLine(std::string_view line, std::string_view eol);
  // Queues a response; a response that cannot keep the connection also ends the session.
  void Respond(const HttpResponse& response, bool keep_alive, bool include_body = true);
  // Answers with a JSON error and ends the session: used when the byte stream cannot be trusted.
  void Reject(int status, std::string_view reason, std::string_view message);
  HttpResponse AnswerGet() const;

  std::string name_;
  std::string input_;
  size_t consumed_ = 0;  // Bytes of input_ already handled; dropped at the end of Process().
  std::string output_;
  Mode mode_ = Mode::kUndecided;
  HttpState http_state_ = HttpState::kRequestLine;
  HttpRequestHead request_;
  size_t head_bytes_ = 0;
  uint64_t body_remaining_ = 0;
  bool closing_ = false;
};

}  // namespace sockmesh::echo

#endif  // SOCKMESH_SERVICES_ECHO_ECHO_SESSION_H_
