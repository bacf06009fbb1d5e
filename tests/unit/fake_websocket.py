"""dagster-webserver's graphql-ws endpoint in this process, over a run whose log the test grows.

:class:`LiveRun` is the run: its records (as ``logsForRun`` sends them), its status, and
``answer``, a :class:`runlens.MockTransport` handler for the HTTP side (``runOrError``
status, ``logsForRun`` pages). :class:`FakeWebsocketDagster` serves the websocket side
with ``websockets.sync.server`` the way ``dagster_webserver/graphql.py`` and
``gen_events_for_run`` do: ``connection_init`` → ``connection_ack``; ``start`` → the
stored events after the cursor in chunks (``hasMorePastEvents``; one chunk even when
empty), then one message per new event; ``stop`` ends it; it never ends by itself.
It can refuse the upgrade, never acknowledge, or cut each connection after N messages.
"""

from __future__ import annotations

import json
import socket
import threading
from http import HTTPStatus

from websockets.sync.server import serve

from tests.builders import cursor_for, storage_id


class LiveRun:
    """A run's log that the test grows with :meth:`append`, and its status."""

    def __init__(self, records: list[dict], *, run_id: str = "run-a", status: str = "STARTED") -> None:
        self.records = list(records)
        self.run_id = run_id
        self.status = status
        self.changed = threading.Condition()

    def append(self, *records: dict, status: str | None = None) -> None:
        with self.changed:
            self.records.extend(records)
            if status is not None:
                self.status = status
            self.changed.notify_all()

    def answer(self, payload: dict) -> dict:
        """The HTTP side, a MockTransport handler: ``runOrError`` (status) and ``logsForRun`` pages."""
        variables = payload["variables"]
        if "logsForRun" in payload["query"]:
            start = storage_id(variables.get("afterCursor")) + 1
            with self.changed:
                page = self.records[start:start + min(variables.get("limit") or 1000, 1000)]
            cursor = cursor_for(start + len(page) - 1) if page else variables.get("afterCursor")
            return {"data": {"logsForRun": {"__typename": "EventConnection", "events": page, "cursor": cursor,
                                            "hasMore": len(page) == 1000}}}
        with self.changed:
            status = self.status
        return {"data": {"runOrError": {"__typename": "Run", "id": self.run_id, "status": status}}}


class FakeWebsocketDagster:
    """A graphql-ws server over a :class:`LiveRun` on 127.0.0.1 (a thread per connection)."""

    def __init__(self, run: LiveRun, *, chunk: int = 1000, refuse: int | None = None, ack: bool = True,
                 cut_after: int | None = None) -> None:
        self.run, self.chunk, self.refuse, self.ack, self.cut_after = run, chunk, refuse, ack, cut_after
        self.handshakes = 0
        self.headers: list[dict[str, str]] = []
        self.starts: list[dict] = []
        self.stops = 0
        self.lock = threading.Lock()
        self._server = None
        self._closing = threading.Event()

    def __enter__(self) -> FakeWebsocketDagster:
        self._server = serve(self._handle, "127.0.0.1", 0, subprotocols=["graphql-ws"],
                             process_request=self._process_request)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._closing.set()
        with self.run.changed:
            self.run.changed.notify_all()
        self._server.shutdown()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.socket.getsockname()[1]}/graphql"

    def _process_request(self, connection, request):
        with self.lock:
            self.handshakes += 1
            self.headers.append(dict(request.headers.raw_items()))
        if self.refuse is not None:
            return connection.respond(HTTPStatus(self.refuse), "no websockets here\n")
        return None

    def _handle(self, ws) -> None:
        stopped = threading.Event()
        try:
            for text in ws:
                message = json.loads(text)
                if message["type"] == "connection_init" and self.ack:
                    ws.send(json.dumps({"type": "connection_ack"}))
                elif message["type"] == "start":
                    with self.lock:
                        self.starts.append(message["payload"]["variables"])
                    threading.Thread(target=self._stream, args=(ws, message, stopped), daemon=True).start()
                elif message["type"] == "stop":
                    with self.lock:
                        self.stops += 1
                    stopped.set()
        except Exception:  # the client went away
            pass
        finally:
            stopped.set()

    def _stream(self, ws, start: dict, stopped: threading.Event) -> None:
        variables = start["payload"]["variables"]
        sent = 0

        def send(events: list[dict], cursor: str | None, more: bool) -> bool:
            nonlocal sent
            result = {"__typename": "PipelineRunLogsSubscriptionSuccess", "messages": events,
                      "hasMorePastEvents": more, "cursor": cursor}
            ws.send(json.dumps({"type": "data", "id": start["id"], "payload": {"data": {"pipelineRunLogs": result}}}))
            sent += 1
            if self.cut_after is not None and sent >= self.cut_after:
                ws.socket.shutdown(socket.SHUT_RDWR)  # as a dropped network: no closing handshake
                return False
            return True

        try:
            if variables.get("cursor") == "bad":
                ws.send(json.dumps({"type": "data", "id": start["id"],
                                    "payload": {"data": None, "errors": [{"message": "Invalid cursor"}]}}))
                return
            position = storage_id(variables.get("cursor")) + 1
            with self.run.changed:
                past = self.run.records[position:]
            chunks = [past[i:i + self.chunk] for i in range(0, len(past), self.chunk)] or [[]]
            for i, chunk in enumerate(chunks):
                position += len(chunk)
                if not send(chunk, cursor_for(position - 1) if position else variables.get("cursor"),
                            i < len(chunks) - 1):
                    return
            while not stopped.is_set() and not self._closing.is_set():
                with self.run.changed:
                    if len(self.run.records) <= position:
                        self.run.changed.wait(0.05)
                        continue
                    record = self.run.records[position]
                position += 1
                if not send([record], cursor_for(position - 1), False):
                    return
        except Exception:  # the connection closed under us
            pass
