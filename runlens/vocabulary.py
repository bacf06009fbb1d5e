"""Dagster's words for states and levels, as plain data: run statuses, log levels, step statuses.

One home for each, importable without pydantic or pandas (``import runlens.filters``
must not load the models). :mod:`runlens.models` re-exports the enums for the seed's
names (``RunStatus``, ``RunEventLevel``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "LEVELS",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "TERMINAL_STATUSES",
    "RunEventLevel",
    "RunStatus",
]


class RunStatus(StrEnum):
    """A run's status, as Dagster's ``RunStatus`` enum (all ten values)."""

    QUEUED = "QUEUED"
    NOT_STARTED = "NOT_STARTED"
    MANAGED = "MANAGED"
    STARTING = "STARTING"
    STARTED = "STARTED"
    SUSPENDED = "SUSPENDED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"


#: Every run status, in Dagster's order.
RUN_STATUSES: tuple[str, ...] = tuple(status.value for status in RunStatus)

#: Run statuses after which a run never changes again.
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})


class RunEventLevel(StrEnum):
    """An event's log level, as Dagster's ``LogLevel``."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


#: Log levels from least to most severe (the order of the ``level`` column).
LEVELS: tuple[str, ...] = tuple(level.value for level in RunEventLevel)

#: A step's status in :func:`runlens.step_durations`: Dagster's ``StepEventStatus``, plus
#: CANCELED for a step that was running when its run was canceled (Dagster says FAILURE).
STEP_STATUSES: tuple[str, ...] = ("SUCCESS", "FAILURE", "IN_PROGRESS", "SKIPPED", "CANCELED")
