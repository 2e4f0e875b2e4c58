#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Opens idle connections to one address until one fails, up to --max or --seconds, and holds them.

Each connection leaves from the next of --sources (so more connections fit than one source
address has ephemeral ports), sends one HTTP/1.1 GET and reads the whole answer, so a connection
counts only once it works end to end, through every proxy on the way; then it stays open and idle.
Prints one JSON line: how many were held, why it stopped, and how long it took. The connections
are closed with RST on exit (SO_LINGER 0), so no TIME_WAIT is left behind.
"""
import argparse
import json
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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addr", required=True, help="HOST:PORT")
    parser.add_argument("--sources", required=True, help="comma-separated source addresses")
    parser.add_argument("--max", type=int, default=100000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--timeout", type=float, default=2, help="per connect and per answer")
    parser.add_argument("--path", default="/bytes/16")
    parser.add_argument("--hold", type=float, default=0, help="seconds to hold them at the end")
    args = parser.parse_args()
    host, port = args.addr.rsplit(":", 1)
    sources = args.sources.split(",")
    # Only this process's own limit: each connection is one descriptor here. Raising the hard
    # limit needs CAP_SYS_RESOURCE; without it the soft limit goes up to the hard one.
    want = args.max + 256
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    request = f"GET {args.path} HTTP/1.1\r\nHost: {args.addr}\r\n\r\n".encode()
    held = []
    stop = "max"
    error = ""
    start = time.monotonic()
    while len(held) < args.max:
        if time.monotonic() - start > args.seconds:
            stop = "time"
            break
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.settimeout(args.timeout)
            sock.bind((sources[len(held) % len(sources)], 0))
            sock.connect((host, int(port)))
            exchange(sock, request)
        except (OSError, ValueError, IndexError) as e:
            sock.close()
            stop = "failure"
            error = f"{type(e).__name__}: {e}"
            break
        held.append(sock)
    elapsed = time.monotonic() - start
    print(json.dumps({"held": len(held), "stop": stop, "error": error,
                      "seconds": round(elapsed, 3)}), flush=True)
    if args.hold > 0:
        time.sleep(args.hold)
    for sock in held:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
