"""pydantic models at the API boundary: what Dagster's GraphQL answers, typed.

They follow the seed's ``Run``, ``RunStatus``, ``RunEvent``, ``RunEventLevel`` and
``RunEventList``, corrected to the real API:

* all ten run statuses, and a status Dagster adds later is kept as a plain string
  instead of failing validation;
* run times arrive as float epoch *seconds*, event times as strings of integer epoch
  *milliseconds*; both become timezone-aware UTC datetimes;
* ``event_type`` is optional: it is null for every plain log line.

Events are validated page by page (:class:`EventPage`), not one model per event: a
50,000-event run becomes a DataFrame column by column (see :mod:`runlens.frames`).
``EventPage.models()`` gives per-event models for those who want them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .vocabulary import LEVELS, TERMINAL_STATUSES, RunEventLevel, RunStatus  # noqa: F401  the seed's names live here too


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


def millis_to_utc(value: Any) -> datetime | None:
    """Epoch milliseconds as a string (Dagster's event times) to an aware UTC datetime.

    None, and values no datetime can hold, give None (as :func:`seconds_to_utc`).
    """
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
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

        rows = [
            ("Run", self.id),
            ("Job", self.job_name or ""),
            ("Status", str(self.status)),
            ("Created", _iso(self.created_at)),
            ("Started", _iso(self.started_at)),
            ("Ended", _iso(self.ended_at)),
            ("Duration", str(self.duration) if self.duration is not None else ""),
        ]
        if self.stats:
            rows.append(("Steps", f"{self.stats.steps_succeeded} succeeded, {self.stats.steps_failed} failed"))
        if self.tags:
            rows.append(("Tags", ", ".join(f"{k}={v}" for k, v in self.tags.items())))
        body = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RunEvent(_Model):
    """One event of a run's log (the seed's ``RunEvent``, with real types)."""

    run_id: str
    message: str
    timestamp: datetime
    level: RunEventLevel | str
    step_key: str | None = None
    event_type: str | None = None
    kind: str | None = None

    _time = field_validator("timestamp", mode="before")(lambda v: millis_to_utc(v))


class RunEventList(_Model):
    """A list of events with the cursor to continue from (the seed's ``RunEventList``)."""

    items: list[RunEvent]
    total: int
    cursor: str | None = None
    has_more: bool = False


class EventPage(_Model):
    """One page of ``logsForRun``: raw event records, the cursor after them, ``hasMore``.

    ``hasMore`` means "this page was full", not "more events exist": a log whose length
    is a multiple of the page size ends with one empty page.
    """

    run_id: str
    events: list[dict[str, Any]]
    cursor: str | None = None
    has_more: bool = Field(False, alias="hasMore")

    def __len__(self) -> int:
        return len(self.events)

    def models(self) -> list[RunEvent]:
        """The page's events as :class:`RunEvent` models."""
        return [
            RunEvent(
                run_id=self.run_id,
                message=e.get("message") or "",
                timestamp=e.get("timestamp"),
                level=e.get("level") or "INFO",
                step_key=e.get("stepKey"),
                event_type=e.get("eventType"),
                kind=e.get("__typename"),
            )
            for e in self.events
        ]
