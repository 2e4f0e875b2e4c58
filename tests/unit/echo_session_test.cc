// SPDX-License-Identifier: Apache-2.0
// The echo backend's protocol and address parsing, without sockets.
#include "services/echo/echo_session.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/echo/socket_address.h"

namespace sockmesh::echo {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kJsonGet[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 48\r\n"
    "Connection: keep-alive\r\n\r\n{\"service\":\"echo\",\"backend\":\"be\",\"path\":\"/a/b\"}\n";

std::string Feed(EchoSession& session, const std::string& data) {
  session.OnData(data);
  return std::exchange(session.output(), "");
}

TEST(EchoSessionTest, AnswersGetWithJson) {
  EchoSession session("be");
  EXPECT_EQ(Feed(session, "GET /a/b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"), kJsonGet);
  EXPECT_FALSE(session.closing());
}

TEST(EchoSessionTest, RequestSplitAcrossReads) {
  EchoSession session("be");
  const std::string request = "GET /a/b HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string out;
  for (char c : request) out += Feed(session, std::string(1, c));
  EXPECT_EQ(out, kJsonGet);
}

TEST(EchoSessionTest, PipelinedRequestsAnsweredInOrder) {
  EchoSession session("be");
  const std::string out = Feed(
      session, "GET /a/b HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\nGET /a/b HTTP/1.1\r\n\r\n");
  EXPECT_THAT(out, StartsWith(kJsonGet));
  EXPECT_THAT(out, HasSubstr("{\"status\":\"ok\",\"service\":\"echo\"}\n"));
  EXPECT_THAT(out, EndsWith(kJsonGet));
}

TEST(EchoSessionTest, Http10ClosesUnlessKeepAlive) {
  EchoSession closes("be");
  EXPECT_THAT(Feed(closes, "GET / HTTP/1.0\r\n\r\n"), HasSubstr("Connection: close\r\n"));
  EXPECT_TRUE(closes.closing());

  EchoSession stays("be");
  EXPECT_THAT(Feed(stays, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
              HasSubstr("Connection: keep-alive\r\n"));
  EXPECT_FALSE(stays.closing());
}

TEST(EchoSessionTest, ConnectionCloseEndsSession) {
  EchoSession session("be");
  EXPECT_THAT(Feed(session, "GET / HTTP/1.1\r\nconnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
              HasSubstr("Connection: close\r\n"));
  EXPECT_TRUE(session.closing());
  EXPECT_EQ(Feed(session, "GET / HTTP/1.1\r\n\r\n"), "");
}

TEST(EchoSessionTest, HeadHasNoBody) {
  EchoSession session("be");
  const std::string out = Feed(session, "HEAD /a/b HTTP/1.1\r\n\r\n");
  EXPECT_THAT(out, HasSubstr("Content-Length: 48\r\n"));
  EXPECT_THAT(out, EndsWith("\r\n\r\n"));
}

TEST(EchoSessionTest, BytesPathAnswersWithThatManyBytes) {
  EchoSession session("be");
  const std::string out =
      Feed(session, "GET /bytes/65536 HTTP/1.1\r\n\r\nGET /bytes/0 HTTP/1.1\r\n\r\n");
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 65536\r\n"
      "Connection: keep-alive\r\n\r\n";
  ASSERT_THAT(out, StartsWith(head));
  EXPECT_EQ(out.substr(head.size(), 65536), std::string(65536, 'x'));
  EXPECT_THAT(out.substr(head.size() + 65536), HasSubstr("Content-Length: 0\r\n"));
  EXPECT_THAT(out, EndsWith("\r\n\r\n"));
  EXPECT_FALSE(session.closing());
}

TEST(EchoSessionTest, BytesPathRejectsSizesThatAreNotOne) {
  for (const std::string size : {"", "12a", "-1", "16777217", "99999999999"}) {
    EchoSession session("be");
    const std::string out = Feed(session, "GET /bytes/" + size + " HTTP/1.1\r\n\r\n");
    EXPECT_THAT(out, StartsWith("HTTP/1.1 400 Bad Request\r\n")) << size;
    EXPECT_THAT(out,
                HasSubstr("N must be a number of bytes from 0 to 16777216, not '" + size + "'"))
        << size;
    EXPECT_FALSE(session.closing()) << size;
  }
}

TEST(EchoSessionTest, OtherMethodsGet405AndTheirBodyIsSkipped) {
  EchoSession session("be");
  const std::string out =
      Feed(session,
           "POST /a/b HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello\nworldGET /a/b HTTP/1.1\r\n\r\n");
  EXPECT_THAT(out, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(out, HasSubstr("Allow: GET, HEAD\r\n"));
  EXPECT_THAT(out, EndsWith(kJsonGet));
}

TEST(EchoSessionTest, MalformedOrUnsupportedRequestsAreRejectedAndClosed) {
  struct Case {
    std::string request;
    std::string status;
  };
  for (const Case& c :
       {Case{"GET / HTTP/1.1\r\nno colon here\r\n\r\n", "400"},
        Case{"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "400"},
        Case{"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"},
        Case{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "501"},
        Case{"GET / HTTP/1.1\r\n\r\nnot a request\r\n", "400"}}) {
    EchoSession session("be");
    EXPECT_THAT(Feed(session, c.request), HasSubstr("HTTP/1.1 " + c.status)) << c.request;
    EXPECT_TRUE(session.closing()) << c.request;
  }
}

TEST(EchoSessionTest, OversizedHeadGets431) {
  EchoSession session("be");
  const std::string out = Feed(
      session, "GET / HTTP/1.1\r\nX: " + std::string(EchoSession::kMaxLineBytes, 'a') + "\r\n");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 431 ")) << out.substr(0, 100);
  EXPECT_TRUE(session.closing());
}

TEST(EchoSessionTest, NonUtf8PathDoesNotThrow) {
  EchoSession session("be");
  EXPECT_THAT(Feed(session, "GET /\xff\xfe HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK"));
}

TEST(EchoSessionTest, NonHttpFirstLineMeansLineEcho) {
  EchoSession session("be");
  EXPECT_EQ(Feed(session, "hello\r\nworld\n"), "be: hello\r\nbe: world\n");
  // Once in line mode, even a request line is just a line.
  EXPECT_EQ(Feed(session, "GET / HTTP/1.1\n"), "be: GET / HTTP/1.1\n");
  EXPECT_EQ(Feed(session, "\n"), "be: \n");
}

TEST(EchoSessionTest, PartialLineIsEchoedAtEndOfInput) {
  EchoSession session("be");
  EXPECT_EQ(Feed(session, "one\ntw"), "be: one\n");
  session.OnEndOfInput();
  EXPECT_EQ(session.output(), "be: tw\n");
  EXPECT_TRUE(session.closing());
}

TEST(EchoSessionTest, OverlongLineIsEchoedInPieces) {
  EchoSession session("be");
  const std::string piece(EchoSession::kMaxLineBytes, 'x');
  // Fed as the network would deliver it: a read never exceeds the limit by much.
  std::string out = Feed(session, piece + "x");
  out += Feed(session, piece.substr(1));
  out += Feed(session, "tail\n");
  // Compared as a bool: a failure would otherwise print 128 KiB.
  EXPECT_TRUE(out == "be: " + piece + "\nbe: " + piece + "\nbe: tail\n") << out.size();
  EXPECT_FALSE(session.closing());
}

TEST(SocketAddressTest, ParsesIpv4AndIpv6) {
  absl::StatusOr<SocketAddress> v4 = ParseSocketAddress("127.0.0.11:8080");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->length, sizeof(sockaddr_in));
  EXPECT_EQ(FormatSocketAddress(*v4), "127.0.0.11:8080");

  absl::StatusOr<SocketAddress> v6 = ParseSocketAddress("[::1]:0");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->family(), AF_INET6);
  EXPECT_EQ(FormatSocketAddress(*v6), "[::1]:0");
}

TEST(SocketAddressTest, RejectsMalformedAddressesNamingThem) {
  for (const char* text : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                           "localhost:80", "::1:80", "[::1:80", "[nope]:80", "1.2.3.4:8a"}) {
    absl::StatusOr<SocketAddress> address = ParseSocketAddress(text);
    ASSERT_FALSE(address.ok()) << text;
    EXPECT_EQ(address.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(address.status().message(), HasSubstr(text));
  }
}

}  // namespace
}  // namespace sockmesh::echo
