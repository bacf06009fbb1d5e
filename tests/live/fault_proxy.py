"""A fault-injecting HTTP proxy on 127.0.0.1, in front of the live demo webserver.

It forwards every request to the upstream server and, on the requests a *schedule*
picks, does something a real network or a real proxy does instead: resets the
connection, closes it without answering, answers 502/503/504, 429 with a
``Retry-After``, 401/403 or an HTML page, answers later than the client's read
timeout, sends fewer bytes than its ``Content-Length`` and closes, or rewrites the
request or the response on the way through.

::

    with FaultProxy(demo.base_url, schedule=every(3, RESET)) as proxy:
        client = runlens.Client(proxy.url, backoff=0.05, timeout=1.0)
        pages = list(client.iter_event_pages(run_id, page_size=100))
    assert proxy.faults_injected() >= 1

A schedule is a callable ``(n, request) -> Fault | None`` where ``n`` counts the
GraphQL POSTs seen so far (1-based); other requests (``GET /server_info``) are
forwarded untouched unless the schedule is given ``all_requests=True``.

The proxy is bounded: at most ``max_connections`` connections are served at once
(more are closed at once), at most ``max_requests`` requests are forwarded, a
slow answer waits at most its ``delay``, idle keep-alive connections close after
``idle_timeout`` seconds, and the whole proxy stops by itself after ``lifetime``
seconds even if nobody calls :meth:`FaultProxy.stop`.
"""

from __future__ import annotations

import http.client
import itertools
import socket
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = [
    "DROP",
    "RESET",
    "TRUNCATE",
    "Fault",
    "FaultProxy",
    "Seen",
    "always",
    "at",
    "cycle",
    "every",
    "from_request",
    "html",
    "rewrite_request",
    "rewrite_response",
    "slow",
    "status",
]

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length", "host"}


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or on top of) forwarding one request.

    Use the constructors below (:data:`RESET`, :func:`status`, :func:`slow`, ...)
    rather than building one by hand.
    """

    kind: str
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0
    keep: float = 0.5
    transform: Callable[[bytes], bytes] | None = field(default=None, compare=False)
    name: str = ""

    def __str__(self) -> str:
        return self.name or (f"{self.kind} {self.status}" if self.status else self.kind)


#: Close the connection with a TCP RST right after reading the request.
RESET = Fault("reset")
#: Close the connection (FIN) without sending a single byte of response.
DROP = Fault("drop")
#: Forward, then send the real headers (full Content-Length) and half the body, and close.
TRUNCATE = Fault("truncate")


def status(code: int, body: bytes | str = b"", *, retry_after: str | int | None = None,
           content_type: str = "text/plain; charset=utf-8", headers: Mapping[str, str] | None = None) -> Fault:
    """Answer ``code`` with ``body`` instead of forwarding (e.g. 502, 429 with ``retry_after``)."""
    extra = dict(headers or {})
    if retry_after is not None:
        extra["Retry-After"] = str(retry_after)
    extra["Content-Type"] = content_type
    data = body.encode() if isinstance(body, str) else body
    name = f"{code}" + (f" Retry-After: {retry_after}" if retry_after is not None else "")
    return Fault("status", status=code, headers=tuple(extra.items()), body=data or f"HTTP {code}\n".encode(),
                 name=name)


def slow(delay: float) -> Fault:
    """Forward, but only after ``delay`` seconds (longer than the client's read timeout)."""
    return Fault("slow", delay=delay, name=f"slow {delay:g} s")


def html(code: int = 200) -> Fault:
    """Answer an HTML page, as a web UI, a login page or a single-page-app fallback would."""
    page = b"<!doctype html><html><head><title>Dagster</title></head><body><div id=root></div></body></html>\n"
    return status(code, page, content_type="text/html; charset=utf-8")


def rewrite_request(transform: Callable[[bytes], bytes], name: str = "rewrite request") -> Fault:
    """Forward the request body as ``transform(body)`` (e.g. to select a field the server lacks)."""
    return Fault("rewrite_request", transform=transform, name=name)


def rewrite_response(transform: Callable[[bytes], bytes], name: str = "rewrite response") -> Fault:
    """Forward, then answer ``transform(upstream body)`` with the upstream status."""
    return Fault("rewrite_response", transform=transform, name=name)


# ----------------------------------------------------------------------------- schedules

@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it."""

    index: int          # 1-based, over every request
    graphql_index: int  # 1-based over GraphQL POSTs, 0 for other requests
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    fault: str | None = None


Schedule = Callable[[int, Seen], "Fault | None"]


def every(k: int, fault: Fault, *, limit: int | None = None) -> Schedule:
    """Fault requests k, 2k, 3k, ... (at most ``limit`` of them)."""
    count = itertools.count(1)
    lock = threading.Lock()

    def schedule(n: int, seen: Seen) -> Fault | None:
        if n % k:
            return None
        with lock:
            if limit is not None and next(count) > limit:
                return None
        return fault

    return schedule


def at(faults: Mapping[int, Fault]) -> Schedule:
    """Fault exactly the listed requests: ``at({1: RESET, 4: slow(2)})``."""
    return lambda n, seen: faults.get(n)


def from_request(first: int, fault: Fault, *, until: int | None = None) -> Schedule:
    """Fault every request from ``first`` on (up to and including ``until``)."""
    return lambda n, seen: fault if n >= first and (until is None or n <= until) else None


def always(fault: Fault) -> Schedule:
    """Fault every request."""
    return lambda n, seen: fault


def cycle(faults: Sequence[Fault], *, every: int = 3) -> Schedule:
    """Fault every ``every``-th request, taking the faults in turn (a mixed schedule)."""
    return lambda n, seen: None if n % every else faults[(n // every - 1) % len(faults)]


# --------------------------------------------------------------------------------- proxy

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.open_sockets: set[socket.socket] = set()
        self.slots = threading.BoundedSemaphore(proxy.max_connections)
        super().__init__((proxy.host, 0), _Handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            # Bounded: beyond max_connections a connection is closed, not queued.
            self.shutdown_request(request)
            return
        with self.proxy.lock:
            self.open_sockets.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(request)
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(request)

    def _release(self, request) -> None:
        with self.proxy.lock:
            if request in self.open_sockets:
                self.open_sockets.discard(request)
                self.slots.release()

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (timeout, reset) is expected here: no tracebacks.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.proxy.idle_timeout
        super().setup()

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.proxy._handle(self)

    do_GET = do_POST

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 that injects faults on scheduled requests.

    Parameters
    ----------
    upstream : str
        ``http://host:port`` of the real server (a path is ignored).
    schedule : callable, optional
        ``(n, seen) -> Fault | None``; no faults when omitted. Replace it at any
        time with :meth:`set_schedule`.
    all_requests : bool
        Let the schedule see every request, not only GraphQL POSTs.
    lifetime : float
        Seconds after which the proxy stops by itself.
    max_connections, max_requests : int
        Bounds on concurrent connections and on requests served in total.
    idle_timeout : float
        Seconds an idle keep-alive connection is kept open.
    upstream_timeout : float
        Seconds to wait for the upstream server.
    """

    def __init__(
        self,
        upstream: str,
        schedule: Schedule | None = None,
        *,
        all_requests: bool = False,
        lifetime: float = 120.0,
        max_connections: int = 32,
        max_requests: int = 2000,
        idle_timeout: float = 5.0,
        upstream_timeout: float = 30.0,
        host: str = "127.0.0.1",
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.schedule = schedule
        self.all_requests = all_requests
        self.lifetime = lifetime
        self.max_connections = max_connections
        self.max_requests = max_requests
        self.idle_timeout = idle_timeout
        self.upstream_timeout = upstream_timeout
        self.host = host
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self._graphql_count = 0
        self._stopped = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FaultProxy:
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fault-proxy", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection, and wait for the threads (bounded)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        server = self._server
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self.lock:
            sockets = list(server.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None and not self._stopped.is_set()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The GraphQL endpoint through the proxy."""
        return f"{self.base_url}/graphql"

    # ---------------------------------------------------------------- inspection

    def set_schedule(self, schedule: Schedule | None) -> None:
        """Replace the schedule; request numbering goes on."""
        with self.lock:
            self.schedule = schedule

    def graphql_requests(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.graphql_index]

    def faults_injected(self) -> int:
        with self.lock:
            return sum(1 for s in self.seen if s.fault)

    # ------------------------------------------------------------------ handling

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        is_graphql = handler.command == "POST" and handler.path.split("?")[0].endswith("/graphql")
        with self.lock:
            index = len(self.seen) + 1
            if is_graphql:
                self._graphql_count += 1
            n = self._graphql_count if is_graphql else 0
            seen = Seen(index, n, handler.command, handler.path, dict(handler.headers.items()), body)
            fault = None
            if self.schedule is not None and (is_graphql or self.all_requests):
                fault = self.schedule(n or index, seen)
            over_budget = index > self.max_requests
            self.seen.append(replace(seen, fault=str(fault) if fault else None))
        if over_budget or self._stopped.is_set():
            self._drop(handler)
            return
        if fault is None:
            self._forward(handler, body)
        elif fault.kind == "reset":
            self._reset(handler)
        elif fault.kind == "drop":
            self._drop(handler)
        elif fault.kind == "status":
            self._send(handler, fault.status, list(fault.headers), fault.body)
        elif fault.kind == "slow":
            # Bounded: stop() cuts the wait short.
            if not self._stopped.wait(fault.delay):
                self._forward(handler, body)
            else:
                self._drop(handler)
        elif fault.kind == "truncate":
            code, headers, data = self._upstream(handler, body)
            self._send(handler, code, headers, data, send_only=max(0, int(len(data) * fault.keep)))
        elif fault.kind == "rewrite_request":
            assert fault.transform is not None
            self._forward(handler, fault.transform(body))
        elif fault.kind == "rewrite_response":
            assert fault.transform is not None
            code, headers, data = self._upstream(handler, body)
            self._send(handler, code, headers, fault.transform(data))
        else:  # pragma: no cover - a typo in a test
            raise ValueError(f"unknown fault kind {fault.kind!r}")

    def _upstream(self, handler: _Handler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=self.upstream_timeout)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            headers["Content-Length"] = str(len(body))
            conn.request(handler.command, handler.path, body=body if body or handler.command == "POST" else None,
                         headers=headers)
            response = conn.getresponse()
            data = response.read()
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, out, data
        finally:
            conn.close()

    def _forward(self, handler: _Handler, body: bytes) -> None:
        try:
            code, headers, data = self._upstream(handler, body)
        except OSError as exc:
            self._send(handler, 502, [("Content-Type", "text/plain")], f"fault proxy: upstream failed: {exc}".encode())
            return
        self._send(handler, code, headers, data)

    def _send(self, handler: _Handler, code: int, headers: list[tuple[str, str]], data: bytes,
              send_only: int | None = None) -> None:
        try:
            handler.send_response(code)
            for name, value in headers:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(data)))
            if send_only is not None:
                handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(data if send_only is None else data[:send_only])
            handler.wfile.flush()
        except OSError:
            # The client gave up first (a read timeout): nothing to answer.
            handler.close_connection = True
            return
        if send_only is not None:
            handler.close_connection = True

    @staticmethod
    def _drop(handler: _Handler) -> None:
        handler.close_connection = True

    @staticmethod
    def _reset(handler: _Handler) -> None:
        handler.close_connection = True
        sock = handler.connection
        try:
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass
