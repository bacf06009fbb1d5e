"""A TCP relay on 127.0.0.1 in front of the live demo webserver that can cut every connection.

Unlike :mod:`tests.live.fault_proxy` (an HTTP proxy, which passes no websocket), it
relays bytes, so HTTP and websockets both go through; :meth:`TcpRelay.cut` closes every
open connection at once, as a load balancer restart or a network blip does.

::

    with TcpRelay(demo.base_url) as relay:
        client = runlens.Client(relay.url)
        ...
        relay.cut()
    relay.websockets  # how many websocket upgrades went through
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit


class TcpRelay:
    """Relays 127.0.0.1:<port> to ``upstream``; bounded: a daemon thread per direction, closed on stop()."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1") -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.host = host
        self.lock = threading.Lock()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.connections = 0
        self.websockets = 0
        self.cuts = 0
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()

    def start(self) -> TcpRelay:
        self._listener = socket.create_server((self.host, 0))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, name="tcp-relay", daemon=True).start()
        return self

    def __enter__(self) -> TcpRelay:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._listener is not None, "start() the relay first"
        return f"http://{self.host}:{self._listener.getsockname()[1]}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/graphql"

    def cut(self) -> int:
        """Close every open connection (both ends), counted in ``cuts``; the number closed."""
        with self.lock:
            self.cuts += 1
        return self._close_all()

    def _close_all(self) -> int:
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for sock in pair:
                _close(sock)
        return len(pairs)

    def stop(self) -> None:
        self._stopped.set()
        self._close_all()
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            client.settimeout(None)
            with self.lock:
                self.pairs.append((client, server))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, upstream: bool) -> None:
        first = True
        try:
            while data := source.recv(65536):
                if first and upstream and b"upgrade: websocket" in data.lower():
                    with self.lock:
                        self.websockets += 1
                first = False
                target.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
