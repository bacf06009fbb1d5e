"""The API's answers, typed: runs as pydantic models, pages of events as columns.

They follow the seed's ``Run``, ``RunStatus`` and ``RunEventLevel``, corrected to the
real API:

* all ten run statuses, and a status Dagster adds later is kept as a plain string
  instead of failing validation;
* run times arrive as float epoch *seconds* and become timezone-aware UTC datetimes
  (event times, strings of epoch *milliseconds*, become the events frame's
  ``timestamp`` column);
* an event's type is optional: it is null for every plain log line.

Events are not one model each: a 50,000-event run becomes a DataFrame column by column
(see :mod:`runlens.frames`), page by page (:class:`EventPage`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvalidArgument
from .vocabulary import LEVELS, TERMINAL_STATUSES, RunEventLevel, RunStatus  # noqa: F401  the seed's names live here too

if TYPE_CHECKING:
    import pandas as pd

    from .frames import EventColumns


def seconds_to_utc(value: Any) -> datetime | None:
    """Epoch seconds (Dagster's run times) to an aware UTC datetime.

    None stays None, and so does a value no datetime can hold (not a number, NaN,
    beyond year 9999): a broken time must not lose the whole run.
    """
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class RunStats(_Model):
    """``Run.stats``: step counts and the run's milestones."""

    steps_succeeded: int = Field(0, alias="stepsSucceeded")
    steps_failed: int = Field(0, alias="stepsFailed")
    materializations: int = 0
    expectations: int = 0
    enqueued_time: datetime | None = Field(None, alias="enqueuedTime")
    launch_time: datetime | None = Field(None, alias="launchTime")
    start_time: datetime | None = Field(None, alias="startTime")
    end_time: datetime | None = Field(None, alias="endTime")

    _times = field_validator("enqueued_time", "launch_time", "start_time", "end_time", mode="before")(
        lambda v: seconds_to_utc(v)
    )


class Run(_Model):
    """A run's metadata (``runOrError``), times in UTC.

    ``status`` is a :class:`RunStatus`, or the raw string for a status this version of
    runlens does not know.
    """

    id: str
    status: RunStatus | str
    job_name: str | None = Field(None, alias="jobName")
    pipeline_name: str | None = Field(None, alias="pipelineName")
    mode: str | None = None
    created_at: datetime | None = Field(None, alias="creationTime")
    started_at: datetime | None = Field(None, alias="startTime")
    ended_at: datetime | None = Field(None, alias="endTime")
    updated_at: datetime | None = Field(None, alias="updateTime")
    root_run_id: str | None = Field(None, alias="rootRunId")
    parent_run_id: str | None = Field(None, alias="parentRunId")
    tags: dict[str, str] = Field(default_factory=dict)
    run_config_yaml: str | None = Field(None, alias="runConfigYaml")
    stats: RunStats | None = None

    _times = field_validator("created_at", "started_at", "ended_at", "updated_at", mode="before")(
        lambda v: seconds_to_utc(v)
    )

    @model_validator(mode="before")
    @classmethod
    def _never_started(cls, data: Any) -> Any:
        # Dagster gives a run canceled while queued startTime == endTime though it never
        # started (its stats.startTime stays null): no start, so no duration, not 0 s.
        # runlens.frames.runs_frame applies the same rule to the runs frame.
        if isinstance(data, dict) and data.get("startTime") is not None and data.get("startTime") == data.get("endTime"):
            return {**data, "startTime": None}
        return data

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> dict[str, str]:
        if isinstance(value, list):
            # Entries without a string key are skipped rather than failing the run.
            return {t["key"]: "" if t.get("value") is None else str(t["value"])
                    for t in value if isinstance(t, dict) and isinstance(t.get("key"), str)}
        return value if isinstance(value, dict) else {}

    @field_validator("stats", mode="before")
    @classmethod
    def _stats(cls, value: Any) -> Any:
        # stats is a union with PythonError: a failed (or unreadable) stats lookup must
        # not lose the run.
        if not isinstance(value, dict) or value.get("__typename", "RunStatsSnapshot") != "RunStatsSnapshot":
            return None
        try:
            return RunStats.model_validate(value)
        except ValidationError:
            return None

    @property
    def is_finished(self) -> bool:
        """Whether the run reached a terminal status (SUCCESS, FAILURE, CANCELED)."""
        return str(self.status) in TERMINAL_STATUSES

    @property
    def duration(self):
        """Wall time from start to end (or None if it has not both started and ended)."""
        if self.started_at and self.ended_at:
            return self.ended_at - self.started_at
        return None

    def _repr_html_(self) -> str:
        from html import escape

        from .text import iso_utc as _iso

        rows = [
            ("Run", self.id),
            ("Job", self.job_name or ""),
            ("Status", str(self.status)),
            ("Created", _iso(self.created_at, missing="")),
            ("Started", _iso(self.started_at, missing="")),
            ("Ended", _iso(self.ended_at, missing="")),
            ("Duration", str(self.duration) if self.duration is not None else ""),
        ]
        if self.stats:
            rows.append(("Steps", f"{self.stats.steps_succeeded} succeeded, {self.stats.steps_failed} failed"))
        if self.tags:
            rows.append(("Tags", ", ".join(f"{k}={v}" for k, v in self.tags.items())))
        body = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"


class EventPage:
    """One page of a run's events (``logsForRun``), in storage order.

    What :meth:`runlens.Client.iter_event_pages` yields. ``len(page)`` is its number of
    events.

    Attributes
    ----------
    run_id : str
    cursor : str or None
        The cursor after the page's last event: pass it as ``after_cursor`` to go on
        from there (or to poll a run in progress).
    has_more : bool
        Dagster's ``hasMore``: the page was full, *not* "more events exist". A log whose
        length is a multiple of the page size ends with one empty page.
    start_seq : int
        The ``seq`` of the page's first event, counted from where the fetch started.
    """

    __slots__ = ("run_id", "cursor", "has_more", "start_seq", "_events", "_columns")

    def __init__(self, run_id: str, *, cursor: str | None, has_more: bool, start_seq: int = 0,
                 events: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]] | None = None,
                 columns: EventColumns | None = None) -> None:
        """A page from its raw event records, or from its columns (and a way to get the records).

        Parameters
        ----------
        events : list of dict, or a callable returning one
            The records as the server sent them; a callable is called on first use of
            :attr:`events` (the typed fast path keeps only columns).
        columns : EventColumns, optional
            The page already decoded into columns, ``seq`` from ``start_seq``; built from
            ``events`` on first use otherwise.
        """
        if events is None and columns is None:
            raise InvalidArgument("an EventPage needs its events or its columns")
        self.run_id = run_id
        self.cursor = cursor
        self.has_more = has_more
        self.start_seq = start_seq
        self._events = events
        self._columns = columns

    def __len__(self) -> int:
        if self._columns is not None:
            return len(self._columns)
        return len(self.events)

    def __repr__(self) -> str:
        return (f"EventPage(run_id={self.run_id!r}, events={len(self)}, start_seq={self.start_seq}, "
                f"cursor={self.cursor!r}, has_more={self.has_more})")

    @property
    def events(self) -> list[dict[str, Any]]:
        """The page's events as the raw records the server sent (dicts)."""
        if callable(self._events):
            self._events = self._events()
        return self._events  # type: ignore[return-value]

    @property
    def columns(self) -> EventColumns:
        """The page's events as columns (:class:`runlens.frames.EventColumns`)."""
        if self._columns is None:
            from .frames import EventColumns

            self._columns = EventColumns(self.run_id, start_seq=self.start_seq).add(self.events)
        return self._columns

    def frame(self) -> pd.DataFrame:
        """The page as a typed events frame (see :mod:`runlens.frames`), ``seq`` from ``start_seq``."""
        return self.columns.frame()


def check_cursor(cursor: Any, run_id: str | None = None) -> None:
    """Refuse an ``after_cursor`` that cannot be one: not a string, or blank (None is "from the start")."""
    if cursor is not None and (not isinstance(cursor, str) or not cursor.strip()):
        raise InvalidArgument(f"after_cursor must be a cursor runlens returned (a page's cursor, "
                              f"events().attrs['cursor'] or err.cursor), not {cursor!r}", run_id=run_id)
