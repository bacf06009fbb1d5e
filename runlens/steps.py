"""Step timing: one row per step of each run, replayed the way Dagster computes stepStats.

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
steps as SKIPPED rows. Two deliberate differences: a step interrupted by the run's
cancellation is CANCELED (Dagster says FAILURE, with a ``DagsterExecutionInterruptedError``),
and so is a step still open when the run was canceled (Dagster says IN_PROGRESS forever).
Order is always *storage* order (the ``seq`` column), never timestamp order: parallel
steps interleave with inversions of tens of milliseconds.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import _step_arrays as arr
from ._step_arrays import NAT, NEVER
from .errors import RunlensWarning
from .event_types import twins
from .frames import STEP_COLUMNS, STEP_STATUS_DTYPE, require_kind
from .text import without_class_prefix

__all__ = [
    "STEPS_VERSION",
    "STEP_COLUMNS",
    "STEP_STATUS_DTYPE",
    "step_durations",
]

#: The version of the step computation: raise it whenever :func:`step_durations` gives other
#: rows for the same events, so History stores know their stored steps are stale.
STEPS_VERSION = 1

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

# Dagster wraps every exception raised in op code in this class; the op's own exception is
# its cause. Dagster's messages also repeat the class: "ValueError: invoice 2 has no currency".
WRAPPER_ERROR = "DagsterExecutionStepExecutionError"
# What a step fails with when its run is canceled under it (execute_plan.py catches both
# and emits STEP_FAILURE with ErrorSource.INTERRUPT).
_INTERRUPTS = frozenset({"DagsterExecutionInterruptedError", "KeyboardInterrupt"})
# Warnings point at the user's line: the first frame outside this package.
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _outside_runlens() -> int:
    """The ``stacklevel`` of the first caller outside runlens, for the caller of this."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def warn_if_partial(events: pd.DataFrame, func: str) -> None:
    """Warn when ``attrs`` say the frame is not the whole run (a limit or a filter)."""
    why = []
    if events.attrs.get("complete") is False:
        why.append("incomplete (a limit stopped the fetch before the run's last event)")
    if events.attrs.get("filtered") is True:
        why.append("filtered (it holds only some event types or steps)")
    if why:
        warnings.warn(
            f"{func}(): this events frame is {' and '.join(why)}, so statuses, attempts and times may be "
            "wrong (a finished run can look in progress, a retried step like one attempt). Fetch the whole "
            "run with client.events(run_id): no limit, no types/steps filters.",
            RunlensWarning,
            stacklevel=_outside_runlens(),
        )


def str_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def user_error(row: pd.Series) -> tuple[str | None, str | None]:
    """``(class, message)`` of an error event: the op's own exception, without class prefix."""
    cls = str_or_none(row.get("error_class"))
    message = str_or_none(row.get("error_message"))
    cause = str_or_none(row.get("error_cause"))
    if cls == WRAPPER_ERROR and cause:
        inner, sep, text = cause.split(" <- ", 1)[0].partition(": ")
        if sep:
            cls, message = inner, text
    if message and cls:
        message = without_class_prefix(message, cls)
    return cls, message.strip() if message else message


def _is_interrupt(row: pd.Series) -> bool:
    """Whether an error event is Dagster interrupting the step (cancellation, Ctrl-C)."""
    if str_or_none(row.get("error_class")) in _INTERRUPTS:
        return True
    cause = str_or_none(row.get("error_cause")) or ""
    return any(link.partition(":")[0].rsplit(".", 1)[-1] in _INTERRUPTS for link in cause.split(" <- ") if link)


# --------------------------------------------------------------------------- step_durations


def step_durations(events: pd.DataFrame) -> pd.DataFrame:
    """One row per step of each run: status, timing, attempts, retries and overheads.

    Parameters
    ----------
    events : pandas.DataFrame
        An events frame (:func:`runlens.frames.events_frame`), of one run or several
        (``Client.events_many``, :func:`runlens.frames.concat_events` or a plain
        ``pd.concat``). Row order does not matter: storage order is read from ``seq``
        within each run.

    Returns
    -------
    pandas.DataFrame
        Columns (dtypes in :data:`STEP_COLUMNS`):

        ``run_id``, ``step_key``
            the step (``process[emea]`` for a dynamic one).
        ``status``
            SUCCESS, FAILURE, IN_PROGRESS, SKIPPED or CANCELED (categorical). SKIPPED
            covers STEP_SKIPPED events and the steps Dagster abandons after an upstream
            failure (no event, only a "Dependencies for step ... Not executing." ERROR log
            line): those have ``start``/``end`` NaT and 0 attempts. CANCELED is a step
            interrupted by its run's cancellation (Dagster records a STEP_FAILURE with
            ``DagsterExecutionInterruptedError``: ``end`` is its time) or still open when the
            run was canceled (``end`` NaT); it has no error.
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
            time between attempts (an attempt's end to the next one's start) *minus* the
            new worker process's start-up inside it: the retry policy's delay, queueing and
            the new process's set-up after it started. 0 without retries. For a finished
            step, ``attempt_time + retry_wait + (worker start-up of the retries, i.e.
            worker_spans[1:])`` equals ``duration``.
        ``worker_startup``
            STEP_WORKER_STARTING → STEP_WORKER_STARTED, summed over attempts (each retry
            starts a new process). The first attempt's lies *before* ``start``; a retry's
            lies between attempts, outside ``retry_wait``. NaT without such events
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

    Raises
    ------
    InvalidArgument
        `events` is not an events frame.

    Warns
    -----
    RunlensWarning
        ``events.attrs`` say the frame is incomplete (a ``limit``) or filtered.

    Notes
    -----
    Vectorized in passes (:func:`_lifecycle_rows` → :func:`_replay` → :func:`_overheads`
    → :func:`_failures` → :func:`_abandoned_steps` → :func:`_assemble`). The plain-loop
    oracle it is tested against, event by event as Dagster's own replay, is
    ``reference_step_stats`` / ``reference_overheads`` in ``tests/unit/test_steps.py``.

    Examples
    --------
    >>> steps = step_durations(events)                                     # doctest: +SKIP
    >>> steps.loc[steps.status == "FAILURE", ["step_key", "error_class"]]  # doctest: +SKIP
    """
    require_kind(events, "events", func="step_durations")
    warn_if_partial(events, "step_durations")
    return step_durations_unchecked(events)


def step_durations_unchecked(events: pd.DataFrame) -> pd.DataFrame:
    """:func:`step_durations` without the checks (callers have made them)."""
    if len(events) == 0:
        return _empty_steps()
    ev = _Columns.of(events)
    life = _lifecycle_rows(ev)
    replay = _replay(life)
    overheads = _overheads(life, replay)
    errors = _failures(events, ev, life, replay)
    frame = _assemble(ev, life, replay, overheads, errors, _abandoned_steps(events, ev))
    frame.attrs.update(_run_times(ev))
    return frame


def _empty_steps() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in STEP_COLUMNS.items()})


@dataclass
class _Columns:
    """The events columns the passes read, as integer arrays (one row per event)."""

    n_rows: int
    et: np.ndarray  # event type codes (-1: a log line)
    et_cats: pd.Index
    run: np.ndarray  # run id codes; an NA run id is its own group, code len(run_cats)
    run_cats: pd.Index
    step: np.ndarray  # step key codes (-1: run-level)
    step_cats: pd.Index
    t: np.ndarray  # epoch ms
    seq: np.ndarray

    @classmethod
    def of(cls, events: pd.DataFrame) -> _Columns:
        et, et_cats = arr.codes(events["event_type"])
        run, run_cats = arr.codes(events["run_id"])
        step, step_cats = arr.codes(events["step_key"])
        return cls(
            n_rows=len(events), et=et, et_cats=et_cats, run=np.where(run < 0, len(run_cats), run),
            run_cats=run_cats, step=step, step_cats=step_cats, t=arr.millis(events["timestamp"]),
            seq=events["seq"].to_numpy(np.int64),
        )

    @property
    def width(self) -> int:
        """Multiplier of a (run, step) key: ``run * width + step``."""
        return max(len(self.step_cats), 1)

    def types_in(self, names: list[str]) -> np.ndarray:
        """Rows whose event type is one of `names` (or their RUN_/PIPELINE_ twins)."""
        wanted = {t for name in names for t in twins(name)}
        return np.isin(self.et, [i for i, c in enumerate(self.et_cats) if str(c) in wanted])

    def runs_with(self, names: list[str]) -> np.ndarray:
        """Per run code, whether the run has an event of one of `names`."""
        return np.bincount(self.run[self.types_in(names)], minlength=len(self.run_cats) + 1) > 0


@dataclass
class _Lifecycle:
    """The step-lifecycle rows, sorted by (run, step) group then storage order."""

    rows: np.ndarray  # positions in the events frame
    typ: np.ndarray  # index into _LIFECYCLE
    t: np.ndarray
    g: np.ndarray  # group number, 0..n-1
    n: int
    gkey: np.ndarray  # per group: run * width + step
    first_row: np.ndarray
    is_open: np.ndarray
    is_close: np.ndarray


def _lifecycle_rows(ev: _Columns) -> _Lifecycle:
    """Pass 1: keep the lifecycle events of steps (a lookup on category codes, no string
    work) and sort them by step, storage order within."""
    lut = np.full(len(ev.et_cats) + 1, -1, dtype=np.int64)  # last slot: code -1 (NA)
    for code, name in enumerate(ev.et_cats):
        lut[code] = _T.get(str(name), -1)
    typ_all = lut[ev.et]
    rows = np.flatnonzero((typ_all >= 0) & (ev.step >= 0))
    key = ev.run[rows] * ev.width + ev.step[rows]
    order = np.lexsort((ev.seq[rows], key))
    rows, key = rows[order], key[order]
    typ = typ_all[rows]
    first_row, _ = arr.edges(key)
    g = np.cumsum(first_row) - 1
    return _Lifecycle(
        rows=rows, typ=typ, t=ev.t[rows], g=g, n=int(g[-1]) + 1 if len(g) else 0, gkey=key[first_row],
        first_row=first_row, is_open=np.isin(typ, _OPEN), is_close=np.isin(typ, _CLOSE),
    )


@dataclass
class _Replay:
    """Per group: what Dagster's stepStats replay says."""

    is_step: np.ndarray  # stepStats has a row for it
    start: np.ndarray
    end: np.ndarray
    status: np.ndarray  # object: a STEP_STATUSES name
    attempts: np.ndarray
    attempt_time: np.ndarray
    spans: arr.Spans  # one per attempt, the running one included


def _replay(life: _Lifecycle) -> _Replay:
    """Pass 2: start, end, status and attempts, by Dagster's rules (see the module doc)."""
    g, t, typ, n = life.g, life.t, life.typ, life.n
    last_status = arr.first(g, typ, np.isin(typ, list(_STATUS_OF)), n, last=True, fill=_T["STEP_START"])
    spans = arr.spans(g, t, life.is_open, life.is_close, lone_close=True)
    span_time, ok = arr.diff(spans.end, spans.start)
    return _Replay(
        is_step=np.bincount(g[np.isin(typ, _STATS)], minlength=n) > 0,
        start=arr.first(g, t, typ == _T["STEP_START"], n),
        end=arr.first(g, t, life.is_close & (typ != _T["STEP_UP_FOR_RETRY"]), n, last=True),
        status=np.array([_STATUS_OF[c] for c in last_status.tolist()], dtype=object),
        attempts=np.bincount(spans.group[spans.closed], minlength=n).astype(np.int64),
        attempt_time=arr.total(spans.group, span_time, ok & spans.closed, n, empty=0),
        spans=spans,
    )


@dataclass
class _Overheads:
    """Per group: where the time outside the op's own code went."""

    retry_wait: np.ndarray
    worker_startup: np.ndarray
    resource_init: np.ndarray
    input_loading: np.ndarray
    output_handling: np.ndarray
    workers: arr.Spans  # closed worker start-ups only


def _overheads(life: _Lifecycle, replay: _Replay) -> _Overheads:
    """Pass 3: worker start-up, resource init, IO, and the waits between attempts."""
    g, t, typ, n = life.g, life.t, life.typ, life.n
    workers = arr.spans(g, t, typ == _T["STEP_WORKER_STARTING"], typ == _T["STEP_WORKER_STARTED"],
                        lone_close=False)
    workers = arr.Spans(*(part[workers.closed] for part in workers))
    resources = arr.spans(g, t, typ == _T["RESOURCE_INIT_STARTED"],
                          np.isin(typ, [_T["RESOURCE_INIT_SUCCESS"], _T["RESOURCE_INIT_FAILURE"]]), lone_close=False)
    r_time, ok = arr.diff(resources.end, resources.start)
    # IO: each LOADED_INPUT / HANDLED_OUTPUT measured from the step's previous lifecycle event.
    delta, has_prev = arr.diff(t, arr.previous(t))
    has_prev &= ~life.first_row
    delta = np.maximum(delta, 0)
    return _Overheads(
        retry_wait=_retry_wait(life, replay.spans, workers),
        worker_startup=arr.total(workers.group, *arr.diff(workers.end, workers.start), n),
        resource_init=arr.total(resources.group, r_time, ok & resources.closed, n),
        input_loading=arr.total(g, delta, has_prev & (typ == _T["LOADED_INPUT"]), n),
        output_handling=arr.total(g, delta, has_prev & (typ == _T["HANDLED_OUTPUT"]), n),
        workers=workers,
    )


def _retry_wait(life: _Lifecycle, attempts: arr.Spans, workers: arr.Spans) -> np.ndarray:
    """Per group, the time between attempts not spent starting the retry's worker process.

    The gap before attempt k (k ≥ 1) runs from attempt k-1's end to attempt k's start. A
    worker start-up whose STEP_WORKER_STARTED comes after k attempt closers (in storage
    order) belongs to that gap; the part of it inside the gap is taken out, so that
    ``attempt_time + retry_wait + worker start-up of the retries == duration``.
    """
    n = life.n
    gap, ok = arr.diff(attempts.start, arr.previous(attempts.end))
    head, _ = arr.edges(attempts.group)
    ok &= ~head
    base = np.zeros(n, dtype=np.int64)
    base[attempts.group[head]] = np.flatnonzero(head)
    n_spans = np.bincount(attempts.group, minlength=n)
    k = arr.closes_before(life.g, life.is_close)[workers.row]
    in_gap = (k >= 1) & (k < n_spans[workers.group])
    where = base[workers.group[in_gap]] + k[in_gap]  # the attempt the gap leads to
    gap_start, gap_end = attempts.end[where - 1], attempts.start[where]
    inside = np.minimum(workers.end[in_gap], gap_end) - np.maximum(workers.start[in_gap], gap_start)
    valid = (gap_start != NAT) & (gap_end != NAT)
    startup = np.bincount(where[valid], weights=np.maximum(inside[valid], 0), minlength=len(gap))
    wait = np.where(ok, gap - np.rint(startup).astype(np.int64), 0)
    return arr.total(attempts.group, wait, ok, n, empty=0)


@dataclass
class _Errors:
    """Per group: the step's error, and its status once cancellations are known."""

    status: np.ndarray
    error_class: np.ndarray
    error_message: np.ndarray


def _failures(events: pd.DataFrame, ev: _Columns, life: _Lifecycle, replay: _Replay) -> _Errors:
    """Pass 4: the failed steps' errors (from their last STEP_FAILURE), and which steps
    the run's cancellation stopped: those are CANCELED, with no error."""
    n = life.n
    failure = arr.first(life.g, life.rows, life.typ == _T["STEP_FAILURE"], n, last=True, fill=-1)
    run_of = life.gkey // ev.width
    canceling = ev.runs_with(["RUN_CANCELING", "RUN_CANCELED"])[run_of]
    status = replay.status.copy()
    status[(status == "IN_PROGRESS") & ev.runs_with(["RUN_CANCELED"])[run_of]] = "CANCELED"
    error_class = np.full(n, None, dtype=object)
    error_message = np.full(n, None, dtype=object)
    for i in np.flatnonzero((failure >= 0) & (status == "FAILURE")).tolist():
        row = events.iloc[int(failure[i])]
        if canceling[i] and _is_interrupt(row):
            status[i] = "CANCELED"
        else:
            error_class[i], error_message[i] = user_error(row)
    return _Errors(status, error_class, error_message)


def _abandoned_steps(events: pd.DataFrame, ev: _Columns) -> dict[tuple[int, str], int]:
    """Pass 5: steps Dagster did not run because an upstream failed, from the ERROR log
    lines "Dependencies for step X ...": ``{(run code, step key): time of the line}``."""
    levels, level_cats = arr.codes(events["level"])
    if "ERROR" not in level_cats:
        return {}
    candidates = np.flatnonzero((levels == level_cats.get_loc("ERROR")) & (ev.et < 0))
    if not candidates.size:
        return {}
    messages = events["message"].iloc[candidates].astype(pd.StringDtype())
    hits = messages.str.startswith(_ABANDONED_PREFIX).fillna(False).to_numpy(dtype=bool)
    skipped: dict[tuple[int, str], int] = {}
    for row, message in zip(candidates[hits].tolist(), messages[hits].tolist(), strict=True):
        if ev.step[row] >= 0:
            name = str(ev.step_cats[ev.step[row]])
        elif match := _ABANDONED.match(message):
            name = match.group(1)
        else:
            continue
        k = (int(ev.run[row]), name)
        skipped[k] = max(skipped.get(k, NAT), int(ev.t[row]))
    return skipped


def _assemble(ev: _Columns, life: _Lifecycle, replay: _Replay, overheads: _Overheads, errors: _Errors,
              abandoned: dict[tuple[int, str], int]) -> pd.DataFrame:
    """Pass 6: one row per step group, then the abandoned steps not otherwise known; in
    order (runs by first appearance; in a run by start, skipped steps last)."""
    steps = np.flatnonzero(replay.is_step)
    run_of = life.gkey // ev.width
    name_of = np.array([str(ev.step_cats[c]) for c in (life.gkey % ev.width).tolist()], dtype=object)
    known = set(zip(run_of[steps].tolist(), name_of[steps].tolist(), strict=True))
    extra = [(k, ts) for k, ts in abandoned.items() if k not in known]
    m = len(extra)

    def col(values: np.ndarray, fill: Any) -> np.ndarray:
        return np.concatenate([values[steps], np.full(m, fill, dtype=values.dtype)])

    with_step = ev.step >= 0
    last_event = arr.latest_by_key(ev.run[with_step] * ev.width + ev.step[with_step], ev.t[with_step],
                                   life.gkey, (len(ev.run_cats) + 1) * ev.width)
    runs = np.concatenate([run_of[steps], np.array([k[0] for k, _ in extra], dtype=np.int64)])
    names = np.concatenate([name_of[steps], np.array([k[1] for k, _ in extra], dtype=object)])
    status = col(errors.status, "SKIPPED")
    start, end = col(replay.start, NAT), col(replay.end, NAT)
    last = np.concatenate([last_event[steps], np.array([ts for _, ts in extra], dtype=np.int64)])
    order = _row_order(ev, runs, names, status, start, end, last)

    run_labels = [*ev.run_cats, None]
    frame = pd.DataFrame({
        "run_id": pd.Categorical([run_labels[r] for r in runs[order].tolist()], categories=ev.run_cats),
        "step_key": pd.Categorical(names[order]),
        "status": pd.Categorical(status[order], dtype=STEP_STATUS_DTYPE),
        "start": arr.timestamps(start[order]),
        "end": arr.timestamps(end[order]),
    })
    frame["duration"] = frame["end"] - frame["start"]
    frame["attempts"] = col(replay.attempts, 0)[order]
    for name, values in (("attempt_time", replay.attempt_time), ("retry_wait", overheads.retry_wait),
                         ("worker_startup", overheads.worker_startup), ("resource_init", overheads.resource_init),
                         ("input_loading", overheads.input_loading),
                         ("output_handling", overheads.output_handling)):
        frame[name] = col(values, NAT)[order].view("timedelta64[ms]")
    frame["error_class"] = pd.Categorical(col(errors.error_class, None)[order])
    frame["error_message"] = pd.array(col(errors.error_message, None)[order], dtype=pd.StringDtype())
    frame["last_event"] = arr.timestamps(last[order])
    for name, spans in (("attempt_spans", replay.spans), ("worker_spans", overheads.workers)):
        lists = arr.span_lists(life.n, spans.group, spans.start, spans.end)
        lists = [lists[i] for i in steps.tolist()] + [[] for _ in range(m)]
        frame[name] = pd.Series([lists[i] for i in order.tolist()], dtype=object)
    return frame


def _row_order(ev: _Columns, runs: np.ndarray, names: np.ndarray, status: np.ndarray, start: np.ndarray,
               end: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Runs by first appearance; in a run by start (else end, else last event), skipped
    steps last (by when Dagster gave up on them); ties by step key."""
    run_first = np.full(len(ev.run_cats) + 1, ev.n_rows, dtype=np.int64)
    np.minimum.at(run_first, ev.run, np.arange(ev.n_rows))
    is_skipped = status == "SKIPPED"
    when = np.where(start != NAT, start, np.where(end != NAT, end, last))
    when = np.where(is_skipped, last, when)
    when = np.where(when == NAT, NEVER, when)
    return np.lexsort((names.astype(str), when, is_skipped, run_first[runs]))


def _run_times(ev: _Columns) -> dict:
    """Per run id: ``run_start`` (RUN_START), ``run_end`` (RUN_SUCCESS/FAILURE/CANCELED) —
    None when absent — and ``run_last_event``."""
    n = len(ev.run_cats) + 1
    run_labels = [*ev.run_cats, None]
    known = ev.t != NAT
    start = np.full(n, NEVER, dtype=np.int64)
    rows = ev.types_in(["RUN_START"]) & known
    np.minimum.at(start, ev.run[rows], ev.t[rows])
    start = np.where(start == NEVER, NAT, start)
    end = np.full(n, NAT, dtype=np.int64)
    rows = ev.types_in(["RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED"]) & known
    np.maximum.at(end, ev.run[rows], ev.t[rows])
    last = np.full(n, NAT, dtype=np.int64)
    np.maximum.at(last, ev.run, ev.t)
    present = np.flatnonzero(np.bincount(ev.run, minlength=n) > 0).tolist()

    def stamp(ms: int) -> pd.Timestamp | None:
        return None if ms == NAT else pd.Timestamp(int(ms), unit="ms", tz="UTC")

    return {
        "run_start": {run_labels[c]: stamp(start[c]) for c in present},
        "run_end": {run_labels[c]: stamp(end[c]) for c in present},
        "run_last_event": {run_labels[c]: stamp(last[c]) for c in present},
    }
