"""Where a run's time went: its wall time split into parts that add up (:func:`run_anatomy`).

Before the run starts: ``queued`` (RUN_ENQUEUED → RUN_STARTING; Dagster 1.13 logs no
RUN_DEQUEUED, an older server's is used where present) and ``launching`` (→ RUN_START).
From RUN_START to the run's end each instant is counted once: to the phase of the
critical-path step running then (worker start-up, resource init, input loading, compute,
output handling, retry wait), else of the step running then that finished last, else
``idle``. So the parts add up to the wall time even though steps run in parallel.

Pure pandas over an events frame; no network, no matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._step_arrays import millis
from .critical import CriticalPath, critical_path
from .errors import InvalidArgument
from .event_types import twins
from .frames import require_kind
from .steps import step_durations_unchecked, warn_if_partial
from .text import MISSING, duration_text, key_value_text

__all__ = ["PHASES", "RunAnatomy", "run_anatomy"]

#: A step's phases, in the order a step goes through them.
PHASES = ("worker_startup", "resource_init", "input_loading", "compute", "output_handling", "retry_wait")
#: The parts of a run's time, in order; they add up to :attr:`RunAnatomy.total`.
PARTS = ("queued", "launching", *PHASES, "idle")

_STEP_TYPES = ("STEP_WORKER_STARTING", "STEP_WORKER_STARTED", "RESOURCE_INIT_STARTED", "RESOURCE_INIT_SUCCESS",
               "RESOURCE_INIT_FAILURE", "STEP_START", "STEP_RESTARTED", "LOADED_INPUT", "STEP_INPUT",
               "STEP_OUTPUT", "HANDLED_OUTPUT", "STEP_UP_FOR_RETRY", "STEP_SUCCESS", "STEP_FAILURE",
               "STEP_SKIPPED")
_CLOSE = {"STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"}
_OPEN = {"STEP_START", "STEP_RESTARTED"}
_END_OF_RUN = ("RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED")


@dataclass(repr=False)
class RunAnatomy:
    """A run's time in parts that add up (:func:`run_anatomy`). Every part is a Timedelta.

    ``total`` is the first of RUN_ENQUEUED / RUN_STARTING / RUN_START → the run's end
    (its RUN_SUCCESS/FAILURE/CANCELED, else its last event) and equals the sum of
    :data:`PARTS`; ``wall_time`` is RUN_START → the end (``run_summary``'s wall time)
    and equals the sum of the phases and ``idle``.
    """

    run_id: str | None
    status: str
    queued: pd.Timedelta
    launching: pd.Timedelta
    worker_startup: pd.Timedelta
    resource_init: pd.Timedelta
    input_loading: pd.Timedelta
    compute: pd.Timedelta
    output_handling: pd.Timedelta
    retry_wait: pd.Timedelta
    idle: pd.Timedelta
    total: pd.Timedelta | None
    wall_time: pd.Timedelta | None
    peak_concurrency: int
    mean_concurrency: float
    idle_gaps: pd.DataFrame
    steps: pd.DataFrame
    segments: pd.DataFrame
    critical_path: CriticalPath | None
    canceled: str | None = None
    started: pd.Timestamp | None = None
    ended: pd.Timestamp | None = None
    _extra: dict = field(default_factory=dict)

    @property
    def parts(self) -> pd.Series:
        """The parts as a Series of Timedeltas, in :data:`PARTS` order."""
        return pd.Series({p: getattr(self, p) for p in PARTS}, dtype="timedelta64[ms]")

    def headline(self) -> str:
        """``4.3 s: compute 2.1 s, worker start-up 1.4 s, idle 0.5 s, queued 0.3 s``."""
        parts = self.parts
        parts = parts[parts > pd.Timedelta(0)].sort_values(ascending=False)
        shown = ", ".join(f"{name.replace('_', ' ')} {duration_text(v)}" for name, v in parts.head(4).items())
        return f"{duration_text(self.total)}: {shown or 'nothing timed'}"

    def _rows(self) -> list[tuple[str, str]]:
        rows = [("Run", self.run_id or "?"), ("Status", self.status), ("Total", duration_text(self.total)),
                ("Wall time", duration_text(self.wall_time))]
        total = self.total.total_seconds() if self.total is not None and self.total.total_seconds() > 0 else None
        for name, value in self.parts.items():
            share = f" ({value.total_seconds() / total:.0%})" if total else ""
            rows.append((name.replace("_", " "), f"{duration_text(value)}{share}"))
        rows += [("Concurrency", f"peak {self.peak_concurrency}, mean {self.mean_concurrency:.2f}"),
                 ("Idle gaps", f"{len(self.idle_gaps)}" if len(self.idle_gaps) else "none")]
        if self.critical_path is not None:
            rows.append(("Critical path", str(self.critical_path).removeprefix("critical path: ")))
        if self.canceled:
            rows.append(("Canceled", self.canceled))
        return rows

    def __str__(self) -> str:
        return key_value_text(self._rows())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from html import escape

        cells = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{escape(v)}"
                        "</td></tr>" for k, v in self._rows())
        return f"<table>{cells}</table>"


def run_anatomy(events: pd.DataFrame, run: Any = None, *, plan: pd.DataFrame | None = None) -> RunAnatomy:
    """Split a run's time into parts that add up: queued, launching, step phases, idle.

    Parameters
    ----------
    events : pandas.DataFrame
        The run's events frame (the whole run: ``client.events(run_id)``). A frame of
        several runs needs ``run``.
    run : runlens.models.Run or str, optional
        Which run of the frame (a ``Client.run`` result or a run id); its status wins.
    plan : pandas.DataFrame, optional
        The run's edges frame (:meth:`runlens.Client.execution_plan`) for the critical
        path; inferred from the LOADED_INPUT events when omitted.

    Returns
    -------
    RunAnatomy
        The parts (:data:`PARTS`, Timedeltas that sum to ``total``); ``steps``: per step
        the same phases (its first lifecycle event → its end, each instant in one phase,
        so they add up to ``span``); ``segments``: the run's time cut into
        ``start, end, part, step_key`` pieces; ``idle_gaps`` (``start, end, duration``);
        ``peak_concurrency`` and ``mean_concurrency`` (steps in a phase other than retry
        wait, averaged over the wall time); ``canceled``: where a canceled run stopped.

    Raises
    ------
    InvalidArgument
        Not an events frame, several runs without ``run``, or ``run`` not in the frame.

    Notes
    -----
    A step's phases come from the intervals between its lifecycle events, named after
    the event that ends them (LOADED_INPUT: input loading; HANDLED_OUTPUT: output
    handling; RESOURCE_INIT_SUCCESS: resource init; STEP_WORKER_STARTED and anything else
    before STEP_START: worker start-up) or that opens them (STEP_UP_FOR_RETRY: retry
    wait); the rest of an attempt is compute. A retried step's set-up between its new
    worker starting and STEP_RESTARTED is worker start-up here (``step_durations`` counts
    it in ``retry_wait``).
    """
    require_kind(events, "events", func="run_anatomy")
    warn_if_partial(events, "run_anatomy")
    events, run_id = _pick_run(events, run)
    ordered = events.sort_values("seq", kind="stable")
    run_times = _run_times(ordered)
    steps = step_durations_unchecked(ordered)
    path = critical_path(ordered, plan) if len(steps) else None
    on_path = path.keys if path is not None else []
    start, end = run_times.get("RUN_START"), _run_end(ordered, run_times)
    intervals = _step_intervals(ordered, end)
    segments = _segments(intervals, start, end, on_path)
    first = next((run_times[k] for k in ("RUN_ENQUEUED", "RUN_STARTING", "RUN_START") if k in run_times), None)
    if start is None:  # never started: all of it was queue (or launching) time
        start_like = end
    else:
        start_like = start
    queued_end = run_times.get("RUN_DEQUEUED", run_times.get("RUN_STARTING", start_like))
    zero = pd.Timedelta(0)

    def span(a: Any, b: Any) -> pd.Timedelta:
        return (b - a) if a is not None and b is not None and b > a else zero

    queued = span(run_times.get("RUN_ENQUEUED"), queued_end)
    launching = span(queued_end if "RUN_ENQUEUED" in run_times or "RUN_DEQUEUED" in run_times
                     else run_times.get("RUN_STARTING"), start_like)
    totals = segments.groupby("part")["duration"].sum() if len(segments) else pd.Series(dtype="timedelta64[ms]")
    phase = {p: pd.Timedelta(totals.get(p, zero)) for p in (*PHASES, "idle")}
    wall = span(start, end) if start is not None else None
    peak, mean = _concurrency(intervals, wall)
    status = str(getattr(run, "status", "") or "") or _status(run_times)
    return RunAnatomy(
        run_id=run_id, status=status, queued=queued, launching=launching, **phase,
        total=span(first, end) if first is not None and end is not None else None, wall_time=wall,
        peak_concurrency=peak, mean_concurrency=mean,
        idle_gaps=_idle_gaps(segments), steps=_per_step(intervals, steps), segments=segments,
        critical_path=path, canceled=_where_canceled(ordered, run_times, intervals),
        started=start, ended=end,
    )


def _pick_run(events: pd.DataFrame, run: Any) -> tuple[pd.DataFrame, str | None]:
    ids = [str(r) for r in pd.unique(events["run_id"].dropna().astype(str))]
    wanted = run if isinstance(run, str) else getattr(run, "id", None)
    if run is not None and not isinstance(wanted, str):
        raise InvalidArgument(f"run_anatomy() takes run= as a run id or a Client.run(run_id) result; "
                              f"got a {type(run).__name__}")
    if wanted is not None:
        if ids and wanted not in ids:
            raise InvalidArgument(f"run_anatomy(): the events frame holds no event of run {wanted!r}")
        return events[events["run_id"].astype(object) == wanted], wanted
    if len(ids) > 1:
        raise InvalidArgument(f"run_anatomy() takes one run; this frame holds {len(ids)}: pass run= to pick one")
    return events, (ids[0] if ids else None)


def _run_times(events: pd.DataFrame) -> dict[str, pd.Timestamp]:
    """The first time of each run-level event (RUN_ and PIPELINE_ twins merged)."""
    out: dict[str, pd.Timestamp] = {}
    names = events["event_type"].astype(object)
    for name in ("RUN_ENQUEUED", "RUN_DEQUEUED", "RUN_STARTING", "RUN_START", "RUN_CANCELING", *_END_OF_RUN):
        hits = events.loc[names.isin(list(twins(name))), "timestamp"].dropna()
        if len(hits):
            out[name] = pd.Timestamp(hits.min() if name != "RUN_CANCELED" else hits.max())
    return out


def _run_end(events: pd.DataFrame, run_times: dict) -> pd.Timestamp | None:
    ends = [run_times[k] for k in _END_OF_RUN if k in run_times]
    if ends:
        return max(ends)
    times = events["timestamp"].dropna()
    return pd.Timestamp(times.max()) if len(times) else None


def _status(run_times: dict) -> str:
    for name, status in (("RUN_SUCCESS", "SUCCESS"), ("RUN_FAILURE", "FAILURE"), ("RUN_CANCELED", "CANCELED"),
                         ("RUN_CANCELING", "CANCELING"), ("RUN_START", "STARTED"), ("RUN_STARTING", "STARTING"),
                         ("RUN_ENQUEUED", "QUEUED")):
        if name in run_times:
            return status
    return "UNKNOWN"


def _label(before: str, after: str | None, opened: bool) -> str:
    """The phase of the interval between two lifecycle events of a step."""
    if before == "STEP_UP_FOR_RETRY":
        return "retry_wait"
    if before == "STEP_WORKER_STARTING" or after == "STEP_WORKER_STARTED":
        return "worker_startup"
    if before == "RESOURCE_INIT_STARTED":
        return "resource_init"
    if not opened:
        return "worker_startup"
    if after == "LOADED_INPUT":
        return "input_loading"
    if after == "HANDLED_OUTPUT":
        return "output_handling"
    return "compute"


def _step_intervals(events: pd.DataFrame, run_end: pd.Timestamp | None) -> pd.DataFrame:
    """Per step, its time from its first lifecycle event to its end, cut into phases:
    ``step_key, start, end, phase`` (ms resolution)."""
    names = events["event_type"].astype(object)
    rows = events[names.isin(_STEP_TYPES) & events["step_key"].notna() & events["timestamp"].notna()]
    out: list[tuple] = []
    for key, group in rows.groupby(rows["step_key"].astype(str), sort=False):
        types = group["event_type"].astype(str).tolist()
        times = group["timestamp"].tolist()
        opened = False
        for i, (typ, t) in enumerate(zip(types, times, strict=True)):
            if typ in _CLOSE:
                break
            opened = (opened or typ in _OPEN) and typ != "STEP_UP_FOR_RETRY"
            nxt = times[i + 1] if i + 1 < len(times) else None
            after = types[i + 1] if i + 1 < len(types) else None
            if nxt is None:  # still open: runs on to the run's end
                nxt, after = run_end, None
            if nxt is not None and nxt > t:
                out.append((key, t, nxt, _label(typ, after, opened)))
    frame = pd.DataFrame(out, columns=["step_key", "start", "end", "phase"])
    frame["start"] = pd.to_datetime(frame["start"], utc=True).dt.as_unit("ms")
    frame["end"] = pd.to_datetime(frame["end"], utc=True).dt.as_unit("ms")
    return frame


def _segments(intervals: pd.DataFrame, start: Any, end: Any, on_path: list[str]) -> pd.DataFrame:
    """RUN_START → end cut at every interval edge; each piece given to one step's phase
    (a critical-path step first, else the step that finished last) or to idle."""
    columns = ["start", "end", "duration", "part", "step_key"]
    if start is None or end is None or end <= start:
        return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in zip(
            columns, ["datetime64[ms, UTC]", "datetime64[ms, UTC]", "timedelta64[ms]", "string", "string"],
            strict=True)})
    s0, e0 = _ms(start), _ms(end)
    iv = intervals
    ivs = np.clip(_ms_col(iv["start"]), s0, e0)
    ive = np.clip(_ms_col(iv["end"]), s0, e0)
    keep = ive > ivs
    ivs, ive = ivs[keep], ive[keep]
    keys = iv["step_key"].to_numpy(object)[keep]
    phases = iv["phase"].to_numpy(object)[keep]
    step_end = iv.groupby("step_key")["end"].max()
    rank = {k: (1 if k in on_path else 0, _ms(step_end[k]), on_path.index(k) if k in on_path else -1)
            for k in set(keys)}
    cuts = np.unique(np.concatenate([[s0, e0], ivs, ive]))
    pieces: list[tuple] = []
    order = np.argsort(ivs, kind="stable")
    active: list[int] = []
    j = 0
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        while j < len(order) and ivs[order[j]] <= a:
            active.append(int(order[j]))
            j += 1
        active = [i for i in active if ive[i] > a]
        if active:
            best = max(active, key=lambda i: rank[keys[i]])
            part, step = phases[best], keys[best]
        else:
            part, step = "idle", None
        if pieces and pieces[-1][3] == part and pieces[-1][4] == step and pieces[-1][1] == a:
            pieces[-1] = (pieces[-1][0], b, 0, part, step)
        else:
            pieces.append((a, b, 0, part, step))
    frame = pd.DataFrame(pieces, columns=columns)
    frame["start"] = pd.to_datetime(frame["start"], unit="ms", utc=True).dt.as_unit("ms")
    frame["end"] = pd.to_datetime(frame["end"], unit="ms", utc=True).dt.as_unit("ms")
    frame["duration"] = frame["end"] - frame["start"]
    frame["part"] = frame["part"].astype(pd.StringDtype())
    frame["step_key"] = frame["step_key"].astype(pd.StringDtype())
    return frame


def _ms(value: Any) -> int:
    return int(pd.Timestamp(value).value // 1_000_000)


def _ms_col(series: pd.Series) -> np.ndarray:
    return millis(pd.to_datetime(series, utc=True))


def _idle_gaps(segments: pd.DataFrame) -> pd.DataFrame:
    gaps = segments.loc[segments["part"] == "idle", ["start", "end", "duration"]]
    return gaps.reset_index(drop=True)


def _per_step(intervals: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Per step: ``step_key, status, start, end, span`` and the time in each phase."""
    zero = pd.Timedelta(0)
    keys = [str(k) for k in steps["step_key"].astype(object)]
    if len(intervals):
        iv = intervals.assign(duration=intervals["end"] - intervals["start"])
        table = iv.pivot_table(index="step_key", columns="phase", values="duration", aggfunc="sum")
        bounds = iv.groupby("step_key").agg(first=("start", "min"), last=("end", "max"))
    else:
        table, bounds = pd.DataFrame(), pd.DataFrame(columns=["first", "last"])
    out = pd.DataFrame({"step_key": pd.array(keys, dtype=pd.StringDtype()),
                        "status": steps["status"].to_numpy()})
    out["start"] = pd.to_datetime(pd.Series([bounds["first"].get(k, pd.NaT) for k in keys]), utc=True)
    out["end"] = pd.to_datetime(pd.Series([bounds["last"].get(k, pd.NaT) for k in keys]), utc=True)
    out["span"] = out["end"] - out["start"]
    for phase in PHASES:
        column = table[phase] if phase in table.columns else pd.Series(dtype="timedelta64[ms]")
        out[phase] = pd.Series([column.get(k, zero) if k in bounds.index else pd.NaT for k in keys],
                               dtype="timedelta64[ms]")
        out[phase] = out[phase].fillna(zero).where(out["span"].notna())
    return out


def _concurrency(intervals: pd.DataFrame, wall: pd.Timedelta | None) -> tuple[int, float]:
    busy = intervals[intervals["phase"] != "retry_wait"]
    if busy.empty:
        return 0, 0.0
    s, e = _ms_col(busy["start"]), _ms_col(busy["end"])
    points = np.concatenate([s, e])
    delta = np.concatenate([np.ones(len(s), int), -np.ones(len(e), int)])
    # Ends before starts at the same instant: a step's phases touch end to start, so the
    # level counts steps, not phases.
    level = np.cumsum(delta[np.lexsort((delta, points))])
    total = float((e - s).sum())
    mean = total / wall.total_seconds() / 1000.0 if wall is not None and wall.total_seconds() > 0 else 0.0
    return int(level.max()) if len(level) else 0, mean


def _where_canceled(events: pd.DataFrame, run_times: dict, intervals: pd.DataFrame) -> str | None:
    if "RUN_CANCELED" not in run_times and "RUN_CANCELING" not in run_times:
        return None
    at = run_times.get("RUN_CANCELING", run_times.get("RUN_CANCELED"))
    start = run_times.get("RUN_START")
    if start is None:
        queued_since = run_times.get("RUN_ENQUEUED")
        waited = f" after {duration_text(at - queued_since)} in the queue" if queued_since is not None else ""
        return f"canceled while queued{waited}, before any step ran"
    running = intervals[(intervals["start"] <= at) & (intervals["end"] >= at)]
    what = ", ".join(f"{k} ({p.replace('_', ' ')})" for k, p in zip(running["step_key"], running["phase"],
                                                                     strict=True)) or MISSING
    return f"canceled {duration_text(at - start)} after the start, while running: {what}"
