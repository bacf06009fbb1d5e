"""Step timing and run summaries: pure functions over events DataFrames.

Everything here reads the events frame of :mod:`runlens.frames` (one or several runs)
and never touches the network or matplotlib.

How Dagster times a step (and so how :func:`step_durations` does)
-----------------------------------------------------------------
Dagster's own ``Run.stepStats`` is a replay of the step's events in storage order:

* ``startTime`` is the STEP_START, ``endTime`` the last STEP_SUCCESS / STEP_FAILURE /
  STEP_SKIPPED; status is set by the last of STEP_START (IN_PROGRESS), STEP_SUCCESS,
  STEP_FAILURE and STEP_SKIPPED.
* An attempt opens at STEP_START or STEP_RESTARTED and closes at the next
  STEP_UP_FOR_RETRY, STEP_SUCCESS, STEP_FAILURE or STEP_SKIPPED. ``attempts`` lists the
  *closed* attempts only: it is empty while the first attempt runs. A closing event with no
  open attempt counts as a zero-length attempt (this is how a STEP_SKIPPED step gets one).
* Steps abandoned because an upstream step failed have no event and no ``stepStats`` row:
  only an ERROR log line ``Dependencies for step X failed: [...]. Not executing.`` (or
  ``... were not executed: [...]`` one level further down).

:func:`step_durations` follows the same rules, so its ``start``, ``end``, ``status`` and
``attempts`` agree with ``stepStats`` (times to the millisecond), and adds the abandoned
steps as SKIPPED rows. Order is always *storage* order (the ``seq`` column), never
timestamp order: parallel steps interleave with inversions of tens of milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .event_types import twins
from .frames import STEP_COLUMNS, STEP_STATUS_DTYPE
from .vocabulary import STEP_STATUSES

__all__ = [
    "STEP_COLUMNS",
    "STEP_STATUS_DTYPE",
    "RunSummary",
    "StepFailure",
    "compare_step_durations",
    "duration_trend",
    "run_summary",
    "step_durations",
]

# The step-lifecycle event types: a few per step, the only rows the timing needs.
_LIFECYCLE = (
    "STEP_START", "STEP_RESTARTED", "STEP_UP_FOR_RETRY", "STEP_SUCCESS", "STEP_FAILURE",
    "STEP_SKIPPED", "STEP_WORKER_STARTING", "STEP_WORKER_STARTED", "RESOURCE_INIT_STARTED",
    "RESOURCE_INIT_SUCCESS", "RESOURCE_INIT_FAILURE", "LOADED_INPUT", "STEP_INPUT",
    "STEP_OUTPUT", "HANDLED_OUTPUT",
)
_T = {name: code for code, name in enumerate(_LIFECYCLE)}
_OPEN = np.array([_T["STEP_START"], _T["STEP_RESTARTED"]])
_CLOSE = np.array([_T["STEP_UP_FOR_RETRY"], _T["STEP_SUCCESS"], _T["STEP_FAILURE"], _T["STEP_SKIPPED"]])
# The types that make Dagster create a stepStats row for the step.
_STATS = np.concatenate([_OPEN, _CLOSE])
_STATUS_OF = {
    _T["STEP_START"]: "IN_PROGRESS",
    _T["STEP_SUCCESS"]: "SUCCESS",
    _T["STEP_FAILURE"]: "FAILURE",
    _T["STEP_SKIPPED"]: "SKIPPED",
}

# dagster/_core/execution/plan/active.py: "Dependencies for step {key}{ failed: [...]}
# { were not executed: [...]}. Not executing." Step keys hold no spaces.
_ABANDONED = re.compile(r"^Dependencies for step (\S+) (?:failed|were not executed): ")
_ABANDONED_PREFIX = "Dependencies for step "

NAT = np.iinfo(np.int64).min  # what datetime64/timedelta64 NaT is, as int64
_NEVER = np.iinfo(np.int64).max


# --------------------------------------------------------------------------- helpers


def _codes(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 for NA) and categories of a column, categorical or not."""
    if not isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("category")
    return series.cat.codes.to_numpy().astype(np.int64), series.cat.categories


def _millis(series: pd.Series) -> np.ndarray:
    """Epoch milliseconds as int64 (NaT → :data:`NAT`), without per-row objects."""
    if not isinstance(series.dtype, pd.DatetimeTZDtype) and series.dtype.kind != "M":
        series = pd.to_datetime(series, utc=True)
    if getattr(series.dtype, "unit", "ms") != "ms":
        series = series.dt.as_unit("ms")
    return np.asarray(series.array.asi8, dtype=np.int64)


def _ffill(values: np.ndarray, valid: np.ndarray, seg_start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Carry ``values[valid]`` forward, never across a row where ``seg_start`` is True."""
    n = len(values)
    if n == 0:
        return values.copy(), valid.copy()
    pos = np.arange(n)
    src = np.maximum.accumulate(np.where(valid | seg_start, pos, 0))
    has = valid[src]
    return np.where(has, values[src], NAT), has


def _edges(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First/last-row masks of the runs of equal values in a sorted group array."""
    if len(g) == 0:
        return np.zeros(0, bool), np.zeros(0, bool)
    change = g[1:] != g[:-1]
    return np.r_[True, change], np.r_[change, True]


def _first(g: np.ndarray, values: np.ndarray, mask: np.ndarray, n: int, *, last: bool = False,
           fill: Any = NAT) -> np.ndarray:
    """Per group (``g`` sorted), the value at the first (or last) row where ``mask`` holds."""
    out = np.full(n, fill, dtype=values.dtype)
    sel = np.flatnonzero(mask)
    if sel.size:
        first, final = _edges(g[sel])
        pick = sel[final if last else first]
        out[g[pick]] = values[pick]
    return out


def _sum(g: np.ndarray, delta: np.ndarray, valid: np.ndarray, n: int, *, empty: int = NAT) -> np.ndarray:
    """Per-group sum of ``delta[valid]`` in ms; ``empty`` where a group has no valid row."""
    total = np.bincount(g[valid], weights=delta[valid].astype(np.float64), minlength=n)
    count = np.bincount(g[valid], minlength=n)
    return np.where(count > 0, np.rint(total).astype(np.int64), empty)


def _spans(g: np.ndarray, t: np.ndarray, opens: np.ndarray, closes: np.ndarray, *,
           lone_close: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair openers with the next closer of the same group (rows sorted by group, storage order).

    A closer pairs with the latest opener since the group's previous closer. Returns
    ``(group, start, end, closed)`` per span, in order; a trailing opener with no closer
    gives an open span (``end`` NAT, ``closed`` False). ``lone_close``: a closer with no
    opener makes a zero-length span (Dagster's rule for attempts) instead of being dropped.
    """
    rows = np.flatnonzero(opens | closes)
    rg, rt, ro, rc = g[rows], t[rows], opens[rows], closes[rows]
    first, last = _edges(rg)
    seg_start = (first | np.r_[False, rc[:-1]]) if len(rg) else first
    open_t, has_open = _ffill(rt, ro & (rt != NAT), seg_start)
    if lone_close:
        start = np.where(has_open, open_t, rt)
        keep_closed = rc
    else:
        start = open_t
        keep_closed = rc & has_open
    trailing = last & ~rc & has_open
    take = keep_closed | trailing
    end = np.where(rc, rt, NAT)
    return rg[take], start[take], end[take], rc[take]


def _diff(end: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``end - start`` in ms and where both are known (no arithmetic on NAT)."""
    ok = (end != NAT) & (start != NAT)
    return np.where(ok, end, 0) - np.where(ok, start, 0), ok


def _timestamps(ms: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ms, dtype=np.int64).view("datetime64[ms]")).tz_localize("UTC")


def _span_lists(n: int, g: np.ndarray, start: np.ndarray, end: np.ndarray) -> list[list[tuple]]:
    """Per group, the list of ``(start, end)`` Timestamp pairs (end None while open)."""
    out: list[list[tuple]] = [[] for _ in range(n)]
    starts = _timestamps(start).tolist()
    ends = [None if e == NAT else ts for e, ts in zip(end.tolist(), _timestamps(end).tolist(), strict=True)]
    for group, s, e in zip(g.tolist(), starts, ends, strict=True):
        out[group].append((s, e))
    return out


# Dagster wraps every exception raised in op code in this class; the op's own exception is
# its cause. Dagster's messages also repeat the class: "ValueError: invoice 2 has no currency".
_WRAPPER = "DagsterExecutionStepExecutionError"


def _user_error(row: pd.Series) -> tuple[str | None, str | None]:
    """``(class, message)`` of an error event: the op's own exception, without class prefix."""
    cls = _str_or_none(row.get("error_class"))
    message = _str_or_none(row.get("error_message"))
    cause = _str_or_none(row.get("error_cause"))
    if cls == _WRAPPER and cause:
        inner, sep, text = cause.split(" <- ", 1)[0].partition(": ")
        if sep:
            cls, message = inner, text
    if message and cls:
        message = re.sub(rf"^(?:[\w.]+\.)?{re.escape(cls)}: ", "", message, count=1)
    return cls, message.strip() if message else message


def _empty_steps() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=d) for c, d in STEP_COLUMNS.items()})
    frame["status"] = frame["status"].astype(STEP_STATUS_DTYPE)
    return frame


def _check_events(events: pd.DataFrame, needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in events.columns]
    if missing:
        raise ValueError(
            f"not an events frame: missing column(s) {missing}; build one with "
            "runlens.frames.events_frame() or Client.events()"
        )


# --------------------------------------------------------------------------- step_durations


def step_durations(events: pd.DataFrame) -> pd.DataFrame:
    """One row per step of each run: status, timing, attempts, retries and overheads.

    Parameters
    ----------
    events : pandas.DataFrame
        An events frame (:func:`runlens.frames.events_frame`), of one run or several
        (``Client.events_many``). Row order does not matter: storage order is read from
        ``seq`` within each run.

    Returns
    -------
    pandas.DataFrame
        Columns (dtypes in :data:`STEP_COLUMNS`):

        ``run_id``, ``step_key``
            the step (``process[emea]`` for a dynamic one).
        ``status``
            SUCCESS, FAILURE, IN_PROGRESS or SKIPPED (categorical). SKIPPED covers
            STEP_SKIPPED events and the steps Dagster abandons after an upstream failure
            (no event, only a "Dependencies for step ... Not executing." ERROR log line):
            those have ``start``/``end`` NaT and 0 attempts.
        ``start``, ``end``
            first STEP_START; last STEP_SUCCESS/FAILURE/SKIPPED (NaT while running).
            Equal to Dagster's ``stepStats`` times.
        ``duration``
            ``end - start``, retry waits included; NaT while running.
        ``attempts``
            finished attempts, as ``stepStats.attempts`` counts them (0 while the first
            attempt runs; a STEP_SKIPPED step counts one, of zero length).
        ``attempt_time``
            time inside finished attempts.
        ``retry_wait``
            time between attempts (an attempt's end to the next one's start); 0 without
            retries.
        ``worker_startup``
            STEP_WORKER_STARTING → STEP_WORKER_STARTED, summed over attempts (each retry
            starts a new process); it lies *before* ``start``. NaT without such events
            (in-process executor).
        ``resource_init``
            RESOURCE_INIT_STARTED → RESOURCE_INIT_SUCCESS/FAILURE, summed; NaT if none.
        ``input_loading``
            for each LOADED_INPUT, the time since the step's previous lifecycle event
            (STEP_START/RESTARTED, or the previous input's LOADED_INPUT/STEP_INPUT), summed:
            the IO manager's ``load_input`` time, type checks excluded. NaT without
            LOADED_INPUT events.
        ``output_handling``
            likewise for each HANDLED_OUTPUT since its STEP_OUTPUT: the IO manager's
            ``handle_output`` time. NaT without HANDLED_OUTPUT events.
        ``error_class``, ``error_message``
            the last STEP_FAILURE's error, for failed steps: the op's own exception (Dagster
            wraps it in ``DagsterExecutionStepExecutionError``: the wrapper is unwrapped to
            its cause) and its message without the ``Class:`` prefix Dagster repeats.
        ``last_event``
            time of the step's last event of any kind, log lines included (for an
            abandoned step: when Dagster logged that it will not run).
        ``attempt_spans``
            list of ``(start, end)`` UTC Timestamp pairs, one per attempt; a running
            attempt is appended as ``(start, None)``.
        ``worker_spans``
            list of ``(start, end)`` pairs of the worker start-ups.

        Rows: runs in order of appearance; within a run by ``start``, skipped steps last.
        ``attrs["run_start"]``, ``attrs["run_end"]`` and ``attrs["run_last_event"]`` map
        each run id to its RUN_START time, its RUN_SUCCESS/FAILURE/CANCELED time (None
        when absent) and its last event's time.

    Examples
    --------
    >>> steps = step_durations(events)                                     # doctest: +SKIP
    >>> steps.loc[steps.status == "FAILURE", ["step_key", "error_class"]]  # doctest: +SKIP
    """
    _check_events(events, ("run_id", "timestamp", "event_type", "step_key"))
    n_rows = len(events)
    if n_rows == 0:
        return _empty_steps()

    et_codes, et_cats = _codes(events["event_type"])
    run_codes, run_cats = _codes(events["run_id"])
    step_codes, step_cats = _codes(events["step_key"])
    t_all = _millis(events["timestamp"])
    seq_all = events["seq"].to_numpy(np.int64) if "seq" in events.columns else np.arange(n_rows)
    n_runs_cats = len(run_cats)
    run_codes = np.where(run_codes < 0, n_runs_cats, run_codes)  # NA run id: its own group
    width = max(len(step_cats), 1)

    # Restrict to lifecycle events through a lookup on the category codes (no string work).
    lut = np.full(len(et_cats) + 1, -1, dtype=np.int64)  # last slot: code -1 (NA)
    for code, name in enumerate(et_cats):
        lut[code] = _T.get(str(name), -1)
    typ_all = lut[et_codes]
    sel = np.flatnonzero((typ_all >= 0) & (step_codes >= 0))
    key = run_codes[sel] * width + step_codes[sel]
    order = np.lexsort((seq_all[sel], key))
    sel, key = sel[order], key[order]
    typ, t = typ_all[sel], t_all[sel]

    first_row, _ = _edges(key)
    g = np.cumsum(first_row) - 1
    n = int(g[-1]) + 1 if len(g) else 0
    gkey = key[first_row]

    is_open = np.isin(typ, _OPEN)
    is_close = np.isin(typ, _CLOSE)

    # Start, end, status: as stepStats.
    start = _first(g, t, typ == _T["STEP_START"], n)
    end = _first(g, t, is_close & (typ != _T["STEP_UP_FOR_RETRY"]), n, last=True)
    status_rows = np.isin(typ, list(_STATUS_OF))
    last_status = _first(g, typ, status_rows, n, last=True, fill=_T["STEP_START"])
    status = np.array([_STATUS_OF[c] for c in last_status.tolist()], dtype=object)

    # Attempts.
    sg, s_start, s_end, s_closed = _spans(g, t, is_open, is_close, lone_close=True)
    attempts = np.bincount(sg[s_closed], minlength=n).astype(np.int64)
    span_time, ok = _diff(s_end, s_start)
    attempt_time = _sum(sg, span_time, ok & s_closed, n, empty=0)
    s_first, _ = _edges(sg)
    wait, ok = _diff(s_start, np.r_[NAT, s_end[:-1]] if len(sg) else s_end)
    retry_wait = _sum(sg, wait, ok & ~s_first, n, empty=0)

    # Markers: worker process start-up and resource initialisation.
    wg, w_start, w_end, w_closed = _spans(
        g, t, typ == _T["STEP_WORKER_STARTING"], typ == _T["STEP_WORKER_STARTED"], lone_close=False
    )
    wg, w_start, w_end = wg[w_closed], w_start[w_closed], w_end[w_closed]
    worker_startup = _sum(wg, *_diff(w_end, w_start), n)
    rg, r_start, r_end, r_closed = _spans(
        g, t, typ == _T["RESOURCE_INIT_STARTED"],
        np.isin(typ, [_T["RESOURCE_INIT_SUCCESS"], _T["RESOURCE_INIT_FAILURE"]]), lone_close=False,
    )
    r_time, ok = _diff(r_end, r_start)
    resource_init = _sum(rg, r_time, ok & r_closed, n)

    # IO: each LOADED_INPUT / HANDLED_OUTPUT measured from the step's previous lifecycle event.
    delta, has_prev = _diff(t, np.r_[NAT, t[:-1]] if len(t) else t)
    has_prev &= ~first_row
    delta = np.maximum(delta, 0)
    input_loading = _sum(g, delta, has_prev & (typ == _T["LOADED_INPUT"]), n)
    output_handling = _sum(g, delta, has_prev & (typ == _T["HANDLED_OUTPUT"]), n)

    # The failure's error: from the last STEP_FAILURE row.
    failure = _first(g, sel, typ == _T["STEP_FAILURE"], n, last=True, fill=-1)
    error_class = np.full(n, None, dtype=object)
    error_message = np.full(n, None, dtype=object)
    for i in np.flatnonzero((failure >= 0) & (status == "FAILURE")).tolist():
        error_class[i], error_message[i] = _user_error(events.iloc[int(failure[i])])

    # Which groups are steps (stepStats creates a row on these types only).
    is_step = np.bincount(g[np.isin(typ, _STATS)], minlength=n) > 0

    # Last event of each step, of any kind (log lines too).
    with_step = step_codes >= 0
    all_key = run_codes[with_step] * width + step_codes[with_step]
    if (n_runs_cats + 1) * width <= max(4 * n_rows, 1 << 20):  # dense keys: no sort needed
        last_by_key = np.full((n_runs_cats + 1) * width, NAT, dtype=np.int64)
        np.maximum.at(last_by_key, all_key, t_all[with_step])
        last_event = last_by_key[gkey]
    else:
        ukey, inverse = np.unique(all_key, return_inverse=True)
        last_by_key = np.full(len(ukey), NAT, dtype=np.int64)
        np.maximum.at(last_by_key, inverse, t_all[with_step])
        last_event = last_by_key[np.searchsorted(ukey, gkey)] if n else np.zeros(0, np.int64)

    # Abandoned steps: ERROR log lines (no event type) "Dependencies for step X ...".
    level_error = np.zeros(n_rows, bool)
    if "level" in events.columns and "message" in events.columns:
        lv_codes, lv_cats = _codes(events["level"])
        if "ERROR" in lv_cats:
            level_error = lv_codes == lv_cats.get_loc("ERROR")
    candidates = np.flatnonzero(level_error & (et_codes < 0))
    skipped: dict[tuple[int, str], int] = {}
    if candidates.size:
        messages = events["message"].iloc[candidates].astype(pd.StringDtype())
        hits = messages.str.startswith(_ABANDONED_PREFIX).fillna(False).to_numpy(dtype=bool)
        candidates = candidates[hits]
        for row, message in zip(candidates.tolist(), messages[hits].tolist(), strict=True):
            sc = step_codes[row]
            if sc >= 0:
                name = str(step_cats[sc])
            else:
                match = _ABANDONED.match(message)
                if not match:
                    continue
                name = match.group(1)
            k = (int(run_codes[row]), name)
            skipped[k] = max(skipped.get(k, NAT), int(t_all[row]))

    # ---- assemble: step groups first, then abandoned steps not otherwise known.
    step_groups = np.flatnonzero(is_step)
    run_of = (gkey // width).astype(np.int64)
    name_of = np.array([str(step_cats[c]) for c in (gkey % width).tolist()], dtype=object)
    known = set(zip(run_of[step_groups].tolist(), name_of[step_groups].tolist(), strict=True))
    extra = [(k, ts) for k, ts in skipped.items() if k not in known]

    spans = _span_lists(n, sg, s_start, s_end)
    workers = _span_lists(n, wg, w_start, w_end)

    m = len(extra)

    def col(values: np.ndarray, fill: Any) -> np.ndarray:
        tail = np.full(m, fill, dtype=values.dtype)
        return np.concatenate([values[step_groups], tail])

    runs_col = np.concatenate([run_of[step_groups], np.array([k[0] for k, _ in extra], dtype=np.int64)])
    names_col = np.concatenate([name_of[step_groups], np.array([k[1] for k, _ in extra], dtype=object)])
    status_col = np.concatenate([status[step_groups], np.full(m, "SKIPPED", dtype=object)])
    start_col = col(start, NAT)
    end_col = col(end, NAT)
    last_col = np.concatenate([last_event[step_groups], np.array([ts for _, ts in extra], dtype=np.int64)])
    spans_col = [spans[i] for i in step_groups.tolist()] + [[] for _ in range(m)]
    workers_col = [workers[i] for i in step_groups.tolist()] + [[] for _ in range(m)]

    # Order: runs by first appearance; in a run by start (fallback: end, last event),
    # skipped steps last; ties by step key.
    run_first = np.full(n_runs_cats + 1, n_rows, dtype=np.int64)
    np.minimum.at(run_first, run_codes, np.arange(n_rows))
    is_skipped = status_col == "SKIPPED"
    when = np.where(start_col != NAT, start_col, np.where(end_col != NAT, end_col, last_col))
    when = np.where(is_skipped, last_col, when)
    when = np.where(when == NAT, _NEVER, when)
    order = np.lexsort((names_col.astype(str), when, is_skipped, run_first[runs_col]))

    run_labels = list(run_cats) + [None]
    frame = pd.DataFrame(
        {
            "run_id": pd.Categorical([run_labels[r] for r in runs_col[order].tolist()], categories=run_cats),
            "step_key": pd.Categorical(names_col[order]),
            "status": pd.Categorical(status_col[order], dtype=STEP_STATUS_DTYPE),
            "start": _timestamps(start_col[order]),
            "end": _timestamps(end_col[order]),
        }
    )
    frame["duration"] = frame["end"] - frame["start"]
    for name, values, fill in (
        ("attempts", attempts, 0),
        ("attempt_time", attempt_time, NAT),
        ("retry_wait", retry_wait, NAT),
        ("worker_startup", worker_startup, NAT),
        ("resource_init", resource_init, NAT),
        ("input_loading", input_loading, NAT),
        ("output_handling", output_handling, NAT),
    ):
        data = col(values, fill)[order]
        frame[name] = data if name == "attempts" else data.view("timedelta64[ms]")
    frame["error_class"] = pd.Categorical(col(error_class, None)[order])
    frame["error_message"] = pd.array(col(error_message, None)[order], dtype=pd.StringDtype())
    frame["last_event"] = _timestamps(last_col[order])
    frame["attempt_spans"] = pd.Series([spans_col[i] for i in order.tolist()], dtype=object)
    frame["worker_spans"] = pd.Series([workers_col[i] for i in order.tolist()], dtype=object)

    frame.attrs.update(_run_times(events, run_codes, run_labels, t_all, et_codes, et_cats))
    return frame


def _run_times(events, run_codes, run_labels, t_all, et_codes, et_cats) -> dict:
    """Per run id: ``run_start`` (RUN_START), ``run_end`` (RUN_SUCCESS/FAILURE/CANCELED) —
    None when absent — and ``run_last_event``."""
    n = len(run_labels)

    def when(names: Sequence[str], *, latest: bool) -> np.ndarray:
        codes = [i for i, c in enumerate(et_cats) if any(str(c) in twins(name) for name in names)]
        rows = np.flatnonzero(np.isin(et_codes, codes) & (t_all != NAT))
        if latest:
            out = np.full(n, NAT, dtype=np.int64)
            np.maximum.at(out, run_codes[rows], t_all[rows])
            return out
        out = np.full(n, _NEVER, dtype=np.int64)
        np.minimum.at(out, run_codes[rows], t_all[rows])
        return np.where(out == _NEVER, NAT, out)

    start = when(["RUN_START"], latest=False)
    end = when(["RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED"], latest=True)
    last = np.full(n, NAT, dtype=np.int64)
    np.maximum.at(last, run_codes, t_all)
    present = np.flatnonzero(np.bincount(run_codes, minlength=n) > 0).tolist()

    def stamp(ms: int) -> pd.Timestamp | None:
        return None if ms == NAT else pd.Timestamp(int(ms), unit="ms", tz="UTC")

    return {
        "run_start": {run_labels[c]: stamp(start[c]) for c in present},
        "run_end": {run_labels[c]: stamp(end[c]) for c in present},
        "run_last_event": {run_labels[c]: stamp(last[c]) for c in present},
    }


# --------------------------------------------------------------------------- run summary


class StepFailure(NamedTuple):
    """The first step failure of a run (``step_key`` None for a run-level failure)."""

    step_key: str | None
    error_class: str | None
    message: str | None


@dataclass(repr=False)
class RunSummary:
    """What happened in one run, in a dozen numbers. Built by :func:`run_summary`."""

    run_id: str | None
    status: str
    wall_time: pd.Timedelta | None
    queued: pd.Timedelta | None
    steps_by_status: dict[str, int]
    slowest_steps: list[tuple[str, pd.Timedelta]]
    total_retry_wait: pd.Timedelta
    materializations: list[str]
    first_failure: StepFailure | None
    n_events: int
    job_name: str | None = None
    started: pd.Timestamp | None = None
    ended: pd.Timestamp | None = None
    steps: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False)

    def _rows(self) -> list[tuple[str, str]]:
        steps = ", ".join(f"{n} {s.lower().replace('_', ' ')}" for s, n in self.steps_by_status.items() if n)
        rows = [("Run", self.run_id or "?")]
        if self.job_name:
            rows.append(("Job", self.job_name))
        rows += [
            ("Status", self.status),
            ("Started", _iso(self.started)),
            ("Wall time", _fmt(self.wall_time)),
            ("Queued", _fmt(self.queued)),
            ("Steps", steps or "none"),
            ("Slowest", ", ".join(f"{k} {_fmt(d)}" for k, d in self.slowest_steps[:3]) or "—"),
            ("Retry wait", _fmt(self.total_retry_wait)),
            ("Assets", _short_list(self.materializations)),
        ]
        if self.first_failure:
            f = self.first_failure
            what = f"{f.error_class}: " if f.error_class else ""
            message = (f.message or "").strip().splitlines()
            where = f"{f.step_key}: " if f.step_key else ""
            rows.append(("Failure", f"{where}{what}{message[0] if message else ''}"))
        rows.append(("Events", f"{self.n_events:,}"))
        return rows

    def __str__(self) -> str:
        rows = self._rows()
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{escape(v)}</td></tr>"
            for k, v in self._rows()
        )
        return f"<table>{body}</table>"


def _fmt(value: pd.Timedelta | None) -> str:
    if value is None or pd.isna(value):
        return "—"
    seconds = pd.Timedelta(value).total_seconds()
    if abs(seconds) < 60:
        return f"{seconds:.3f} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {sec:04.1f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes):02d} min {sec:02.0f} s"


def _iso(value: pd.Timestamp | None) -> str:
    if value is None or pd.isna(value):
        return "—"
    return pd.Timestamp(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _short_list(items: list[str], limit: int = 4) -> str:
    if not items:
        return "none"
    unique = list(dict.fromkeys(items))
    text = ", ".join(unique[:limit])
    return text + (f", … ({len(unique)} in all)" if len(unique) > limit else "")


_TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")
# The status implied by the latest run-level event seen, when the run reached no end.
_PROGRESS = (("CANCELING", "CANCELING"), ("START", "STARTED"), ("STARTING", "STARTING"),
             ("DEQUEUED", "STARTING"), ("ENQUEUED", "QUEUED"))


def run_summary(events: pd.DataFrame, run: Any = None, *, steps: pd.DataFrame | None = None) -> RunSummary:
    """Summarise one run: status, wall time, queueing, steps, retries, assets, first failure.

    Parameters
    ----------
    events : pandas.DataFrame
        The run's events frame. A frame of several runs needs ``run`` to pick one.
    run : runlens.models.Run, optional
        The run's metadata: its status wins over the one inferred from events, and its
        times fill in when the events lack RUN_START / the terminal event.
    steps : pandas.DataFrame, optional
        ``step_durations(events)`` if already computed.

    Returns
    -------
    RunSummary
        ``status`` is the run model's, else SUCCESS/FAILURE/CANCELED from the terminal
        event, else what the latest run-level event implies (STARTED, STARTING, QUEUED,
        CANCELING), else ``"UNKNOWN"``. ``wall_time`` is RUN_START → the terminal event;
        ``queued`` RUN_ENQUEUED (or RUN_STARTING when the run was not queued) → RUN_START.
    """
    _check_events(events, ("run_id", "timestamp", "event_type", "step_key"))
    run_ids = [r for r in pd.unique(events["run_id"].dropna())]
    if run is not None:
        events = events[events["run_id"] == run.id] if len(run_ids) > 1 else events
        run_id = run.id
    elif len(run_ids) > 1:
        raise ValueError(f"run_summary takes one run; this frame holds {len(run_ids)}: pass run=")
    else:
        run_id = str(run_ids[0]) if run_ids else None

    if steps is None:
        steps = step_durations(events)
    et = events["event_type"]
    times = events["timestamp"]

    def first(*names: str) -> pd.Timestamp | None:
        hits = times[et.isin([t for n in names for t in twins(n)])]
        return hits.min() if len(hits) else None

    def latest(names: Sequence[str]) -> tuple[str, pd.Timestamp] | None:
        """The last (in storage order) of the RUN_<name> events, as (name, time)."""
        wanted = {t: n for n in names for t in twins("RUN_" + n)}
        rows = events[et.isin(list(wanted))]
        if rows.empty:
            return None
        row = rows.sort_values("seq", kind="stable").iloc[-1] if "seq" in rows.columns else rows.iloc[-1]
        return wanted[str(row["event_type"])], row["timestamp"]

    ended = latest(_TERMINAL)
    started = first("RUN_START")
    if run is not None:
        status = str(run.status)
    elif ended:
        status = ended[0]
    else:
        progress = latest([name for name, _ in _PROGRESS])
        status = dict(_PROGRESS)[progress[0]] if progress else ("STARTED" if len(events) else "UNKNOWN")
    end_time = ended[1] if ended else None
    if run is not None:
        started = started if started is not None else _ts(run.started_at)
        end_time = end_time if end_time is not None else _ts(run.ended_at)
    wall = end_time - started if started is not None and end_time is not None else None
    enqueued = first("RUN_ENQUEUED")
    enqueued = enqueued if enqueued is not None else first("RUN_STARTING")
    queued = started - enqueued if started is not None and enqueued is not None else None

    counts = steps["status"].value_counts()
    by_status = {s: int(counts.get(s, 0)) for s in STEP_STATUSES}
    timed = steps.dropna(subset=["duration"]).sort_values("duration", ascending=False, kind="stable")
    slowest = [(str(k), d) for k, d in zip(timed["step_key"].head(5), timed["duration"].head(5), strict=True)]
    retry = steps["retry_wait"].sum() if len(steps) else pd.Timedelta(0)

    assets: list[str] = []
    if "asset_key" in events.columns:
        mats = events.loc[et == "ASSET_MATERIALIZATION", "asset_key"]
        assets = [str(a) for a in mats.dropna()]

    failure = None
    step_failures = events[et == "STEP_FAILURE"]
    run_failures = (
        events[et.isin(twins("RUN_FAILURE")) & events["error_class"].notna()]
        if "error_class" in events.columns else events.iloc[0:0]
    )
    for rows, with_step in ((step_failures, True), (run_failures, False)):
        if rows.empty:
            continue
        row = rows.sort_values("seq", kind="stable").iloc[0] if "seq" in rows.columns else rows.iloc[0]
        failure = StepFailure(_str_or_none(row["step_key"]) if with_step else None, *_user_error(row))
        break

    return RunSummary(
        run_id=run_id,
        status=status,
        wall_time=wall,
        queued=queued,
        steps_by_status=by_status,
        slowest_steps=slowest,
        total_retry_wait=pd.Timedelta(retry) if not pd.isna(retry) else pd.Timedelta(0),
        materializations=assets,
        first_failure=failure,
        n_events=len(events),
        job_name=getattr(run, "job_name", None) if run is not None else None,
        started=started,
        ended=end_time,
        steps=steps,
    )


def _ts(value: Any) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).tz_convert("UTC").as_unit("ms")


def _str_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


# --------------------------------------------------------------------------- trends


def duration_trend(steps: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The data behind "is this step getting slower": one row per (run, step).

    Parameters
    ----------
    steps : pandas.DataFrame
        :func:`step_durations` of several runs (an events frame is accepted too).
    runs : pandas.DataFrame, optional
        A runs frame (:func:`runlens.frames.runs_frame`): adds ``job_name``,
        ``run_status`` and ``created`` (the run's creation time).

    Returns
    -------
    pandas.DataFrame
        ``run_id`` (string), ``step_key`` (string), ``status``, ``start`` (the step's),
        ``run_start`` (the run's first step start), ``duration`` (float seconds; NaN for
        skipped and running steps), and with ``runs``: ``job_name``, ``run_status``,
        ``created``. Sorted by step, then by ``created`` (or ``run_start``).
    """
    if "attempt_spans" not in steps.columns and "event_type" in steps.columns:
        steps = step_durations(steps)
    out = pd.DataFrame(
        {
            "run_id": steps["run_id"].astype(str).astype(pd.StringDtype()),
            "step_key": steps["step_key"].astype(str).astype(pd.StringDtype()),
            "status": steps["status"],
            "start": steps["start"],
            "duration": steps["duration"].dt.total_seconds().astype("float64"),
        }
    )
    out.insert(4, "run_start", out.groupby("run_id", sort=False)["start"].transform("min"))
    by = ["step_key", "run_start", "run_id"]
    if runs is not None:
        extra = pd.DataFrame(
            {
                "run_id": runs["run_id"].astype(str).astype(pd.StringDtype()),
                "job_name": runs["job_name"] if "job_name" in runs else None,
                "run_status": runs["status"] if "status" in runs else None,
                "created": runs["created"] if "created" in runs else pd.NaT,
            }
        ).drop_duplicates("run_id")
        out = out.merge(extra, on="run_id", how="left")
        by = ["step_key", "created", "run_start", "run_id"]
    return out.sort_values(by, kind="stable", na_position="last").reset_index(drop=True)


def compare_step_durations(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Step durations of two runs side by side.

    Parameters
    ----------
    a, b : pandas.DataFrame
        Each an events frame of one run or its :func:`runlens.step_durations` frame.

    Returns
    -------
    pandas.DataFrame
        One row per step key of either run, in ``a``'s step order then ``b``'s extra
        steps: ``step_key``, ``status_a``, ``status_b``, ``duration_a``, ``duration_b``
        (float seconds; NaN when the step did not run or has not finished in that run)
        and ``delta`` (``duration_b - duration_a``, positive when ``b`` was slower).
        ``attrs`` holds ``run_a`` and ``run_b``.

    Examples
    --------
    >>> runlens.compare_step_durations(client.events(old), client.events(new))   # doctest: +SKIP
    """

    def steps_of(frame: pd.DataFrame) -> pd.DataFrame:
        steps = frame if "attempt_spans" in frame.columns else step_durations(frame)
        if steps["run_id"].nunique() > 1:
            raise ValueError("compare_step_durations takes one run on each side")
        return steps

    sa, sb = steps_of(a), steps_of(b)

    def side(steps: pd.DataFrame, suffix: str) -> pd.DataFrame:
        return pd.DataFrame({
            "step_key": steps["step_key"].astype(str).to_numpy(),
            f"status_{suffix}": steps["status"].astype(str).to_numpy(),
            f"duration_{suffix}": steps["duration"].dt.total_seconds().astype("float64").to_numpy(),
        }).drop_duplicates("step_key")

    left, right = side(sa, "a"), side(sb, "b")
    keys = list(dict.fromkeys([*left["step_key"], *right["step_key"]]))
    out = left.merge(right, on="step_key", how="outer").set_index("step_key").loc[keys].reset_index()
    out = out[["step_key", "status_a", "status_b", "duration_a", "duration_b"]]
    out["delta"] = out["duration_b"] - out["duration_a"]

    def run_of(steps: pd.DataFrame) -> str | None:
        ids = steps["run_id"].dropna()
        return str(ids.iloc[0]) if len(ids) else None

    out.attrs.update(run_a=run_of(sa), run_b=run_of(sb))
    return out
