#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Opens idle connections to one address until one fails, up to --max or --seconds, and holds them.

Each connection leaves from the next of --sources (so more connections fit than one source
address has ephemeral ports), sends one HTTP/1.1 GET and reads the whole answer, so a connection
counts only once it works end to end, through every proxy on the way; then it stays open and idle.
Prints one JSON line: how many were held (still open once all were opened), how many the peer
closed in the meantime, why it stopped, and how long it took. The connections
are closed with RST on exit (SO_LINGER 0), so no TIME_WAIT is left behind.

A process holds at most RLIMIT_NOFILE descriptors, one per connection, and raising the hard limit
takes CAP_SYS_RESOURCE; so --max is shared out over --processes forked processes (by default as
many as that limit needs), which open their shares at the same time. Then the count is their sum,
and it stopped by failure when any of them met one.
"""
import argparse
import json
import math
import os
import resource
import socket
import struct
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h: pick the port at connect(), per destination


def exchange(sock, request):
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    if status != b"200":
        raise ConnectionError("http " + status.decode(errors="replace"))
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the response body")
        body += chunk


def raise_descriptor_limit(want):
    """Up to `want`, or to the hard limit when raising that is not allowed; returns the limit."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_connections(args, count, first):
    """Opens up to `count` connections, the i-th from source `first + i`; returns them and the
    result line."""
    host, port = args.addr.rsplit(":", 1)
    sources = args.sources.split(",")
    request = f"GET {args.path} HTTP/1.1\r\nHost: {args.addr}\r\n\r\n".encode()
    held = []
    stop = "max"
    error = ""
    start = time.monotonic()
    while len(held) < count:
        if time.monotonic() - start > args.seconds:
            stop = "time"
            break
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.settimeout(args.timeout)
            sock.bind((sources[(first + len(held)) % len(sources)], 0))
            sock.connect((host, int(port)))
            exchange(sock, request)
        except (OSError, ValueError, IndexError) as e:
            sock.close()
            stop = "failure"
            error = f"{type(e).__name__}: {e}"
            break
        held.append(sock)
    return held, {"held": len(held), "stop": stop, "error": error,
                  "seconds": round(time.monotonic() - start, 3)}


def still_open(sock):
    """Whether the peer has not closed or reset `sock`: nothing to read (or data) without
    blocking, rather than end of file or an error."""
    sock.setblocking(False)  # a socket with a timeout would wait for data first
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def combine(results):
    """One line for all processes: the counts add up; any failure, then any time limit, is why it
    stopped. `held` counts the connections still open once every process had opened its share (a
    proxy out of connection slots may close idle ones to take new ones); `dropped` the others."""
    failed = [r for r in results if r["stop"] == "failure"]
    stop = "failure" if failed else ("time" if any(r["stop"] == "time" for r in results) else "max")
    opened = sum(r["held"] for r in results)
    held = sum(r.get("open", 0) for r in results)
    return {"held": held, "dropped": opened - held, "stop": stop,
            "error": failed[0]["error"] if failed else "",
            "seconds": max(r["seconds"] for r in results)}


DIED = {"held": 0, "open": 0, "stop": "failure", "error": "a holder process died", "seconds": 0}


def holder(args, count, first, pipes):
    """A forked process: opens its share and writes its result line; once `pipes["check"]` reaches
    end of file (every process has opened its share) counts which are still open and writes that;
    keeps the connections until `pipes["release"]` reaches end of file (the parent is done)."""
    raise_descriptor_limit(count + 256)
    held, result = open_connections(args, count, first)
    os.write(pipes["report"], (json.dumps(result) + "\n").encode())
    while os.read(pipes["check"], 1):
        pass
    result["open"] = sum(still_open(sock) for sock in held)
    os.write(pipes["report"], (json.dumps(result) + "\n").encode())
    os.close(pipes["report"])
    while os.read(pipes["release"], 1):
        pass
    for sock in held:
        sock.close()
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addr", required=True, help="HOST:PORT")
    parser.add_argument("--sources", required=True, help="comma-separated source addresses")
    parser.add_argument("--max", type=int, default=100000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--timeout", type=float, default=2, help="per connect and per answer")
    parser.add_argument("--path", default="/bytes/16")
    parser.add_argument("--hold", type=float, default=0, help="seconds to hold them at the end")
    parser.add_argument("--processes", type=int, default=0,
                        help="processes to share --max over (default: as many as the descriptor "
                             "limit needs)")
    args = parser.parse_args()
    if args.max < 1:
        parser.error(f"--max must be at least 1, got {args.max}")
    per_process = raise_descriptor_limit(args.max + 256) - 256
    processes = args.processes or max(1, math.ceil(args.max / per_process))
    if processes < 1:
        parser.error(f"--processes must be at least 1, got {args.processes}")
    shares = [args.max // processes + (i < args.max % processes) for i in range(processes)]
    check_read, check_write = os.pipe()
    release_read, release_write = os.pipe()
    reports = []
    for i, share in enumerate(shares):
        report_read, report_write = os.pipe()
        if os.fork() == 0:
            try:
                for fd in (report_read, check_write, release_write):
                    os.close(fd)
                holder(args, share, sum(shares[:i]),
                       {"report": report_write, "check": check_read, "release": release_read})
            finally:
                os._exit(1)  # only after an exception: holder() exits itself
        os.close(report_write)
        reports.append(os.fdopen(report_read))
    os.close(check_read)
    os.close(release_read)
    for f in reports:  # every process has opened its share...
        f.readline()
    os.close(check_write)  # ...before any counts what is still open
    results = [json.loads(f.readline() or json.dumps(DIED)) for f in reports]
    print(json.dumps(combine(results)), flush=True)
    if args.hold > 0:
        time.sleep(args.hold)
    os.close(release_write)
    for _ in shares:
        os.wait()
    return 0

if __name__ == "__main__":
    sys.exit(main())
