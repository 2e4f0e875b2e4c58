#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/sidecar/hold_connections.py against a loopback HTTP server of the test's own: the held
count over several processes, why it stopped, and that the connections stay open until the end."""
import json
import os
import socket
import subprocess
import sys
import threading
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "sidecar",
                      "hold_connections.py")


class Server:
    """Answers the first `ok` connections' requests with 200 and later ones with 503, closes the
    first `close_first` after answering (as a proxy out of slots closes idle connections), and
    counts the connections open at once."""

    def __init__(self, ok=10**9, close_first=0):
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = self.listener.getsockname()[1]
        self.ok, self.close_first = ok, close_first
        self.accepted, self.open, self.most_open = 0, 0, 0
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                good = self.accepted <= self.ok
                close = self.accepted <= self.close_first
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self.serve, args=(conn, good, close), daemon=True).start()

    def serve(self, conn, good, close):
        try:
            self.answer(conn, good, close)
        except OSError:  # the client's reset at its exit
            pass
        with self.lock:
            self.open -= 1

    def answer(self, conn, good, close):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            status = b"200 OK" if good else b"503 Service Unavailable"
            conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
            while not close and conn.recv(4096):  # until the client closes
                pass


def hold(port, *args):
    out = subprocess.run([sys.executable, SCRIPT, "--addr", f"127.0.0.1:{port}", "--sources",
                          "127.0.0.1", "--seconds", "20", *args],
                         capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout, out.stderr


class HoldConnectionsTest(unittest.TestCase):
    def test_processes_share_the_count_and_hold_all_at_once(self):
        server = Server()
        code, out, err = hold(server.port, "--max", "30", "--processes", "3", "--hold", "0.5")
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertEqual((result["held"], result["dropped"], result["stop"], result["error"]),
                         (30, 0, "max", ""))
        self.assertEqual(server.accepted, 30)
        self.assertEqual(server.most_open, 30)

    def test_connections_the_peer_closed_are_not_held(self):
        server = Server(close_first=7)
        code, out, err = hold(server.port, "--max", "30", "--processes", "3")
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertEqual((result["held"], result["dropped"], result["stop"]), (23, 7, "max"))

    def test_a_failure_in_any_process_is_why_it_stopped(self):
        server = Server(ok=10)
        code, out, err = hold(server.port, "--max", "30", "--processes", "3")
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        # Every process stops at its first 503, so exactly the 10 good ones are held.
        self.assertEqual((result["held"], result["stop"]), (10, "failure"))
        self.assertIn("503", result["error"])

    def test_rejects_a_max_below_one(self):
        code, _, err = hold(1, "--max", "0")
        self.assertEqual(code, 2)
        self.assertIn("--max must be at least 1, got 0", err)


if __name__ == "__main__":
    unittest.main()
