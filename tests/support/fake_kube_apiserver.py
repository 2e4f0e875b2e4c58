#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for the Kubernetes API server in tests: HTTPS on 127.0.0.1, replaying scripted list
and watch responses in the JSON shape the real server uses, and logging every request.

No API server runs on the test machines, so this is what the Kubernetes source is tested against.

Script (JSON), per resource path ("/api/v1/services"):
  {"lists":   [{"status": 200, "body": {...ServiceList...}}, ...],
   "watches": [{"status": 200, "steps": [...], "end": "close" | "drop" | "hold"}, ...]}
Requests without watch=1 take the next list (the last one repeats); with watch=1 the next watch
(when none is left, the watch is held open and silent until the client leaves). A "body" is sent
as JSON; a list "pages" entry instead of "body" is served one page per request of a paginated
list, the continue token being the index of the next page. A watch with a status other than 200
answers with its "body" (a Status object).
Watch steps:
  {"event": {"type": "ADDED", "object": {...}}}   one event line
  {"raw": "text"}                                 bytes as they are (e.g. half an event)
  {"sleep_ms": N}
  {"wait_file": "/path"}                           until the file exists (a test's go-ahead; 60 s)
Ends: "close" ends the response properly; "drop" closes the connection without ending the chunked
body (a dropped connection); "hold" keeps it open, sending nothing.

Each request is appended to the log as one JSON line: method, path, query, authorization (and for
PATCH, which is always answered 200, content_type and the JSON body).
The chosen port is written to --port-file once the server listens.
"""
import argparse
import json
import os
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"script": {}, "taken": {}, "log": None}


def take(path, kind):
    """The next scripted response of `kind` ("lists"/"watches") for `path`, or None."""
    with LOCK:
        entries = STATE["script"].get(path, {}).get(kind, [])
        index = STATE["taken"].get((path, kind), 0)
        STATE["taken"][(path, kind)] = index + 1
        if index < len(entries):
            return entries[index]
        if kind == "lists" and entries:
            return entries[-1]
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in
                 urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        with LOCK:
            STATE["log"].write(json.dumps({
                "method": "GET", "path": url.path, "query": query,
                "authorization": self.headers.get("Authorization", ""),
            }) + "\n")
            STATE["log"].flush()
        if url.path not in STATE["script"]:
            self.send_json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": "the server could not find the requested resource",
                                 "reason": "NotFound", "code": 404})
            return
        if query.get("watch") in ("1", "true"):
            self.watch(url.path)
        else:
            self.list(url.path, query)

    def do_PATCH(self):
        """Status writes: logged with their body and content type, answered 200 with the patch."""
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode(errors="replace")
        with LOCK:
            STATE["log"].write(json.dumps({
                "method": "PATCH", "path": url.path, "query": {},
                "authorization": self.headers.get("Authorization", ""),
                "content_type": self.headers.get("Content-Type", ""), "body": body,
            }) + "\n")
            STATE["log"].flush()
        self.send_json(200, body if isinstance(body, dict) else {})

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def list(self, path, query):
        entry = take(path, "lists")
        if entry is None:
            entry = {"status": 500, "body": {"kind": "Status", "code": 500, "message": "no list"}}
        if "pages" in entry:
            page = int(query.get("continue") or 0)
            self.send_json(200, entry["pages"][page])
            return
        self.send_json(entry.get("status", 200), entry["body"])

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, path):
        entry = take(path, "watches") or {"steps": [], "end": "hold"}
        status = entry.get("status", 200)
        if status != 200:
            self.send_json(status, entry["body"])
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for step in entry.get("steps", []):
            if "event" in step:
                self.chunk(json.dumps(step["event"]).encode() + b"\n")
            elif "raw" in step:
                self.chunk(step["raw"].encode())
            elif "sleep_ms" in step:
                time.sleep(step["sleep_ms"] / 1000.0)
            elif "wait_file" in step:
                deadline = time.monotonic() + 60
                while not os.path.exists(step["wait_file"]) and time.monotonic() < deadline:
                    time.sleep(0.05)
        end = entry.get("end", "hold")
        if end == "close":
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        elif end == "drop":
            # No terminating chunk and no TLS close_notify: the client sees the stream cut short.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        else:
            time.sleep(120)  # the test kills the server long before this
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, context):
        self.context = context
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the request's own thread, so a client that rejects the
        # certificate cannot stall the accept loop.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        super().finish_request(tls, client_address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    with open(args.script) as f:
        STATE["script"] = json.load(f)
    STATE["log"] = open(args.log, "a")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server = Server(("127.0.0.1", 0), context)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)  # the test sees the whole port number or nothing
    server.serve_forever()


if __name__ == "__main__":
    main()
