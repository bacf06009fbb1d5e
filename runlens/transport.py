"""One POST of a GraphQL document, with retries, and every failure mapped to a RunlensError.

Retries happen at two depths. urllib3's ``Retry`` (mounted on the session) handles
connection errors and the statuses worth retrying (429 with ``Retry-After``, 502, 503,
504); every runlens query is read-only, so retrying a POST is safe. A body that arrives
cut short or is not JSON is retried here, with the same backoff, since urllib3 has
already handed the response over by then.

Two of urllib3's defaults do not suit a client: it honours ``Retry-After`` up to six
hours (a rate-limited CLI would sleep that long, four times), and an unparsable
``Retry-After`` raises instead of falling back to the backoff. ``_Retry`` waits at most
``MAX_RETRY_AFTER`` seconds and otherwise gives up at once with a message saying when
to try again; a host name that does not resolve at all is not retried either.

The network is one method, :meth:`Transport.send`; :class:`MockTransport` answers from
a function instead (``Client(transport=MockTransport(handler))``), so tests go through
everything else runlens does with an answer.
"""

from __future__ import annotations

import io
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    InvalidHeader,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.util.retry import Retry

from .config import Settings, normalize_url
from .errors import (
    AuthError,
    ConfigError,
    GraphQLError,
    InvalidArgument,
    RateLimited,
    RunlensError,
    ServerError,
    TransportError,
)

RETRY_STATUSES = (429, 502, 503, 504)
USER_AGENT = "runlens"
#: The longest ``Retry-After`` runlens waits for; a server asking for more gets an
#: immediate RateLimited/TransportError that says when to come back.
MAX_RETRY_AFTER = 60.0

# getaddrinfo's "this name does not exist" answers; EAI_AGAIN ("temporary failure") is
# retried like any connection error.
_PERMANENT_DNS_ERRORS = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
# A JSON escape of a UTF-16 surrogate; only bodies holding one need the slower clean-up.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _Retry(Retry):
    """urllib3's ``Retry`` with a bounded, fault-tolerant ``Retry-After`` (see module doc)."""

    def get_retry_after(self, response) -> float | None:
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            # "Retry-After: soon" from some proxy: use the exponential backoff instead.
            return None

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if error is None and response is not None:
            wait = self.get_retry_after(response)
            if wait is not None and wait > MAX_RETRY_AFTER:
                # Handing the response back (raise_on_status=False) lets _decode say when to retry.
                raise MaxRetryError(_pool, url, ResponseError(f"Retry-After {wait:.0f} s"))
        if isinstance(error, NameResolutionError) and _dns_errno(error) in _PERMANENT_DNS_ERRORS:
            raise MaxRetryError(_pool, url, error) from error
        return super().increment(method, url, response=response, error=error, _pool=_pool,
                                 _stacktrace=_stacktrace)


def _dns_errno(error: NameResolutionError) -> int | None:
    cause = error.__cause__ or getattr(error, "_reason", None)
    return getattr(cause, "errno", None)


class Transport:
    """Posts GraphQL documents to one endpoint.

    Parameters
    ----------
    settings : Settings
        Endpoint and headers.
    timeout : float
        Seconds to wait for the connection and for each read.
    max_retries : int
        Retries after the first attempt, for connection errors, 429/502/503/504 and
        truncated bodies; 0 disables them. A host name that does not exist, and a
        ``Retry-After`` beyond ``MAX_RETRY_AFTER``, fail at once instead.
    backoff : float
        Base of the exponential backoff, in seconds (``backoff * 2**n``, capped at 30 s).
    session : requests.Session, optional
        A session to use instead of a new one (its adapters are replaced).

    Attributes
    ----------
    websocket : bool
        Whether :meth:`runlens.Client.follow` may open a websocket to the same
        endpoint, with the same headers and TLS settings (:mod:`runlens.push`).
    """

    websocket = True

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.session = session or requests.Session()
        # ~/.netrc and proxy variables must not silently add credentials.
        self.session.trust_env = False
        if settings.ca_bundle:
            self.session.verify = settings.ca_bundle  # a path: verification stays on
        retry = _Retry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            other=0,
            allowed_methods=None,  # POST included: every query runlens sends is read-only
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff,
            backoff_max=30,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(_checked_headers(settings))
        self.session.headers["User-Agent"] = USER_AGENT
        self._server_version: str | None = None

    def __repr__(self) -> str:
        return f"Transport({self.url!r}, timeout={self.timeout}, max_retries={self.max_retries})"

    @property
    def url(self) -> str:
        """The endpoint as messages show it (a password in the URL masked)."""
        return self.settings.display_url

    def execute(self, query: str, variables: dict[str, Any] | None = None, *, run_id: str | None = None,
                fast: Callable[[bytes], Any] | None = None) -> Any:
        """Post a query and return its ``data``.

        Parameters
        ----------
        query : str
        variables : dict, optional
        run_id : str, optional
            Named in error messages.
        fast : callable, optional
            A decoder tried first on a successful answer's body: what it returns is
            returned instead of ``data``, unless it returns None (the body does not fit
            its shape), in which case the body is decoded, checked and reported on the
            general way.

        Raises
        ------
        RunlensError
            A subclass that says what went wrong (see :mod:`runlens.errors`).
        """
        payload = {"query": query, "variables": variables or {}}
        attempt = 0
        while True:
            try:
                return self._post_once(payload, run_id, fast)
            except _RetryableBody as exc:
                if attempt >= self.max_retries:
                    raise TransportError(
                        f"{self.url} kept sending incomplete answers ({exc}) after "
                        f"{self.max_retries} retries; try again or raise max_retries",
                        run_id=run_id,
                    ) from None
                time.sleep(min(30.0, self.backoff * 2**attempt))
                attempt += 1

    def _post_once(self, payload: dict, run_id: str | None, fast: Callable[[bytes], Any] | None = None) -> Any:
        response, body = self._send(payload, run_id)
        if fast is not None and response.status_code == 200 and "html" not in response.headers.get(
                "Content-Type", "").lower():
            decoded = fast(body)
            if decoded is not None:
                return decoded
        return self._decode(response, body, run_id)

    def send(self, payload: dict[str, Any]) -> tuple[requests.Response, bytes]:
        """One HTTP exchange: POST ``payload`` as JSON; the response and its whole body.

        The one method that touches the network (:class:`MockTransport` replaces it).
        Everything after it — statuses, retries of cut-short bodies, JSON, GraphQL
        errors, the typed fast path — is the same whoever answered. Raises requests'
        exceptions, which :meth:`execute` turns into RunlensErrors.
        """
        # No redirects: requests would carry the Dagster-Cloud-* headers to another host.
        response = self.session.post(self.settings.url, json=payload, timeout=self.timeout, allow_redirects=False)
        return response, response.content  # reads the whole body: a cut-short body raises here

    def _send(self, payload: dict, run_id: str | None) -> tuple[requests.Response, bytes]:
        """:meth:`send`, or the RunlensError saying why not."""
        with self.network_errors(run_id):
            try:
                return self.send(payload)
            except requests.exceptions.ChunkedEncodingError as exc:
                raise _RetryableBody(f"body cut short: {type(exc).__name__}") from None

    def open_get(self, url: str, headers: dict[str, str]) -> requests.Response:
        """One HTTP GET of `url` (absolute), streamed: the body is read by the caller.

        The other method that touches the network (:class:`MockTransport` replaces it
        too). The configured headers (a Dagster+ token) go only to this transport's own
        host; no redirect is followed. Raises requests' exceptions, as :meth:`send`.
        """
        own = urlsplit(url)[:2] == urlsplit(self.settings.url)[:2]
        if own:
            return self.session.get(url, headers=headers, timeout=self.timeout, allow_redirects=False, stream=True)
        # Another host (a storage bucket's URL): neither the token nor the session's
        # other headers travel there. (Not closed here: the streamed body still needs it.)
        bare = requests.Session()
        bare.trust_env = False
        bare.verify = self.session.verify
        adapter = HTTPAdapter(max_retries=self.session.get_adapter(url).max_retries)
        bare.mount("http://", adapter)
        bare.mount("https://", adapter)
        return bare.get(url, headers={"User-Agent": USER_AGENT, **headers}, timeout=self.timeout,
                        allow_redirects=False, stream=True)

    def absolute_url(self, url: str) -> str:
        """A webserver path (``/logs/...``, as Dagster gives download URLs) joined to the endpoint's base."""
        if urlsplit(url).scheme:
            return url
        base = self.settings.url.rsplit("/graphql", 1)[0]
        return base.rstrip("/") + "/" + url.lstrip("/")

    @contextmanager
    def network_errors(self, run_id: str | None = None) -> Iterator[None]:
        """Turn requests' network exceptions raised inside into the RunlensError saying why."""
        try:
            yield
        except requests.exceptions.InvalidURL:
            raise ConfigError(f"invalid URL {self.url!r}: check its host and port") from None
        except requests.exceptions.RetryError as exc:
            raise TransportError(f"{self.url}: gave up after {self.max_retries} retries ({exc})", run_id=run_id) from None
        except requests.exceptions.SSLError as exc:
            raise TransportError(
                f"cannot reach {self.url} securely: TLS verification failed ({_ssl_reason(exc)}). runlens "
                "always verifies certificates; use the server's proper https address, or have its "
                "certificate signed by a CA this machine trusts",
                run_id=run_id,
            ) from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            raise self._connection_error(exc, run_id) from None

    def _connection_error(self, exc: Exception, run_id: str | None) -> TransportError:
        """Say what the network did, from the urllib3 error under requests' wrapper."""
        reason = _root_reason(exc)
        tries = f"{self.max_retries + 1} attempts" if self.max_retries else "1 attempt"
        if isinstance(exc, requests.exceptions.Timeout) or isinstance(reason, (ReadTimeoutError, TimeoutError)):
            if isinstance(exc, requests.exceptions.ConnectTimeout):
                what = "did not accept a connection"
            else:
                what = "did not answer"
            return TransportError(
                f"{self.url} {what} within {self.timeout:g} s ({tries}); is the server overloaded? "
                "Raise Client(timeout=...) for very large pages",
                run_id=run_id,
            )
        if isinstance(reason, NameResolutionError):
            host = requests.utils.urlparse(self.url).hostname
            return TransportError(
                f"cannot reach {self.url}: the host name {host!r} does not resolve (DNS). Check the URL: "
                "set RUNLENS_URL (or pass --url) to your webserver's address",
                run_id=run_id,
            )
        if isinstance(reason, ProtocolError) or (reason is None and "aborted" in str(exc)):
            return TransportError(
                f"{self.url} closed the connection without a complete answer ({_reason(exc)}; {tries}): "
                "the server or a proxy in front of it is dropping connections; try again later",
                run_id=run_id,
            )
        if isinstance(reason, NewConnectionError) or reason is None:
            return TransportError(
                f"cannot reach {self.url}: {_reason(exc)}. Is Dagster running there? "
                "Set RUNLENS_URL (or pass --url) to your webserver's address, "
                "or start a local one with `runlens demo --serve`",
                run_id=run_id,
            )
        return TransportError(f"cannot reach {self.url}: {_reason(exc)} ({tries})", run_id=run_id)

    def _decode(self, response: requests.Response, body: bytes, run_id: str | None) -> dict:
        """The answer's GraphQL ``data``, or the RunlensError its status or body says."""
        self._raise_for_status(response, body, run_id)
        return self._graphql_data(response.status_code, body, run_id)

    def _raise_for_status(self, response: requests.Response, body: bytes, run_id: str | None) -> None:
        """Raise for an answer that is no GraphQL answer: a redirect, 401/403, 429, 5xx from a proxy, HTML, 404."""
        status = response.status_code
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("Location", "")).netloc or "another address"
            raise ConfigError(
                f"{self.url} redirects (HTTP {status}) to {target}: runlens does not follow redirects, "
                "so a token never travels to another host. Use the address it redirects to",
                run_id=run_id,
            )
        if status in (401, 403):
            raise AuthError(
                f"{self.url} answered HTTP {status} ({'unauthorized' if status == 401 else 'forbidden'}): "
                f"{self.settings.token_hint()}",
                run_id=run_id,
            )
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        too_long = retry_after is not None and retry_after > MAX_RETRY_AFTER
        if status == 429:
            if too_long:
                raise RateLimited(
                    f"{self.url} is rate-limiting requests (HTTP 429) and asks to wait {retry_after:.0f} s "
                    f"(Retry-After), longer than runlens waits ({MAX_RETRY_AFTER:.0f} s); try again after that",
                    run_id=run_id,
                )
            raise RateLimited(
                f"{self.url} is rate-limiting requests (HTTP 429) and still was after "
                f"{self.max_retries} retries; wait and try again, or lower max_workers",
                run_id=run_id,
            )
        if status in (502, 503, 504):
            later = f"try again in {retry_after:.0f} s (its Retry-After)" if too_long else "try again later"
            raise TransportError(
                f"{self.url} answered HTTP {status} after {0 if too_long else self.max_retries} retries: the "
                f"server or a proxy in front of it is unavailable; {later}",
                run_id=run_id,
            )
        content_type = response.headers.get("Content-Type", "")
        if "html" in content_type.lower() or body.lstrip()[:1] == b"<":
            raise ConfigError(
                f"{self.url} answered with an HTML page (HTTP {status}), not GraphQL: the URL points "
                "at a web page, not at Dagster's GraphQL endpoint. Use the webserver's address "
                "ending in /graphql (with its --path-prefix, if it has one)",
                run_id=run_id,
            )
        if status in (404, 405, 410):
            # dagster-webserver answers 405 to a POST on any path but /graphql (/runs, /).
            raise ConfigError(
                f"{self.url} answered HTTP {status} ({response.reason or 'not found'}): no GraphQL endpoint "
                "there. Check the URL: the webserver's address, with its --path-prefix if it has one",
                run_id=run_id,
            )

    def _graphql_data(self, status: int, body: bytes, run_id: str | None) -> dict:
        """The ``data`` of a GraphQL body, repaired; GraphQL ``errors`` and broken bodies raised."""
        try:
            # Invalid UTF-8 from a broken proxy becomes U+FFFD rather than failing the page.
            text = body.decode("utf-8", "replace")
            doc = json.loads(text)
        except ValueError:
            if status >= 500 or len(body) > 0 and status == 200:
                raise _RetryableBody(f"HTTP {status} with a body that is not JSON") from None
            raise TransportError(f"{self.url} answered HTTP {status} with a body that is not JSON", run_id=run_id) from None
        if not isinstance(doc, dict):
            raise _RetryableBody("a JSON body that is not an object")
        if _SURROGATE_ESCAPE.search(text):
            # JSON may escape lone UTF-16 surrogates ("\ud800"), which no encoder accepts.
            doc = _without_lone_surrogates(doc)
        data = doc.get("data")
        errors = doc.get("errors")
        if errors is not None and not isinstance(errors, list):
            errors = [errors]
        # Dagster answers 500 whenever a resolver raised, even with data present: the
        # body decides, not the status. A field nulled by an error comes with `errors`.
        if errors and (not isinstance(data, dict) or not data or any(v is None for v in data.values())):
            raise self._graphql_error(errors, status, run_id)
        if data is None:
            if status >= 500:
                raise _RetryableBody(f"HTTP {status} without data")
            raise TransportError(f"{self.url} answered HTTP {status} without data", run_id=run_id)
        if not isinstance(data, dict):
            raise ServerError(f"{self.url} answered a GraphQL `data` that is not an object", run_id=run_id)
        return data

    def _graphql_error(self, errors: list, status: int, run_id: str | None) -> RunlensError:
        first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
        message = str(first.get("message", "unknown error"))
        if "Cannot query field" in message or "Unknown argument" in message or "Unknown type" in message:
            version = self.server_version()
            return GraphQLError(
                f"the server rejected runlens's query: {message} Dagster there is "
                f"{version or 'of an unknown version'}; runlens is tested with Dagster 1.12-1.13",
                errors=errors,
                run_id=run_id,
            )
        if status >= 500:
            return ServerError(f"the server failed: {message}", run_id=run_id)
        return GraphQLError(f"the server rejected the query (HTTP {status}): {message}", errors=errors, run_id=run_id)

    def server_version(self) -> str | None:
        """Dagster's version from ``GET /server_info``, or None if it does not answer."""
        if self._server_version is None:
            info_url = self.settings.url.rsplit("/graphql", 1)[0] + "/server_info"
            try:
                info = self.session.get(info_url, timeout=min(self.timeout, 5), allow_redirects=False).json()
                version = info.get("dagster_version")
            except (requests.RequestException, ValueError, AttributeError):
                return None
            if not isinstance(version, str) or not version:
                return None
            self._server_version = version
        return self._server_version


def raise_python_error(result: dict, *, run_id: str | None = None) -> None:
    """Raise ``ServerError`` if a GraphQL union result is a Dagster ``PythonError``."""
    if result.get("__typename") == "PythonError":
        raise ServerError(
            f"Dagster raised {result.get('className') or 'an error'}: {str(result.get('message', '')).strip()}",
            error_class=result.get("className"),
            stack=result.get("stack") if isinstance(result.get("stack"), list) else None,
            run_id=run_id,
        )


class MockTransport(Transport):
    """A transport whose answers come from a function, not a server: for tests.

    As httpx's ``MockTransport``: ``handler(request)`` gets what would be posted (the
    ``{"query": ..., "variables": ...}`` payload) and returns the answer, which runlens
    then reads exactly as a server's (status codes, retries, GraphQL errors, the typed
    fast path). ``requests`` lists every payload received, in order.

    Parameters
    ----------
    handler : callable
        ``handler(request: dict)`` returns the answer: a dict or list (a JSON body,
        HTTP 200), or ``(status, body)`` or ``(status, body, headers)`` with ``body`` a
        dict, list, str or bytes. Raising a ``requests`` exception (e.g.
        ``requests.ConnectionError``) acts as that network failure.
    url : str
        The endpoint messages name.
    max_retries, backoff : optional
        As :class:`Transport`; by default no retry and no wait.
    websocket : bool, default False
        Whether :meth:`runlens.Client.follow` may open a websocket to ``url`` (a test
        websocket server there); a mock has no server behind it by default, so following
        polls the handler.

    Examples
    --------
    >>> def handler(request):
    ...     run_id = request["variables"]["runId"]
    ...     return {"data": {"runOrError": {"__typename": "Run", "id": run_id, "status": "SUCCESS"}}}
    >>> client = runlens.Client(transport=runlens.MockTransport(handler))
    >>> client.run("abc").id
    'abc'
    """

    def __init__(self, handler: Callable[[dict[str, Any]], Any], *, url: str = "http://dagster.test/graphql",
                 max_retries: int = 0, backoff: float = 0.0, websocket: bool = False) -> None:
        super().__init__(Settings(normalize_url(url), sources={"url": "MockTransport"}), max_retries=max_retries,
                         backoff=backoff)
        self.websocket = websocket
        self.handler = handler
        self.requests: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"MockTransport({self.url!r}, handler={getattr(self.handler, '__name__', self.handler)!r})"

    def send(self, payload: dict[str, Any]) -> tuple[requests.Response, bytes]:
        # As a server would see it: a JSON document of its own, not the caller's dict.
        request = json.loads(json.dumps(payload))
        self.requests.append(request)
        answer = self.handler(request)
        status, body, headers = 200, answer, {}
        if isinstance(answer, tuple):
            status, body, headers = (*answer, {})[:3] if len(answer) in (2, 3) else (None, None, None)
        if not isinstance(status, int) or not isinstance(headers, dict):
            raise InvalidArgument("a MockTransport handler returns a body, (status, body) or (status, body, headers), "
                                  f"not {answer!r:.200}")
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **headers}
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        try:
            response.reason = HTTPStatus(status).phrase
        except ValueError:
            response.reason = ""
        return response, body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body

    def open_get(self, url: str, headers: dict[str, str]) -> requests.Response:
        # The handler gets {"method": "GET", "url": ..., "headers": ...}; it answers as for a POST.
        request = {"method": "GET", "url": url, "headers": dict(headers)}
        self.requests.append(request)
        answer = self.handler(request)
        status, body, extra = (*answer, {})[:3] if isinstance(answer, tuple) else (200, answer, {})
        response = requests.Response()
        response.status_code = status
        response.headers.update(extra)
        response.url = url
        response.raw = io.BytesIO(body.encode() if isinstance(body, str) else body)
        return response

    def server_version(self) -> str | None:
        """None: no server behind a mock."""
        return None


class _RetryableBody(Exception):
    """A response whose body cannot be used but might be on a second try."""


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "nodename nor servname",
                   "Temporary failure in name resolution", "No route to host", "Connection reset",
                   "Network is unreachable"):
        if marker in text:
            return marker.lower()
    if "RemoteDisconnected" in text or "without response" in text:
        return "closed without answering"
    if "Connection aborted" in text or "Broken pipe" in text:
        return "connection aborted"
    return type(exc).__name__


def _root_reason(exc: BaseException) -> BaseException | None:
    """The urllib3 error under a requests exception (a MaxRetryError's reason, unwrapped)."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return reason if isinstance(reason, BaseException) else None


def _ssl_reason(exc: Exception) -> str:
    text = str(_root_reason(exc) or exc)
    for marker in ("certificate verify failed", "hostname mismatch", "self-signed certificate",
                   "certificate has expired", "wrong version number"):
        if marker in text:
            return marker
    return "SSL error"


def _retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds, None if absent or unreadable."""
    if not value:
        return None
    try:
        return _Retry(0).parse_retry_after(value)
    except InvalidHeader:
        return None


def _without_lone_surrogates(value: Any) -> Any:
    # Imported here: runlens.text loads pandas, which `runlens run get` never needs, and
    # only a body holding a surrogate escape gets this far.
    from .text import replace_lone_surrogates

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return replace_lone_surrogates(value)
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(value)


_HEADER_SETTINGS = {"Dagster-Cloud-Api-Token": "token", "Dagster-Cloud-Organization": "organization",
                    "Dagster-Cloud-Deployment": "deployment"}


def _checked_headers(settings: Settings) -> dict[str, str]:
    """The settings' headers, refusing values HTTP cannot carry, without ever echoing them.

    requests would otherwise raise ``InvalidHeader`` with the raw value, the token
    included, in its message.
    """
    headers = settings.headers()
    for name, value in headers.items():
        setting = _HEADER_SETTINGS.get(name)
        if setting is None:
            continue
        if value != value.strip() or not value.isascii() or not value.isprintable():
            raise ConfigError(
                f"the {setting} (from {settings.sources.get(setting, '?')}) starts or ends with whitespace, "
                "or holds a line break, a control or a non-ASCII character, which an HTTP header cannot "
                "carry; check it for a stray newline, space or quote"
            )
    return headers
