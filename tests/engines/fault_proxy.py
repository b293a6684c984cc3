"""A fault-injecting HTTP proxy on 127.0.0.1, for testing clients against a server that misbehaves.

``FaultProxy(upstream, plan)`` forwards each request to ``upstream`` (a loopback URL), except that the k-th
request it receives gets the fault ``plan[k]``:

- ``"drop"``: the connection is closed before any response (the client sees a disconnect);
- ``"reset"``: the connection is reset (TCP RST) before any response;
- ``"429"`` / ``"500"`` / ``"503"``: that status with an OpenAI-style error body (429 says ``Retry-After: 0``);
- ``"slow"``: forwarded after a delay of ``slow_s`` seconds (the client should just wait);
- ``"hang"``: no answer for ``hang_s`` seconds, then closed (longer than the client's timeout: a timeout);
- ``"truncate"``: forwarded, but the response body is cut in half (the server's work is done, the answer lost);
- ``None`` or ``"ok"``: forwarded untouched.

Requests beyond the plan are forwarded untouched, so the faults are bounded by the plan's length; sleeps are
bounded by ``slow_s``/``hang_s``. Only loopback upstreams are accepted. ``stats`` counts what was done.
Use as a context manager; ``url`` is the proxy's base URL (same path layout as the upstream).
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

FAULTS: tuple[str, ...] = ("drop", "reset", "429", "500", "503", "slow", "hang", "truncate", "ok")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy:
    """See the module docstring. ``plan`` lists the fault of each request in arrival order."""

    def __init__(self, upstream: str, plan: Sequence[str | None], *, slow_s: float = 0.5, hang_s: float = 3.0,
                 upstream_timeout_s: float = 300.0) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in _LOOPBACK or parts.port is None:
            raise ValueError(f"upstream must be a loopback URL with a port, got {upstream!r}")
        unknown = sorted({str(f) for f in plan if f is not None and f not in FAULTS})
        if unknown:
            raise ValueError(f"unknown faults {unknown}; choose from {FAULTS}")
        self.upstream = (parts.hostname, parts.port)
        self._path = parts.path.rstrip("/")
        self.plan = list(plan)
        self.slow_s, self.hang_s, self.upstream_timeout_s = slow_s, hang_s, upstream_timeout_s
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._seen = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def next_fault(self) -> str:
        """The fault for the request just received (thread-safe), counted in ``stats``."""
        with self._lock:
            k, self._seen = self._seen, self._seen + 1
            fault = (self.plan[k] if k < len(self.plan) else None) or "ok"
            self.stats[fault] += 1
            return fault

    def __enter__(self) -> Self:
        proxy: FaultProxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # a "hang" handler must not hold up the test's teardown
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}{self._path}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output readable

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = self.owner.next_fault()
        self.close_connection = True
        if fault == "drop":
            return
        if fault == "reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if fault in ("429", "500", "503"):
            self._send_error(int(fault))
            return
        if fault == "hang":
            time.sleep(self.owner.hang_s)
            return
        if fault == "slow":
            time.sleep(self.owner.slow_s)
        status, headers, payload = self._forward(body)
        if fault == "truncate":
            payload_len = len(payload)
            self._send(status, headers, payload[: payload_len // 2], length=payload_len)
            return
        self._send(status, headers, payload)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        host, port = self.owner.upstream
        conn = http.client.HTTPConnection(host, port, timeout=self.owner.upstream_timeout_s)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_HEADERS]
            return response.status, kept, payload
        finally:
            conn.close()

    def _send_error(self, status: int) -> None:
        payload = json.dumps({"error": {"message": f"injected fault {status}", "type": "fault_proxy",
                                        "code": status}}).encode()
        headers = [("Content-Type", "application/json")]
        if status == 429:
            headers.append(("Retry-After", "0"))
        self._send(status, headers, payload)

    def _send(self, status: int, headers: list[tuple[str, str]], payload: bytes, length: int | None = None) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload) if length is None else length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
