"""Raw GraphQL records → typed pandas DataFrames. Every column and dtype is defined here.

Events frame (one row per event, in storage order — the order of the run's log, which
is *not* timestamp order when steps run in parallel):

==============  ==========================  =============================================
column          dtype                       meaning
==============  ==========================  =============================================
seq             int64                       0-based position in the run's log; filters and
                                            slices keep the original values
run_id          category                    the run
timestamp       datetime64[ms, UTC]         when the event was stored (ms, truncated)
level           category (ordered)          DEBUG < INFO < WARNING < ERROR < CRITICAL
event_type      category                    a ``DagsterEventType`` name; NA for log lines
step_key        category                    e.g. ``process[emea]``; NA for run-level events
message         string                      may be empty, multi-line, any unicode
kind            category                    the GraphQL ``__typename``
error_class     category                    error events: the Python class raised
error_message   string                      error events: its message
error_cause     string                      error events: the cause chain, ``Class: msg``
                                            per link, joined by `` <- ``
error_stack     string                      error events: the stack (server paths)
asset_key       string                      materializations/observations: ``a/b/c``
==============  ==========================  =============================================

``df.attrs`` holds ``run_ids``, ``endpoint``, ``fetched_at`` (UTC ISO) and ``complete``
(False when a ``limit`` cut the fetch short).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .event_types import EVENT_TYPES
from .models import LEVELS

LEVEL_DTYPE = pd.CategoricalDtype(list(LEVELS), ordered=True)
STRING = pd.StringDtype()

EVENT_COLUMNS: dict[str, Any] = {
    "seq": "int64",
    "run_id": "category",
    "timestamp": "datetime64[ms, UTC]",
    "level": LEVEL_DTYPE,
    "event_type": "category",
    "step_key": "category",
    "message": STRING,
    "kind": "category",
    "error_class": "category",
    "error_message": STRING,
    "error_cause": STRING,
    "error_stack": STRING,
    "asset_key": STRING,
}


def _categorical(values: Sequence[Any], known: Sequence[str] = ()) -> pd.Categorical:
    """A categorical whose categories are ``known`` first, then any other values seen.

    Fixed categories keep dtypes equal across runs and pages (so concatenation stays
    categorical); an unknown value is added, never turned into NA.
    """
    seen = pd.unique(np.asarray(values, dtype=object))
    extra = sorted(v for v in seen if v is not None and v == v and v not in set(known))
    return pd.Categorical(values, categories=list(known) + extra)


def _timestamps(raw: list[Any]) -> pd.DatetimeIndex:
    try:
        millis = np.array(raw, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        # A missing or malformed timestamp becomes NaT rather than failing the page.
        millis = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype="float64")
        millis = np.where(np.abs(millis) < 1e15, millis, np.nan)
    return pd.to_datetime(millis, unit="ms", utc=True).as_unit("ms")


def _error_fields(error: dict | None) -> tuple[Any, Any, Any, Any]:
    if not isinstance(error, dict):
        return None, None, None, None
    chain = []
    cause = error.get("cause")
    while isinstance(cause, dict):
        name, text = cause.get("className") or "Error", str(cause.get("message") or "").strip()
        # Dagster's messages usually start with the class name already.
        chain.append(text if text.startswith(f"{name}:") else f"{name}: {text}")
        cause = cause.get("cause")
    stack = error.get("stack")
    return (
        error.get("className"),
        error.get("message"),
        " <- ".join(chain) or None,
        "".join(stack) if isinstance(stack, list) else stack,
    )


def _asset_key(record: dict) -> Any:
    key = record.get("assetKey")
    if isinstance(key, dict) and isinstance(key.get("path"), list):
        return "/".join(map(str, key["path"]))
    return None


def events_frame(records: Sequence[dict], run_id: str, *, start_seq: int = 0) -> pd.DataFrame:
    """Build the typed events frame of one run from raw ``logsForRun`` event records.

    Parameters
    ----------
    records : sequence of dict
        Events as the GraphQL API returns them (``message``, ``timestamp``, ``level``,
        ``stepKey``, ``eventType``, ``__typename``, optionally ``error``, ``assetKey``).
    run_id : str
        The run they belong to.
    start_seq : int
        The position of the first record in the run's log.

    Returns
    -------
    pandas.DataFrame
        Columns and dtypes as in :data:`EVENT_COLUMNS`, even when ``records`` is empty.
    """
    n = len(records)
    get = dict.get
    error_records = [(i, r["error"]) for i, r in enumerate(records) if r.get("error")]
    errors = [[None] * n for _ in range(4)]
    for i, err in error_records:
        for column, value in zip(errors, _error_fields(err)):
            column[i] = value
    assets = [_asset_key(r) if "assetKey" in r else None for r in records]
    frame = pd.DataFrame(
        {
            "seq": np.arange(start_seq, start_seq + n, dtype=np.int64),
            "run_id": pd.Categorical([run_id] * n, categories=[run_id]),
            "timestamp": _timestamps([get(r, "timestamp") for r in records]),
            "level": pd.Categorical([get(r, "level") for r in records], dtype=LEVEL_DTYPE)
            if all(get(r, "level") in LEVELS for r in records)
            else _categorical([get(r, "level") for r in records], LEVELS).set_ordered(True),
            "event_type": _categorical([get(r, "eventType") for r in records], EVENT_TYPES),
            "step_key": _categorical([get(r, "stepKey") for r in records]),
            "message": pd.array([_text(get(r, "message")) for r in records], dtype=STRING),
            "kind": _categorical([get(r, "__typename") for r in records]),
            "error_class": _categorical(errors[0]),
            "error_message": pd.array(errors[1], dtype=STRING),
            "error_cause": pd.array(errors[2], dtype=STRING),
            "error_stack": pd.array(errors[3], dtype=STRING),
            "asset_key": pd.array(assets, dtype=STRING),
        }
    )
    return frame


def _text(value: Any) -> Any:
    # Messages are str, but a broken server or proxy can hand over anything; lone
    # surrogates from invalid UTF-8 are replaced so the frame always holds valid text.
    if value is None or isinstance(value, str) and value.isascii():
        return value if value is not None else ""
    if not isinstance(value, str):
        return str(value)
    return value.encode("utf-8", "replace").decode("utf-8")


def empty_events_frame(run_id: str | None = None) -> pd.DataFrame:
    """An events frame with no rows but every column and dtype."""
    frame = events_frame([], run_id or "")
    if run_id is None:
        frame["run_id"] = frame["run_id"].cat.set_categories([])
    return frame


def concat_events(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate events frames, keeping every dtype (categories are unioned)."""
    frames = [f for f in frames]
    if not frames:
        return empty_events_frame()
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    for column, dtype in EVENT_COLUMNS.items():
        if dtype == "category" or isinstance(dtype, pd.CategoricalDtype):
            cats: list = []
            seen: set = set()
            for f in frames:
                for c in f[column].cat.categories:
                    if c not in seen:
                        seen.add(c)
                        cats.append(c)
            frames = [f.assign(**{column: f[column].cat.set_categories(cats)}) for f in frames]
    return pd.concat(frames, ignore_index=True)


RUN_COLUMNS = ["run_id", "job_name", "status", "created", "started", "ended", "duration"]
RUN_STATUS_DTYPE = pd.CategoricalDtype(
    ["QUEUED", "NOT_STARTED", "MANAGED", "STARTING", "STARTED", "SUSPENDED", "SUCCESS", "FAILURE",
     "CANCELING", "CANCELED"]
)


def _seconds(values: Sequence[Any]) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype="float64"), unit="s", utc=True).dt.as_unit("ms")


def runs_frame(records: Sequence[dict]) -> pd.DataFrame:
    """Build the runs frame from raw ``runsOrError`` results (newest first).

    Columns: ``run_id`` (string), ``job_name`` (category), ``status`` (category of the ten
    run statuses, plus any unknown one), ``created``, ``started``, ``ended``
    (datetime64[ms, UTC]), ``duration`` (timedelta; NA unless started and ended), and one
    ``tags.<key>`` string column per tag key seen.
    """
    statuses = [r.get("status") for r in records]
    frame = pd.DataFrame(
        {
            "run_id": pd.array([r.get("id") or r.get("runId") for r in records], dtype=STRING),
            "job_name": _categorical([r.get("jobName") or r.get("pipelineName") for r in records]),
            "status": _categorical(statuses, list(RUN_STATUS_DTYPE.categories)),
            "created": _seconds([r.get("creationTime") for r in records]),
            "started": _seconds([r.get("startTime") for r in records]),
            "ended": _seconds([r.get("endTime") for r in records]),
        }
    )
    frame["duration"] = frame["ended"] - frame["started"]
    tag_rows = [{t["key"]: t["value"] for t in (r.get("tags") or [])} for r in records]
    keys = sorted({k for row in tag_rows for k in row})
    for key in keys:
        frame[f"tags.{key}"] = pd.array([row.get(key) for row in tag_rows], dtype=STRING)
    return frame


STEP_STATS_COLUMNS = ["run_id", "step_key", "status", "start", "end", "duration", "attempts",
                      "attempt_spans", "markers"]


def step_stats_frame(records: Sequence[tuple[str, dict]]) -> pd.DataFrame:
    """Build a frame from ``(run_id, stepStats record)`` pairs: Dagster's own step numbers.

    Columns: ``run_id``, ``step_key`` (category), ``status`` (category), ``start``,
    ``end`` (datetime64[ms, UTC]), ``duration`` (timedelta), ``attempts`` (int64),
    ``attempt_spans`` and ``markers`` (lists of ``(start, end)`` UTC Timestamp pairs, end
    None while running).
    """

    def spans(items: list | None) -> list[tuple]:
        return [(_ts(s.get("startTime")), _ts(s.get("endTime"))) for s in (items or [])]

    frame = pd.DataFrame(
        {
            "run_id": _categorical([run_id for run_id, _ in records]),
            "step_key": _categorical([r.get("stepKey") for _, r in records]),
            "status": _categorical([r.get("status") for _, r in records]),
            "start": _seconds([r.get("startTime") for _, r in records]),
            "end": _seconds([r.get("endTime") for _, r in records]),
            "attempts": pd.array([len(r.get("attempts") or []) for _, r in records], dtype="int64"),
            "attempt_spans": pd.Series([spans(r.get("attempts")) for _, r in records], dtype=object),
            "markers": pd.Series([spans(r.get("markers")) for _, r in records], dtype=object),
        }
    )
    frame.insert(5, "duration", frame["end"] - frame["start"])
    return frame


def _ts(value: Any):
    return None if value is None else pd.Timestamp(float(value), unit="s", tz="UTC")

from . import accessor as _accessor  # noqa: E402,F401  registers df.runlens
