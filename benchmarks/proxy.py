"""A loopback HTTP forwarder that adds latency and counts concurrency (benchmark #5).

It listens on 127.0.0.1 only, forwards each request to one upstream on 127.0.0.1 after
sleeping ``delay`` seconds, and records for every request how long the upstream took
and how many requests were in flight. With ``max_concurrent`` set it answers ``429
Too Many Requests`` (``Retry-After: 1``) to any request beyond that many in flight,
like a rate-limiting gateway, and counts them. It is bounded: it refuses requests
after ``max_requests`` and shuts itself down after ``lifetime`` seconds, whether or not
:meth:`LatencyProxy.close` is called.
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "content-length"}


class LatencyProxy:
    """Forward ``http://127.0.0.1:PORT/...`` to ``upstream`` with added latency.

    Parameters
    ----------
    upstream : str
        Base URL of the real server, e.g. ``http://127.0.0.1:3000``; must be loopback.
    delay : float
        Seconds added to every request before it is forwarded.
    max_concurrent : int, optional
        Requests in flight beyond this are answered 429 at once.
    max_requests : int
        Requests served at most; later ones get 503.
    lifetime : float
        Seconds after which the proxy stops by itself.

    Set :attr:`replay` to True to answer each request with the upstream's stored answer
    to the same request (recorded while it was False), with the same delay: the
    client's side alone, without the server's work.
    """

    def __init__(self, upstream: str, *, delay: float = 0.05, max_concurrent: int | None = None,
                 max_requests: int = 20_000, lifetime: float = 900.0) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the latency proxy only forwards to loopback, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.delay = delay
        self.max_concurrent = max_concurrent
        self.max_requests = max_requests
        self._lock = threading.Lock()
        self._local = threading.local()
        self.replay = False
        self._recorded: dict[tuple, tuple] = {}
        self.reset()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as requests' sessions expect

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                proxy._handle(self)

            def do_GET(self) -> None:
                proxy._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="latency-proxy", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(lifetime, self.close)
        self._timer.daemon = True
        self._timer.start()
        self._closed = False

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        """Zero the counters (between benchmark rounds)."""
        with self._lock:
            self.in_flight = 0
            self.max_in_flight = 0
            self.requests = 0
            self.rejected_429 = 0
            self.upstream_seconds: list[float] = []

    def stats(self) -> dict:
        with self._lock:
            return {"requests": self.requests, "max_in_flight": self.max_in_flight,
                    "rejected_429": self.rejected_429, "upstream_seconds": sum(self.upstream_seconds)}

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LatencyProxy:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
            self._local.conn = conn
        return conn

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        with self._lock:
            self.requests += 1
            over_budget = self.requests > self.max_requests
            rejected = self.max_concurrent is not None and self.in_flight >= self.max_concurrent
            if rejected:
                self.rejected_429 += 1
            elif not over_budget:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if over_budget or rejected:
            status = 503 if over_budget else 429
            handler.send_response(status)
            handler.send_header("Retry-After", "1")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        try:
            time.sleep(self.delay)
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
            key = (handler.command, handler.path, body)
            if self.replay and key in self._recorded:
                status, reply_headers, payload = self._recorded[key]
            else:
                started = time.perf_counter()
                status, reply_headers, payload = self._forward(handler.command, handler.path, body, headers)
                took = time.perf_counter() - started
                with self._lock:
                    self.upstream_seconds.append(took)
                    if status == 200 and len(self._recorded) < 10_000:
                        self._recorded[key] = (status, reply_headers, payload)
        finally:
            with self._lock:
                self.in_flight -= 1
        handler.send_response(status)
        for key, value in reply_headers:
            if key.lower() not in _HOP_BY_HOP:
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _forward(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple:
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")
