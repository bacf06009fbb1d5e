"""A run's events pushed by the webserver over a websocket, with polling as the fallback.

``dagster-webserver`` serves GraphQL subscriptions on ``ws(s)://host/graphql`` with the
legacy Apollo ``graphql-ws`` subprotocol: the client sends ``connection_init`` and gets
``connection_ack``; ``start`` (an id and a subscription document) makes the server send
``data`` messages for that id until the client sends ``stop``; ``error``, ``complete``
and ``ka`` (keep-alive) may come from the server. ``pipelineRunLogs(runId, cursor)``
first sends the run's stored events after ``cursor`` in chunks of up to 1000
(``hasMorePastEvents`` true until the last chunk; a first chunk comes even when there
is nothing yet), then one message per event as it is stored, each with the cursor after
it: the same opaque cursor ``logsForRun`` takes (``dagster_graphql`` ``gen_events_for_run``).

The server never ends the subscription: not when the run ends, and not for a run that
never starts. :func:`follow` therefore watches the run's status itself, from the
stream: RUN_SUCCESS / RUN_FAILURE / RUN_CANCELED end a run, and once one came and
``grace`` seconds brought nothing new (Dagster stores an ENGINE_EVENT after them) one
status request confirms the end and the subscription is stopped. While a run sits idle
no request is sent at all; a status request goes out only after ``IDLE_STATUS_CHECK``
seconds without an event (a run ended some way that logged nothing).

The connection carries the HTTP transport's headers (the Dagster+ token among them)
and its TLS settings (``ca_bundle``, verification always on), uses no proxy from the
environment (as the transport: ``trust_env`` off), follows no redirect (a token never
travels to another host) and never logs the token, even with websockets' DEBUG
logging on.

``follow(client, run_id, push=None)`` uses the websocket when the server offers it and
polls otherwise (:meth:`runlens.Client.follow` documents both); the answer to "is it
offered" is found once per client, with one handshake bounded by ``OPEN_TIMEOUT``.
A websocket dropped mid-run reconnects from the last cursor (bounded backoff); when it
cannot, following goes on by polling from that cursor. Nothing is lost or repeated
either way.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .config import Settings
from .errors import AuthError, GraphQLError, InvalidArgument, RunNotFound, ServerError, TransportError
from .models import check_cursor
from .queries import ERROR_FIELDS, EVENT_FIELDS
from .vocabulary import TERMINAL_STATUSES

if TYPE_CHECKING:
    import pandas as pd

    from .client import Client

__all__ = ["PROTOCOL", "SUBSCRIPTION", "PushUnavailable", "RunLogSubscription", "follow", "websocket_url"]

#: The websocket subprotocol dagster-webserver speaks (Apollo's legacy one).
PROTOCOL = "graphql-ws"
#: Seconds the first handshake may take before the server is taken not to offer websockets.
OPEN_TIMEOUT = 5.0
#: Seconds without any event, on a run not known to have ended, before one status request.
IDLE_STATUS_CHECK = 60.0
#: At most this many events in one batch (a log storm arrives as many batches).
MAX_BATCH = 5000
#: Waits are cut into slices this long, so a ``stop`` event is seen at once.
WAIT_SLICE = 0.25
#: Reconnect backoff: ``RECONNECT_BASE * 2**n`` seconds, at most ``RECONNECT_CAP``.
RECONNECT_BASE = 0.25
RECONNECT_CAP = 5.0
#: Seconds to wait for the server's side of the closing handshake.
CLOSE_TIMEOUT = 1.0
USER_AGENT = "runlens"

#: The same event fields as ``logsForRun`` (:data:`runlens.queries.EVENT_FIELDS`): the
#: frames of both transports are built from the same records.
SUBSCRIPTION = (
    """
subscription RunlensRunLogs($runId: ID!, $cursor: String) {
  pipelineRunLogs(runId: $runId, cursor: $cursor) {
    __typename
    ... on PipelineRunLogsSubscriptionSuccess {
      cursor
      hasMorePastEvents
      messages {
"""
    + EVENT_FIELDS
    + """      }
    }
    ... on PipelineRunLogsSubscriptionFailure { message missingRunId }
  }
}
"""
    + ERROR_FIELDS
)

# The run's status after an event of these types (Dagster's own mapping, with the legacy
# PIPELINE_* twins). Statuses only move forward: a terminal one is never replaced.
_STATUS_AFTER = {
    "RUN_ENQUEUED": "QUEUED", "RUN_STARTING": "STARTING", "RUN_START": "STARTED", "RUN_CANCELING": "CANCELING",
    "RUN_SUCCESS": "SUCCESS", "RUN_FAILURE": "FAILURE", "RUN_CANCELED": "CANCELED",
}
_STATUS_AFTER.update({"PIPELINE_" + k[4:]: v for k, v in list(_STATUS_AFTER.items())})

# Per transport: whether its server offers websockets (found once, on first use).
_OFFERED: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


class PushUnavailable(Exception):
    """The server (or something between) does not offer the websocket: poll instead.

    Internal to :mod:`runlens.push`; users see it only as ``attrs["transport"] ==
    "polling"``, or as a :class:`runlens.TransportError` with ``push=True``.
    """

    def __init__(self, reason: str, *, auth: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.auth = auth


class _Dropped(Exception):
    """The websocket closed (or the server ended the subscription) before the run was followed to its end."""


def websocket_url(url: str) -> str:
    """The websocket address of a GraphQL endpoint: ``http(s)://h/p/graphql`` → ``ws(s)://h/p/graphql``."""
    # Only the scheme changes (no urlsplit round trip: a masked "[secure]" password reads as an IPv6 host).
    scheme, sep, rest = url.partition("://")
    mapped = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(scheme.lower())
    if not sep or mapped is None:
        raise InvalidArgument(f"cannot follow over a websocket from a {scheme!r} URL: it must start with http(s)://")
    return f"{mapped}://{rest}"


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    """Verification on, with the CAs requests trusts: ``ca_bundle`` if set, else certifi's (as requests)."""
    cafile = settings.ca_bundle
    if cafile is None:
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:  # pragma: no cover - requests depends on certifi
            cafile = None
    return ssl.create_default_context(cafile=cafile)


class _Redacting(logging.LoggerAdapter):
    """websockets' logger with the secret header values replaced: its DEBUG lines print every header."""

    def __init__(self, secrets: set[str]) -> None:
        super().__init__(logging.getLogger("websockets.client"), {})
        self.secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            args = tuple("[secure]" if isinstance(a, str) and a in self.secrets else a for a in args)
            super().log(level, msg, *args, **kwargs)


class RunLogSubscription:
    """One websocket, subscribed to one run's ``pipelineRunLogs`` after a cursor.

    Parameters
    ----------
    settings : Settings
        The endpoint, headers and TLS settings (those of the HTTP transport).
    run_id : str
    cursor : str, optional
        Events after this cursor (exclusive); the whole log when None.
    open_timeout : float
        Seconds for the TCP, TLS, websocket and ``connection_init`` handshakes and the
        first ``data`` message together.

    Use it as a context manager: leaving it sends ``stop`` and closes the connection.
    :meth:`open` returns the first ``data`` payloads; :meth:`receive` the next ones.
    """

    def __init__(self, settings: Settings, run_id: str, cursor: str | None, *,
                 open_timeout: float = OPEN_TIMEOUT) -> None:
        self.settings = settings
        self.run_id = run_id
        self.cursor = cursor
        self.open_timeout = open_timeout
        self.url = websocket_url(settings.url)
        self.display_url = websocket_url(settings.display_url)  # for messages: a password in the URL masked
        self._stack = ExitStack()
        self._ws: Any = None
        self._stopped = False

    def __enter__(self) -> RunLogSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ opening

    def open(self) -> list[dict]:
        """Connect, subscribe, and return the first ``data`` payloads.

        Raises
        ------
        PushUnavailable
            The server does not offer the subscription: refused connection or
            upgrade, another subprotocol, no ``connection_ack`` or first answer in
            time, an ``error`` message.
        ServerError, RunNotFound
            The server answered the subscription with an error (e.g. a cursor it cannot read).
        """
        from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException
        from websockets.sync.client import connect

        deadline = time.monotonic() + self.open_timeout
        parts = urlsplit(self.url)
        secure = parts.scheme == "wss"
        try:
            # Our own socket: websockets then follows no redirect (a token must not travel
            # to another host) and uses no proxy from the environment.
            sock = socket.create_connection((parts.hostname, parts.port or (443 if secure else 80)),
                                            timeout=self.open_timeout)
        except OSError as exc:
            raise PushUnavailable(f"cannot open a connection for the websocket ({exc.strerror or exc})") from None
        headers = {k: v for k, v in self.settings.headers().items() if k not in ("Content-Type", "Accept")}
        secrets = {v for k, v in headers.items() if k == "Dagster-Cloud-Api-Token"}
        if parts.password:
            secrets.add(parts.password)
        options: dict[str, Any] = {"ssl": _ssl_context(self.settings)} if secure else {}
        try:
            self._ws = self._stack.enter_context(connect(
                self.url, sock=sock, subprotocols=[PROTOCOL], additional_headers=headers,
                user_agent_header=USER_AGENT, open_timeout=max(0.1, deadline - time.monotonic()),
                close_timeout=CLOSE_TIMEOUT, max_size=None, max_queue=1024, logger=_Redacting(secrets), **options,
            ))
        except InvalidStatus as exc:
            code = exc.response.status_code
            sock.close()
            raise PushUnavailable(f"the server refused the websocket upgrade (HTTP {code})",
                                  auth=code in (401, 403)) from None
        except ssl.SSLError as exc:
            sock.close()
            raise PushUnavailable(f"TLS verification failed for the websocket ({exc.reason or exc})") from None
        except (InvalidHandshake, WebSocketException, OSError, TimeoutError, ValueError) as exc:
            sock.close()
            raise PushUnavailable(f"the websocket handshake failed ({type(exc).__name__}: {exc})") from None
        if self._ws.subprotocol != PROTOCOL:
            self.close()
            raise PushUnavailable(f"the server does not speak {PROTOCOL} (it chose {self._ws.subprotocol!r})")
        try:
            self._send({"type": "connection_init", "payload": {}})
            while (message := self._next(deadline - time.monotonic()))["type"] != "connection_ack":
                if message["type"] == "connection_error":
                    raise PushUnavailable(f"the server refused the subscription: {message.get('payload')}")
            self._send({"id": "1", "type": "start",
                        "payload": {"query": SUBSCRIPTION, "variables": {"runId": self.run_id, "cursor": self.cursor}}})
            # The server always answers with a first chunk of past events (maybe empty).
            first: list[dict] = []
            while not first:
                first = self._payloads(self._next(deadline - time.monotonic()), opening=True)
        except (TimeoutError, _Dropped) as exc:
            self.close()
            raise PushUnavailable(f"no answer on the websocket within {self.open_timeout:g} s ({exc or 'timeout'})"
                                  ) from None
        except BaseException:
            self.close()
            raise
        return first

    # ------------------------------------------------------------------ receiving

    def receive(self, timeout: float) -> list[dict]:
        """The ``pipelineRunLogs`` payloads that arrive within ``timeout`` seconds (maybe none).

        Waits for the first message at most ``timeout`` seconds, then takes every
        message already received, up to :data:`MAX_BATCH` events.

        Raises
        ------
        _Dropped
            The connection closed, or the server ended the subscription.
        """
        payloads: list[dict] = []
        events = 0
        wait = max(0.0, timeout)
        while events < MAX_BATCH:
            try:
                message = self._next(wait)
            except TimeoutError:
                break
            wait = 0.0  # after the first: only what is here already
            for payload in self._payloads(message):
                payloads.append(payload)
                events += len(payload.get("messages") or ())
        return payloads

    def _next(self, timeout: float) -> dict:
        """The next protocol message (``ka`` skipped), within ``timeout`` seconds."""
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                text = self._ws.recv(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise  # nothing within the timeout (TimeoutError is an OSError: caught first)
            except ConnectionClosed as exc:
                raise _Dropped(f"the websocket closed ({exc})") from None
            except OSError as exc:
                raise _Dropped(f"the websocket failed ({exc})") from None
            try:
                message = json.loads(text)
            except ValueError:
                raise _Dropped("the server sent a message that is not JSON") from None
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                raise _Dropped("the server sent a message that is no graphql-ws message")
            if message["type"] != "ka":
                return message

    def _payloads(self, message: dict, *, opening: bool = False) -> list[dict]:
        """The ``pipelineRunLogs`` payloads of one message (none for ``ka``/``connection_ack``)."""
        kind = message["type"]
        if kind == "data":
            payload = message.get("payload") or {}
            errors = payload.get("errors")
            result = (payload.get("data") or {}).get("pipelineRunLogs")
            if errors or not isinstance(result, dict):
                first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
                text = str(first.get("message") or "no data")
                if self.cursor is not None and opening:
                    text += (f"; Dagster could not read events after the cursor {self.cursor!r}: pass a cursor "
                             "runlens returned (a page's cursor, events().attrs['cursor'] or err.cursor)")
                raise ServerError(f"the server failed the subscription to run {self.run_id!r}: {text}",
                                  run_id=self.run_id)
            if result.get("__typename") == "PipelineRunLogsSubscriptionFailure":
                if result.get("missingRunId"):
                    raise RunNotFound(f"run {self.run_id!r} not found on {self.settings.display_url}",
                                      run_id=self.run_id)
                raise ServerError(f"the server failed the subscription: {result.get('message')}", run_id=self.run_id)
            messages, cursor = result.get("messages"), result.get("cursor")
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages) or not (
                    cursor is None or isinstance(cursor, str)):
                raise ServerError(f"{self.settings.display_url} pushed a malformed batch of events for run "
                                  f"{self.run_id!r} (messages must be a list of objects, cursor a string)",
                                  run_id=self.run_id)
            if cursor:
                self.cursor = cursor
            # An empty first chunk still says "subscribed": returned as {} when opening.
            return [result] if messages or opening else []
        if kind == "error":
            if opening:
                raise PushUnavailable(f"the server rejected the subscription: {message.get('payload')}")
            raise GraphQLError(f"the server ended the subscription with an error: {message.get('payload')}",
                               run_id=self.run_id)
        if kind in ("complete", "connection_error"):
            raise _Dropped(f"the server sent {kind}")
        return []

    def _send(self, message: dict) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self._ws.send(json.dumps(message))
        except (ConnectionClosed, OSError) as exc:
            raise _Dropped(f"the websocket closed ({exc})") from None

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Send ``stop`` (the server never ends the subscription itself) and close. Idempotent."""
        if self._ws is not None and not self._stopped:
            self._stopped = True
            try:
                self._send({"id": "1", "type": "stop"})
            except _Dropped:
                pass
        self._stack.close()


# ---------------------------------------------------------------------------- follow


def _offers_push(client: Client) -> bool | None:
    """Whether the client's server offers the websocket: True/False once known, None before.

    False for a transport that is no network (a ``MockTransport`` without
    ``websocket=True``, or any other object with ``execute``).
    """
    transport = client.transport
    if not getattr(transport, "websocket", False) or not isinstance(getattr(transport, "settings", None), Settings):
        return False
    return _OFFERED.get(transport)


def follow(
    client: Client,
    run_id: str,
    *,
    after_cursor: str | None = None,
    start_seq: int = 0,
    interval: float = 2.0,
    grace: float = 1.0,
    timeout: float | None = None,
    stop: threading.Event | None = None,
    on_poll: Callable[[int, str | None], None] | None = None,
    on_transport: Callable[[str], None] | None = None,
    push: bool | None = None,
) -> Iterator[pd.DataFrame]:
    """What :meth:`runlens.Client.follow` runs (see its documentation)."""
    if push not in (None, True, False):
        raise InvalidArgument(f"push must be None (websocket if offered), True or False, not {push!r}")
    check_cursor(after_cursor, run_id)
    for name, value in (("interval", interval), ("grace", grace), ("timeout", timeout)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                                  or (name == "interval" and value == 0)):
            raise InvalidArgument(f"{name} must be a positive number of seconds, not {value!r}")
    stop = stop or threading.Event()
    offered = _offers_push(client)
    if push is True and offered is False and not getattr(client.transport, "websocket", False):
        raise InvalidArgument("push=True needs a client that talks to a server (this transport has no websocket)")
    started = time.monotonic()

    def polling(cursor: str | None, seq: int) -> Iterator[pd.DataFrame]:
        if on_transport is not None:
            on_transport("polling")
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        yield from client._poll(run_id, after_cursor=cursor, start_seq=seq, interval=interval, grace=grace,
                                timeout=remaining, stop=stop, on_poll=on_poll)

    if push is False or (push is None and offered is False):
        yield from polling(after_cursor, start_seq)
        return
    yield from _Follower(client, run_id, after_cursor, start_seq, grace, timeout, stop, on_poll, on_transport,
                         started, forced=push is True, polling=polling).run()


class _Follower:
    """The websocket side of :func:`follow`: status from the stream, reconnects, the end."""

    def __init__(self, client: Client, run_id: str, cursor: str | None, seq: int, grace: float,
                 timeout: float | None, stop: threading.Event, on_poll: Callable[[int, str | None], None] | None,
                 on_transport: Callable[[str], None] | None, started: float, *, forced: bool,
                 polling: Callable[[str | None, int], Iterator[pd.DataFrame]]) -> None:
        self.client, self.run_id, self.cursor, self.seq = client, run_id, cursor, seq
        self.grace, self.timeout, self.stop, self.on_poll = grace, timeout, stop, on_poll
        self.on_transport, self.started, self.forced, self.polling = on_transport, started, forced, polling
        self.status: str | None = None
        self.ended_at: float | None = None  # when the run was last seen (or confirmed) terminal
        self.last_activity = started
        self.updates = 0  # status checks and batches: the on_poll count
        self.failures = 0  # reconnect attempts since events last arrived
        self.reconnects = 0

    def run(self) -> Iterator[pd.DataFrame]:
        client, run_id = self.client, self.run_id
        self._set_status(str(client.run_status(run_id)))  # RunNotFound here, before any websocket
        subscription = RunLogSubscription(client.transport.settings, run_id, self.cursor,
                                          open_timeout=min(OPEN_TIMEOUT, client.transport.timeout))
        try:
            first = subscription.open()
        except PushUnavailable as exc:
            _OFFERED[client.transport] = False
            if self.forced:
                error = AuthError if exc.auth else TransportError
                raise error(f"cannot follow run {run_id} over a websocket at {subscription.display_url}: {exc.reason}; "
                            "follow with push=None to poll instead", run_id=run_id) from None
            yield from self.polling(self.cursor, self.seq)
            return
        _OFFERED[client.transport] = True
        if self.on_transport is not None:
            self.on_transport("websocket")
        try:
            payloads = first
            while True:
                if payloads:
                    batch = self._batch(payloads)
                    if len(batch):
                        self.failures = 0
                        yield batch
                if self.stop.is_set() or self._timed_out() or self._ended():
                    return
                try:
                    payloads = subscription.receive(self._wait())
                except _Dropped:
                    subscription.close()
                    subscription, payloads = self._reconnect()
                    if subscription is None:
                        if not (self.stop.is_set() or self._timed_out()):
                            # The websocket keeps failing: go on by polling, from the same cursor.
                            yield from self.polling(self.cursor, self.seq)
                        return
        finally:
            if subscription is not None:
                subscription.close()

    # ------------------------------------------------------------------ steps

    def _batch(self, payloads: list[dict]) -> pd.DataFrame:
        from .frames import EventColumns

        records = [m for p in payloads for m in p.get("messages") or ()]
        self.cursor = next((p["cursor"] for p in reversed(payloads) if p.get("cursor")), self.cursor)
        columns = EventColumns(self.run_id, start_seq=self.seq).add(records)
        self.seq += len(columns)
        now = time.monotonic()
        self.last_activity = now
        for record in records:
            status = _STATUS_AFTER.get(record.get("eventType"))  # type: ignore[arg-type]
            if status is not None and self.status not in TERMINAL_STATUSES:
                self.status = status
        if self.status in TERMINAL_STATUSES and self.ended_at is None:
            self.ended_at = now
        self._report()
        frame = columns.frame()
        frame.attrs.update(run_ids=[self.run_id], endpoint=self.client.url, cursor=self.cursor, status=self.status,
                           transport="websocket")
        return frame

    def _set_status(self, status: str) -> None:
        self.status = status
        if status in TERMINAL_STATUSES and self.ended_at is None:
            self.ended_at = time.monotonic()
        self._report()

    def _report(self) -> None:
        self.updates += 1
        if self.on_poll is not None:
            self.on_poll(self.updates, self.status)

    def _timed_out(self) -> bool:
        return self.timeout is not None and time.monotonic() - self.started > self.timeout

    def _ended(self) -> bool:
        """Whether to stop: the run ended and ``grace`` seconds brought nothing new (confirmed by one request)."""
        now = time.monotonic()
        if self.ended_at is None:
            if now - self.last_activity >= IDLE_STATUS_CHECK:
                self.last_activity = now
                self._set_status(str(self.client.run_status(self.run_id)))
            return False
        if now - max(self.ended_at, self.last_activity) < self.grace:
            return False
        status = str(self.client.run_status(self.run_id))
        if status in TERMINAL_STATUSES:
            self.status = status
            self._report()  # the server's word on the outcome, as the last update
            return True
        # An end event with the status not written yet: look again after another grace period.
        self.ended_at = now
        self._set_status(status)
        return False

    def _wait(self) -> float:
        """How long the next receive may block: a slice, cut at the timeout and at the end of the grace period."""
        now = time.monotonic()
        wait = WAIT_SLICE
        if self.timeout is not None:
            wait = min(wait, self.started + self.timeout - now)
        if self.ended_at is not None:
            wait = min(wait, max(self.ended_at, self.last_activity) + self.grace - now)
        return max(0.0, wait)

    def _reconnect(self) -> tuple[RunLogSubscription | None, list[dict]]:
        """A new subscription from the last cursor, after a backoff; (None, []) once the retries ran out.

        ``failures`` counts the attempts since events last arrived: a websocket that
        keeps dropping without bringing anything gets ``max_retries`` attempts in all.
        """
        while self.failures < max(1, self.client.transport.max_retries):
            delay = min(RECONNECT_CAP, RECONNECT_BASE * 2 ** self.failures)
            self.failures += 1
            self.reconnects += 1
            if self.stop.wait(delay) or self._timed_out():
                return None, []
            subscription = RunLogSubscription(self.client.transport.settings, self.run_id, self.cursor,
                                              open_timeout=min(OPEN_TIMEOUT, self.client.transport.timeout))
            try:
                return subscription, subscription.open()
            except PushUnavailable:
                continue
        return None, []
