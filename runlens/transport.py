"""One POST of a GraphQL document, with retries, and every failure mapped to a RunlensError.

Retries happen at two depths. urllib3's ``Retry`` (mounted on the session) handles
connection errors and the statuses worth retrying (429 with ``Retry-After``, 502, 503,
504); every runlens query is read-only, so retrying a POST is safe. A body that arrives
cut short or is not JSON is retried here, with the same backoff, since urllib3 has
already handed the response over by then.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .config import Settings
from .errors import (
    AuthError,
    ConfigError,
    GraphQLError,
    RateLimited,
    RunlensError,
    ServerError,
    TransportError,
)

RETRY_STATUSES = (429, 502, 503, 504)
USER_AGENT = "runlens"


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
        truncated bodies; 0 disables them.
    backoff : float
        Base of the exponential backoff, in seconds (``backoff * 2**n``, capped at 30 s).
    session : requests.Session, optional
        A session to use instead of a new one (its adapters are replaced).
    """

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
        retry = Retry(
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
        self.session.headers.update(settings.headers())
        self.session.headers["User-Agent"] = USER_AGENT
        self._server_version: str | None = None

    def __repr__(self) -> str:
        return f"Transport({self.settings.url!r}, timeout={self.timeout}, max_retries={self.max_retries})"

    @property
    def url(self) -> str:
        return self.settings.url

    def execute(self, query: str, variables: dict[str, Any] | None = None, *, run_id: str | None = None) -> dict:
        """Post a query and return its ``data``.

        Raises
        ------
        RunlensError
            A subclass that says what went wrong (see :mod:`runlens.errors`).
        """
        payload = {"query": query, "variables": variables or {}}
        attempt = 0
        while True:
            try:
                return self._post_once(payload, run_id)
            except _RetryableBody as exc:
                if attempt >= self.max_retries:
                    raise TransportError(
                        f"{self.url} kept sending incomplete answers ({exc}) after "
                        f"{self.max_retries} retries; try again or raise max_retries",
                        run_id=run_id,
                    ) from None
                time.sleep(min(30.0, self.backoff * 2**attempt))
                attempt += 1

    def _post_once(self, payload: dict, run_id: str | None) -> dict:
        try:
            response = self.session.post(self.url, json=payload, timeout=self.timeout)
            body = response.content  # reads the whole body: a cut-short body raises here
        except requests.exceptions.ChunkedEncodingError as exc:
            raise _RetryableBody(f"body cut short: {type(exc).__name__}") from None
        except requests.exceptions.InvalidURL as exc:
            raise ConfigError(f"invalid URL {self.url!r}: {exc}") from None
        except requests.exceptions.RetryError as exc:
            raise TransportError(f"{self.url}: gave up after {self.max_retries} retries ({exc})", run_id=run_id) from None
        except requests.exceptions.Timeout:
            raise TransportError(
                f"{self.url} did not answer within {self.timeout:g} s (after {self.max_retries} retries); "
                "is the server overloaded? Raise Client(timeout=...) for very large pages",
                run_id=run_id,
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise TransportError(
                f"cannot reach {self.url}: {_reason(exc)}. Is Dagster running there? "
                "Set RUNLENS_URL (or pass --url) to your webserver's address, "
                "or start a local one with `runlens demo --serve`",
                run_id=run_id,
            ) from None
        return self._decode(response, body, run_id)

    def _decode(self, response: requests.Response, body: bytes, run_id: str | None) -> dict:
        status = response.status_code
        if status in (401, 403):
            raise AuthError(
                f"{self.url} answered HTTP {status} ({'unauthorized' if status == 401 else 'forbidden'}): "
                f"{self.settings.token_hint()}",
                run_id=run_id,
            )
        if status == 429:
            raise RateLimited(
                f"{self.url} is rate-limiting requests (HTTP 429) and still was after "
                f"{self.max_retries} retries; wait and try again, or lower max_workers",
                run_id=run_id,
            )
        if status in (502, 503, 504):
            raise TransportError(
                f"{self.url} answered HTTP {status} after {self.max_retries} retries: the server or a "
                "proxy in front of it is unavailable; try again later",
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
        if status == 404:
            raise ConfigError(
                f"{self.url} answered HTTP 404: no GraphQL endpoint there. Check the URL "
                "(and the webserver's --path-prefix)",
                run_id=run_id,
            )
        try:
            doc = json.loads(body)
        except ValueError:
            if status >= 500 or len(body) > 0 and status == 200:
                raise _RetryableBody(f"HTTP {status} with a body that is not JSON") from None
            raise TransportError(f"{self.url} answered HTTP {status} with a body that is not JSON", run_id=run_id) from None
        if not isinstance(doc, dict):
            raise _RetryableBody("a JSON body that is not an object")
        data = doc.get("data")
        errors = doc.get("errors")
        # Dagster answers 500 whenever a resolver raised, even with data present: the
        # body decides, not the status.
        if errors and not data:
            raise self._graphql_error(errors, status, run_id)
        if data is None:
            if status >= 500:
                raise _RetryableBody(f"HTTP {status} without data")
            raise TransportError(f"{self.url} answered HTTP {status} without data", run_id=run_id)
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
            info_url = self.url.rsplit("/graphql", 1)[0] + "/server_info"
            try:
                info = self.session.get(info_url, timeout=min(self.timeout, 5)).json()
                self._server_version = str(info.get("dagster_version"))
            except (requests.RequestException, ValueError, AttributeError):
                return None
        return self._server_version


def raise_python_error(result: dict, *, run_id: str | None = None) -> None:
    """Raise ``ServerError`` if a GraphQL union result is a Dagster ``PythonError``."""
    if result.get("__typename") == "PythonError":
        raise ServerError(
            f"Dagster raised {result.get('className') or 'an error'}: {str(result.get('message', '')).strip()}",
            error_class=result.get("className"),
            stack=result.get("stack"),
            run_id=run_id,
        )


class _RetryableBody(Exception):
    """A response whose body cannot be used but might be on a second try."""


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "nodename nor servname",
                   "Temporary failure in name resolution", "No route to host", "Connection reset"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
