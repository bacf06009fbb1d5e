"""Run summaries: what happened in one run, in a dozen numbers (:func:`run_summary`).

Built from an events frame and the step rows of :func:`runlens.steps.step_durations`:
status, wall time and queue time, steps by status, the slowest steps, retry waits, and
the first failure with where the user's code raised it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from typing import Any, NamedTuple

import pandas as pd

from .errors import InvalidArgument
from .event_types import twins
from .frames import require_kind
from .steps import WRAPPER_ERROR, step_durations_unchecked, str_or_none, user_error, warn_if_partial
from .text import MISSING, duration_text, iso_utc, key_value_text
from .vocabulary import STEP_STATUSES, TERMINAL_STATUSES

__all__ = ["RunSummary", "StepFailure", "run_summary"]

# A frame of a Python traceback: the last one in the user's stack is where it failed.
_FRAME_LINE = re.compile(r'File "[^"\n]*", line \d+(?:, in [^\n]+)?')


# --------------------------------------------------------------------------- run summary


class StepFailure(NamedTuple):
    """The first failure of a run (``step_key`` None for a run-level failure).

    ``where`` is the last ``File "...", line N, in f`` of the user code's stack (the
    error's cause, column ``error_cause_stack``), None when the frame has no such stack;
    ``stack`` is that stack in full.
    """

    step_key: str | None
    error_class: str | None
    message: str | None
    where: str | None = None
    stack: str | None = None


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
    #: The last lines of the failing step's captured stderr (``logs=`` given), readable.
    failure_log: list[str] | None = None
    #: Where ``failure_log`` came from, or why there is none (e.g. "no captured compute logs").
    failure_log_note: str | None = None
    critical_path: Any = field(default=None, compare=False)

    def _rows(self) -> list[tuple[str, str]]:
        steps = ", ".join(f"{n} {s.lower().replace('_', ' ')}" for s, n in self.steps_by_status.items() if n)
        rows = [("Run", self.run_id or "?")]
        if self.job_name:
            rows.append(("Job", self.job_name))
        rows += [
            ("Status", self.status),
            ("Started", iso_utc(self.started)),
            ("Wall time", duration_text(self.wall_time)),
            ("Queued", duration_text(self.queued)),
            ("Steps", steps or "none"),
            ("Slowest", ", ".join(f"{k} {duration_text(d)}" for k, d in self.slowest_steps[:3]) or MISSING),
            ("Retry wait", duration_text(self.total_retry_wait)),
            *([("Critical path", str(self.critical_path).removeprefix("critical path: "))]
              if self.critical_path is not None and len(self.critical_path) else []),
            ("Assets", _short_list(self.materializations)),
        ]
        if self.first_failure:
            f = self.first_failure
            what = f"{f.error_class}: " if f.error_class else ""
            message = (f.message or "").strip().splitlines()
            step = f"{f.step_key}: " if f.step_key else ""
            rows.append(("Failure", f"{step}{what}{message[0] if message else ''}"))
            if f.where:
                rows.append(("Where", f.where))
            if self.failure_log:
                rows.append(("Stderr", "\n".join(self.failure_log)))
            if self.failure_log_note:
                rows.append(("Logs", self.failure_log_note))
        rows.append(("Events", f"{self.n_events:,}"))
        return rows

    def __str__(self) -> str:
        return key_value_text(self._rows())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        cells = []
        for k, v in self._rows():
            value = escape(v)
            if k == "Stderr":
                value = f"<pre style='margin:0;max-height:20em;overflow:auto'>{value}</pre>"
            if k == "Where" and self.first_failure and self.first_failure.stack:
                value += f"<details><summary>stack</summary><pre>{escape(self.first_failure.stack)}</pre></details>"
            cells.append(f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{value}</td></tr>")
        return f"<table>{''.join(cells)}</table>"


def _short_list(items: list[str], limit: int = 4) -> str:
    if not items:
        return "none"
    unique = list(dict.fromkeys(items))
    text = ", ".join(unique[:limit])
    return text + (f", … ({len(unique)} in all)" if len(unique) > limit else "")


# The status implied by the latest run-level event seen, when the run reached no end.
_PROGRESS = (("CANCELING", "CANCELING"), ("START", "STARTED"), ("STARTING", "STARTING"),
             ("DEQUEUED", "STARTING"), ("ENQUEUED", "QUEUED"))


def run_summary(events: pd.DataFrame, run: Any = None, *, steps: pd.DataFrame | None = None,
                logs: Any = None, log_lines: int = 15, plan: pd.DataFrame | None = None) -> RunSummary:
    """Summarise one run: status, wall time, queueing, steps, retries, assets, first failure.

    Parameters
    ----------
    events : pandas.DataFrame
        The run's events frame. A frame of several runs needs ``run`` to pick one.
    run : runlens.models.Run, optional
        The run's metadata: its status wins over the one inferred from events, and its
        times fill in when a partial frame (a limit, a filter) lacks RUN_START / the
        terminal event.
    steps : pandas.DataFrame, optional
        ``step_durations(events)`` if already computed.
    logs : runlens.Client or str, optional
        For a failed step, where its captured stderr comes from: a ``Client`` (its tail
        is fetched: ``client.logs(run_id, step, max_bytes=64_000)``), or the text itself
        (``client.logs(...)``; a ``LogText`` of several steps gives the failing step's
        part). Without it nothing is fetched.
    log_lines : int, default 15
        How many of the last readable lines of that stderr to keep (``failure_log``).
    plan : pandas.DataFrame, optional
        The run's edges frame (``Client.execution_plan(run_id)``) for ``critical_path``;
        without it the edges come from the events' LOADED_INPUT lines.

    Returns
    -------
    RunSummary
        ``status`` is the run model's, else SUCCESS/FAILURE/CANCELED from the terminal
        event, else what the latest run-level event implies (STARTED, STARTING, QUEUED,
        CANCELING), else ``"UNKNOWN"``. ``wall_time`` is RUN_START → the terminal event,
        None for a run that never started (canceled while queued, never launched);
        ``queued`` RUN_ENQUEUED (or RUN_STARTING when the run was not queued) → RUN_START,
        or → the terminal event for a run canceled before it started. ``first_failure``
        is the first failed step in storage order (a step stopped by a cancellation is
        not a failure), else the run's own error, with where the user code raised.

    Raises
    ------
    InvalidArgument
        `events` is not an events frame, or holds several runs and ``run`` is None.

    Warns
    -----
    RunlensWarning
        ``events.attrs`` say the frame is incomplete (a ``limit``) or filtered.
    """
    require_kind(events, "events", func="run_summary")
    warn_if_partial(events, "run_summary")
    events, run_id = _one_run(events, run)
    if steps is None:
        steps = step_durations_unchecked(events)
    else:
        require_kind(steps, "steps", func="run_summary")
    status, started, ended, wall, queued = _run_timing(events, run)
    counts = steps["status"].astype(str).value_counts()
    timed = steps.dropna(subset=["duration"]).sort_values("duration", ascending=False, kind="stable")
    retry = steps["retry_wait"].sum() if len(steps) else pd.Timedelta(0)
    assets = events.loc[events["event_type"] == "ASSET_MATERIALIZATION", "asset_key"].dropna()
    first_failure = _first_failure(events, steps)
    failure_log, failure_log_note = _failure_log(logs, run_id, first_failure, log_lines)
    return RunSummary(
        run_id=run_id,
        status=status,
        wall_time=wall,
        queued=queued,
        steps_by_status={s: int(counts.get(s, 0)) for s in STEP_STATUSES},
        slowest_steps=[(str(k), d) for k, d in zip(timed["step_key"].head(5), timed["duration"].head(5),
                                                    strict=True)],
        total_retry_wait=pd.Timedelta(0) if pd.isna(retry) else pd.Timedelta(retry),
        materializations=[str(a) for a in assets],
        first_failure=first_failure,
        n_events=len(events),
        job_name=getattr(run, "job_name", None) if run is not None else None,
        started=started,
        ended=ended,
        steps=steps,
        failure_log=failure_log,
        failure_log_note=failure_log_note,
        critical_path=_critical_path(events, steps, plan),
    )


def _failure_log(logs: Any, run_id: str | None, failure: StepFailure | None,
                 lines: int) -> tuple[list[str] | None, str | None]:
    """The last readable lines of the failing step's stderr, and a note on where they came from."""
    if logs is None or failure is None or failure.step_key is None:
        return None, None
    from .errors import LogsNotFound
    from .logs import readable_lines

    step = failure.step_key
    if hasattr(logs, "logs") and callable(logs.logs):  # a Client: asked for explicitly
        if run_id is None:
            return None, None
        try:
            logs = logs.logs(run_id, step, max_bytes=64_000)
        except LogsNotFound as exc:
            return None, str(exc)
    if not isinstance(logs, str):
        raise InvalidArgument(f"run_summary(logs=...) takes a runlens Client or the log text, not {type(logs).__name__}")
    parts = getattr(logs, "parts", None)
    text, note = str(logs), None
    if parts:
        mine = [p for p in parts if step in p.file.step_keys and p.stream == "stderr"]
        if mine:
            text = mine[-1].text  # the last attempt's
            if mine[-1].file.whole_run:
                note = "stderr of the whole run (in-process executor: one log for all steps)"
            if mine[-1].truncated:
                text = text.split("\n", 1)[-1]  # a tail's first line is cut
    tail = readable_lines(text)[-lines:] if lines > 0 else []
    if not tail:
        return None, note or f"step {step} printed nothing to stderr"
    return tail, note


def _critical_path(events: pd.DataFrame, steps: pd.DataFrame, plan: pd.DataFrame | None) -> Any:
    """The run's critical path: from ``plan``, else from the events' LOADED_INPUT edges;
    None when neither gives an edge and several steps ran (a chain of one would mislead)."""
    from .critical import critical_path
    from .plan import plan_from_events

    if plan is None:
        plan = plan_from_events(events)
        if plan["upstream"].notna().sum() == 0 and steps["end"].notna().sum() > 1:
            return None
    return critical_path(steps, plan)


def _one_run(events: pd.DataFrame, run: Any) -> tuple[pd.DataFrame, str | None]:
    """The rows of the one run to summarise, and its id."""
    run_ids = [str(r) for r in pd.unique(events["run_id"].dropna())]
    if run is not None:
        if not isinstance(getattr(run, "id", None), str):
            raise InvalidArgument(f"run_summary() takes run= as a runlens Run (Client.run(run_id)); "
                                  f"got a {type(run).__name__}")
        if run_ids and run.id not in run_ids:
            raise InvalidArgument(f"run_summary(): the events frame holds no event of run {run.id!r} "
                                  f"(it holds {', '.join(map(repr, run_ids[:3]))}{', …' if len(run_ids) > 3 else ''})")
        return (events[events["run_id"] == run.id] if len(run_ids) > 1 else events), run.id
    if len(run_ids) > 1:
        raise InvalidArgument(f"run_summary() takes one run; this frame holds {len(run_ids)}: pass run= "
                              "(a Client.run(run_id) result) to pick one")
    return events, (str(run_ids[0]) if run_ids else None)


def _last_of(events: pd.DataFrame, names: list[str]) -> tuple[str, pd.Timestamp] | None:
    """The last (in storage order) of the RUN_<name> events, as (name, time)."""
    wanted = {t: n for n in names for t in twins("RUN_" + n)}
    rows = events[events["event_type"].isin(list(wanted))]
    if rows.empty:
        return None
    row = rows.sort_values("seq", kind="stable").iloc[-1]
    return wanted[str(row["event_type"])], row["timestamp"]


def _run_timing(events: pd.DataFrame, run: Any) -> tuple[str, Any, Any, Any, Any]:
    """``(status, started, ended, wall_time, queued)`` of one run's events."""
    times = events["timestamp"]

    def first(name: str) -> pd.Timestamp | None:
        hits = times[events["event_type"].isin(twins(name))]
        return hits.min() if len(hits) else None

    ended = _last_of(events, sorted(TERMINAL_STATUSES))
    if run is not None:
        status = str(run.status)
    elif ended:
        status = ended[0]
    else:
        progress = _last_of(events, [name for name, _ in _PROGRESS])
        status = dict(_PROGRESS)[progress[0]] if progress else ("STARTED" if len(events) else "UNKNOWN")
    started, end_time = first("RUN_START"), (ended[1] if ended else None)
    if run is not None:
        partial = events.attrs.get("complete") is False or events.attrs.get("filtered") is True
        model_start, model_end = _ts(run.started_at), _ts(run.ended_at)
        # Dagster answers a never-started run's startTime with its endTime: not a start.
        if started is None and partial and model_start is not None and model_start != model_end:
            started = model_start
        end_time = end_time if end_time is not None else model_end
    wall = end_time - started if started is not None and end_time is not None else None
    enqueued = first("RUN_ENQUEUED")
    enqueued = enqueued if enqueued is not None else first("RUN_STARTING")
    until = started if started is not None else end_time
    queued = until - enqueued if until is not None and enqueued is not None else None
    return status, started, end_time, wall, queued


def _ts(value: Any) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).tz_convert("UTC").as_unit("ms")


def _first_failure(events: pd.DataFrame, steps: pd.DataFrame) -> StepFailure | None:
    """The first STEP_FAILURE of a FAILURE step (storage order), else the run's error."""
    et = events["event_type"]
    failed = set(steps.loc[steps["status"] == "FAILURE", "step_key"].astype(str))
    step_failures = events[(et == "STEP_FAILURE") & events["step_key"].astype(str).isin(failed)]
    run_failures = events[et.isin(twins("RUN_FAILURE")) & events["error_class"].notna()]
    for rows, with_step in ((step_failures, True), (run_failures, False)):
        if rows.empty:
            continue
        row = rows.sort_values("seq", kind="stable").iloc[0]
        stack = _user_stack(row, with_step)
        return StepFailure(str_or_none(row["step_key"]) if with_step else None, *user_error(row),
                           where=_last_frame(stack), stack=stack)
    return None


def _user_stack(row: pd.Series, of_step: bool) -> str | None:
    """The user code's stack: the cause's (``error_cause_stack``), else a step error's own
    stack when Dagster did not wrap it (``Failure`` raised in the op)."""
    stack = str_or_none(row.get("error_cause_stack"))
    if stack is None and of_step and str_or_none(row.get("error_class")) not in (None, WRAPPER_ERROR):
        stack = str_or_none(row.get("error_stack"))
    return stack or None


def _last_frame(stack: str | None) -> str | None:
    """The last ``File "...", line N, in f`` of a Python stack: where it raised."""
    found = _FRAME_LINE.findall(stack) if stack else []
    return found[-1].strip() if found else None


