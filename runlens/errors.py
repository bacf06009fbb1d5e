"""The exceptions runlens raises, all under one base class.

::

    RunlensError                 exit 1  anything runlens could not do
     ├── ConfigError             exit 2  a setting is missing or wrong (URL, token, config file)
     ├── InvalidArgument         exit 2  an argument runlens cannot use (empty run id, limit < 1)
     │    └── InvalidFilter      exit 2  a filter holds no usable value (``--type ' , '``)
     ├── RunNotFound             exit 3  the server has no run with that id
     ├── LogsNotFound            exit 3  the run (or step) has no captured compute logs
     ├── AssetNotFound           exit 3  the server has no asset with that key (no definition, no history)
     ├── AuthError               exit 4  401/403: the token is missing, wrong or lacks rights
     ├── TransportError          exit 5  no answer: refused, DNS, timeout, 502/503/504 after retries
     │    └── RateLimited        exit 5  429 after retries
     ├── ServerError             exit 1  Dagster raised (a ``PythonError``): message, class, stack
     ├── GraphQLError            exit 1  the server rejected the query (an ``errors`` array)
     └── StoreError              exit 1  a History store cannot be used (corrupt file, newer format, not writable)
          └── StoreLocked        exit 1  another sync holds the store's lock

    RunlensWarning               (a warning, not an error) a result may mislead: an analysis of
     └── UnknownEventTypeWarning  an incomplete or filtered frame, a filter naming no known type

Every message says what happened and what to do. None ever contains the API token.
The CLI maps each class to its ``exit_code``. Errors raised in the middle of a
pagination also carry how far the fetch got (``events_fetched`` and ``cursor``), so it
can resume with ``Client.iter_event_pages(run_id, after_cursor=err.cursor)`` (the
message says so, unless resuming cannot help: ``RunNotFound``).
"""

from __future__ import annotations

__all__ = [
    "RunlensError",
    "ConfigError",
    "InvalidArgument",
    "InvalidFilter",
    "RunNotFound",
    "LogsNotFound",
    "AssetNotFound",
    "AuthError",
    "TransportError",
    "RateLimited",
    "ServerError",
    "GraphQLError",
    "StoreError",
    "StoreLocked",
    "RunlensWarning",
]


class RunlensError(Exception):
    """Base class of every error runlens raises.

    Attributes
    ----------
    exit_code : int
        The CLI exit status for this kind of error.
    run_id : str or None
        The run the failing call was about, when there was one.
    events_fetched : int or None
        For errors during pagination: events received before the failure.
    cursor : str or None
        For errors during pagination: the cursor of the last complete page; pass it as
        ``after_cursor`` to resume.
    """

    exit_code = 1
    #: Whether fetching again from ``cursor`` can help: not when the run does not exist.
    resumable = True

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.run_id = run_id
        self.events_fetched: int | None = None
        self.cursor: str | None = None

    def add_progress(self, events_fetched: int, cursor: str | None, *, resume_with: str | None = None) -> None:
        """Record how far a pagination got before this error and, if resuming can help, say how.

        ``resume_with`` is the call that continues from ``cursor`` (default: the run's
        ``iter_event_pages``).
        """
        self.events_fetched = events_fetched
        self.cursor = cursor
        if not self.resumable:
            return
        if resume_with is None:
            resume = f"after_cursor={cursor!r}" if cursor else "no cursor, from the start of the log"
            resume_with = f"iter_event_pages(..., {resume})"
        self.message = (
            f"{self.message} (fetched {events_fetched} events before the failure; "
            f"resume with {resume_with})"
        )
        self.args = (self.message,)

    def __str__(self) -> str:
        return self.message


class ConfigError(RunlensError):
    """A setting is missing or wrong: the URL, the token, a config file."""

    exit_code = 2


class InvalidArgument(RunlensError, ValueError):
    """An argument runlens cannot use: an empty run id, a limit below 1, an unknown status."""

    exit_code = 2


class InvalidFilter(InvalidArgument):
    """A filter was given but names nothing usable (only commas and spaces)."""


class RunNotFound(RunlensError):
    """The server answered ``RunNotFoundError`` for this run id."""

    exit_code = 3
    resumable = False  # a missing run is not a failed fetch


class LogsNotFound(RunlensError):
    """The run exists but has no captured compute logs (for that step): it never ran, or nothing captured them."""

    exit_code = 3
    resumable = False


class AssetNotFound(RunlensError):
    """The server knows no asset with this key: no definition and no recorded event.

    Dagster 1.13 answers an empty ``Asset`` for any key, so runlens decides this itself
    (an asset removed from the code but with history is found).

    Attributes
    ----------
    asset_key : str
        The key asked for, ``a/b/c``.
    """

    exit_code = 3
    resumable = False

    def __init__(self, message: str, *, asset_key: str) -> None:
        super().__init__(message)
        self.asset_key = asset_key


class AuthError(RunlensError):
    """HTTP 401 or 403: the token is missing, wrong, or not allowed here."""

    exit_code = 4


class TransportError(RunlensError):
    """The server could not be reached or did not answer in time, after retries."""

    exit_code = 5


class RateLimited(TransportError):
    """The server kept answering 429 after every retry."""


class ServerError(RunlensError):
    """Dagster raised while answering (a ``PythonError``).

    Attributes
    ----------
    error_class : str or None
        The Python class of the error on the server.
    stack : list of str
        The server's stack trace lines (server paths included).
    """

    def __init__(
        self,
        message: str,
        *,
        error_class: str | None = None,
        stack: list[str] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message, run_id=run_id)
        self.error_class = error_class
        self.stack = list(stack or [])


class GraphQLError(RunlensError):
    """The server rejected the query: an ``errors`` array with no usable data.

    Attributes
    ----------
    errors : list of dict
        The ``errors`` array as the server sent it.
    """

    def __init__(self, message: str, *, errors: list | None = None, run_id: str | None = None):
        super().__init__(message, run_id=run_id)
        self.errors = list(errors or [])


class StoreError(RunlensError):
    """A History store cannot be read or written: a corrupt or missing file, a newer format, no write access."""


class StoreLocked(StoreError):
    """Another sync is writing to the same History store (it holds the store's lock)."""


class RunlensWarning(UserWarning):
    """Base class of the warnings runlens gives: the result may mislead, and here is why.

    For example, :func:`runlens.step_durations` of a frame that a ``limit`` cut short or
    that a type filter thinned. Silence them all with
    ``warnings.simplefilter("ignore", runlens.RunlensWarning)``.
    """
