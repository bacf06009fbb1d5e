"""The timeline as plain data: which bars, marks and notes go on which row, in seconds.

No matplotlib here. :func:`timeline_layout` reads an events or steps frame into a
:class:`TimelineLayout` that tests can check directly; ``_timeline`` draws it. Colours
are named by meaning (``look``, a key of :data:`COLORS`), not by value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import InvalidArgument
from ..event_types import twins
from ..text import duration_text, iso_utc
from ._common import text_values

#: Run-level events, by what they say about the run (each RUN_ name with its PIPELINE_ twin).
_RUN_PHASES = {
    "RUN_ENQUEUED": "enqueued", "RUN_DEQUEUED": "dequeued", "RUN_STARTING": "launched",
    "RUN_START": "started", "RUN_CANCELING": "canceling", "RUN_SUCCESS": "succeeded",
    "RUN_FAILURE": "failed", "RUN_CANCELED": "canceled",
}
_PHASE_OF = {twin: phase for name, phase in _RUN_PHASES.items() for twin in twins(name)}
_ENDED = ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class Bar:
    """A horizontal bar: ``kind`` "attempt", "retry_wait" or "worker_startup" (its gid)."""

    kind: str
    row: int
    start: float  # seconds since the layout's origin
    end: float
    look: str  # SUCCESS, FAILURE, RETRIED, IN_PROGRESS, CANCELED, retry_wait, worker_startup


@dataclass(frozen=True)
class Mark:
    """A marker: ``kind`` "skipped" (an ``x``) or "running" (a ``>`` where an open bar ends)."""

    kind: str
    row: int
    x: float


@dataclass(frozen=True)
class Note:
    """Text right of a row's last bar: its duration, attempts, error class."""

    row: int
    x: float
    text: str
    look: str  # "text", FAILURE, CANCELED or SKIPPED


@dataclass
class TimelineLayout:
    """Everything a timeline shows, in seconds since ``origin``.

    ``rows`` are step keys top first, ``statuses`` their statuses. ``run_events`` are the
    run-level events seen (``("enqueued", seconds)``, ...). ``state`` says what a run with
    no step rows is ("queued since ..., no steps yet"), None when steps exist.
    """

    run_id: str | None
    origin: pd.Timestamp | None
    x_label: str
    rows: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    run_events: list[tuple[str, float]] = field(default_factory=list)
    last_event: float | None = None  # where open bars end, when something runs
    run_end: float | None = None
    done_at: float | None = None  # the last step's end, when none runs
    state: str | None = None

    @property
    def looks(self) -> set[str]:
        """What the legend must explain."""
        return {b.look for b in self.bars} | {"SKIPPED" for m in self.marks if m.kind == "skipped"}

    def x_range(self) -> tuple[float, float]:
        """Everything drawn, plus a fifth on the right for the notes (at least 1 ms wide)."""
        xs = [0.0] + [x for b in self.bars for x in (b.start, b.end)] + [m.x for m in self.marks]
        xs += [self.run_end] if self.run_end is not None else []
        if not self.rows:  # run-level events are drawn only when there are no steps
            xs += [x for _, x in self.run_events]
        lo, hi = min(xs), max(xs)
        if not self.rows:
            hi = max(hi, lo + 1.0)  # a queued run's lone event: a second of axis, not a point
        span = max(hi - lo, 1e-3)
        return lo - 0.01 * span, hi + 0.2 * span


# --------------------------------------------------------------------------- the frame


def _steps_and_events(frame: Any) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    from ..frames import require_kind
    from ..steps import step_durations

    kind = require_kind(frame, "events", "steps", "step_stats", func="plot_timeline")
    if kind != "events":
        return frame, None
    return step_durations(frame), frame


def _one_run(steps: pd.DataFrame, events: pd.DataFrame | None) -> str | None:
    frame = events if events is not None else steps
    runs = pd.unique(frame["run_id"].dropna().astype(str))
    if len(runs) > 1:
        raise InvalidArgument(
            f"plot_timeline draws one run; this frame holds {len(runs)} "
            "(select one: frame[frame.run_id == run_id])"
        )
    if len(runs):
        return str(runs[0])
    # An empty frame may still name its run: Client.events' attrs, or the column's categories.
    ids = frame.attrs.get("run_ids") or []
    if not ids and isinstance(frame["run_id"].dtype, pd.CategoricalDtype):
        ids = [c for c in frame["run_id"].cat.categories if c]
    return str(ids[0]) if len(ids) == 1 else None


def _row_order(steps: pd.DataFrame) -> pd.DataFrame:
    """Steps by start (end, then last event when not started), skipped last."""
    steps = steps.reset_index(drop=True)  # pd.concat without ignore_index repeats labels
    skipped = pd.Series(text_values(steps["status"])) == "SKIPPED"
    when = steps["start"].fillna(steps["end"])
    if "last_event" in steps.columns:
        when = when.fillna(steps["last_event"]).where(~skipped, steps["last_event"])
    keys = pd.DataFrame({"skipped": skipped, "when": when, "key": text_values(steps["step_key"])})
    order = keys.sort_values(["skipped", "when", "key"], kind="stable", na_position="last").index
    return steps.loc[order].reset_index(drop=True)


def _run_events(events: pd.DataFrame | None) -> list[tuple[str, pd.Timestamp]]:
    """The run-level events, ``(phase, time)`` in time order."""
    if events is None or not len(events):
        return []
    names = events["event_type"].astype(object)
    rows = events[names.isin(list(_PHASE_OF))]
    found = [(_PHASE_OF[str(n)], pd.Timestamp(t)) for n, t in zip(rows["event_type"], rows["timestamp"], strict=True)
             if not pd.isna(t)]
    return sorted(found, key=lambda pair: pair[1])


@dataclass(frozen=True)
class _Clock:
    """x = 0 (``origin``), what it is called, the last event seen and the run's end."""

    origin: pd.Timestamp | None
    x_label: str
    now: pd.Timestamp | None
    run_end: pd.Timestamp | None

    def sec(self, t: Any) -> float:
        return (pd.Timestamp(t) - self.origin).total_seconds()


def _known(value: Any) -> bool:
    return value is not None and not pd.isna(value)


def _step_times(steps: pd.DataFrame) -> list[pd.Timestamp]:
    spans = [*steps["attempt_spans"], *(steps["worker_spans"] if "worker_spans" in steps.columns else [])]
    times = [t for pairs in spans for pair in (pairs or []) for t in pair if _known(t)]
    for column in ("start", "end", "last_event"):
        if column in steps.columns:
            times += [t for t in steps[column] if _known(t)]
    return [pd.Timestamp(t) for t in times]


def _clock(steps: pd.DataFrame, events: pd.DataFrame | None, run_id: str | None,
           run_events: list[tuple[str, pd.Timestamp]]) -> _Clock:
    if events is not None:
        start = next((t for phase, t in run_events if phase == "started"), None)
        ends = [t for phase, t in run_events if phase in _ENDED]
        run_end = ends[-1] if ends else None
        now = events["timestamp"].max() if len(events) else None
    else:  # a steps frame: step_durations left the run's times in attrs (pd.concat drops them)
        times = {key: steps.attrs.get(key, {}).get(run_id) for key in ("run_start", "run_end", "run_last_event")}
        start, run_end, now = times["run_start"], times["run_end"], times["run_last_event"]
    known = _step_times(steps)
    if _known(start):
        origin, label = pd.Timestamp(start), "seconds since run start"
    elif known:
        origin, label = min(known), "seconds since the first step event"
    elif run_events:
        origin, label = run_events[0][1], f"seconds since the run was {run_events[0][0]}"
    else:  # nothing timed: no axis to speak of (rows, if any, are drawn at 0)
        origin, label = (pd.Timestamp(0, tz="UTC") if len(steps) else None), ""
    if not _known(now):
        now = max(known) if known else origin
    return _Clock(origin, label, now, pd.Timestamp(run_end) if _known(run_end) else None)


# --------------------------------------------------------------------------- the rows


def _worker_bars(y: int, row: Any, sec) -> list[Bar]:
    spans = getattr(row, "worker_spans", None) or []
    return [Bar("worker_startup", y, sec(s), sec(e), "worker_startup") for s, e in spans if _known(e)]


def _attempt_bars(y: int, row: Any, status: str, sec, now_s: float, stop_s: float) -> tuple[list[Bar], list[Mark]]:
    """A bar per attempt, coloured by how it ended; retry waits between attempts."""
    spans = list(row.attempt_spans or [])
    bars: list[Bar] = []
    marks: list[Mark] = []
    for j, (s, e) in enumerate(spans):
        if j > 0 and _known(spans[j - 1][1]):
            bars.append(Bar("retry_wait", y, sec(spans[j - 1][1]), sec(s), "retry_wait"))
        if not _known(e) and status == "CANCELED":
            bars.append(Bar("attempt", y, sec(s), stop_s, "CANCELED"))  # ran until the run stopped
        elif not _known(e):
            bars.append(Bar("attempt", y, sec(s), now_s, "IN_PROGRESS"))
            marks.append(Mark("running", y, now_s))
        else:
            ended = status if status in ("SUCCESS", "FAILURE", "CANCELED") else "SUCCESS"
            retried = j < len(spans) - 1 or status == "IN_PROGRESS"
            bars.append(Bar("attempt", y, sec(s), sec(e), "RETRIED" if retried else ended))
    if status == "IN_PROGRESS" and spans and _known(spans[-1][1]):
        # Up for retry right now: the wait runs to the last event seen.
        bars.append(Bar("retry_wait", y, sec(spans[-1][1]), now_s, "retry_wait"))
        marks.append(Mark("running", y, now_s))
    return bars, marks


def _note(y: int, row: Any, status: str, sec, end_x: float) -> Note:
    """Duration (or time running so far), attempts, and the error class of a failure."""
    duration = getattr(row, "duration", None)
    if _known(duration):
        text = duration_text(duration)
        text += " · canceled" if status == "CANCELED" else ""
    elif _known(row.start):
        so_far = duration_text(max(end_x - sec(row.start), 0.0))
        text = f"canceled after {so_far}" if status == "CANCELED" else f"running {so_far}"
    else:
        text = "canceled" if status == "CANCELED" else ""
    if row.attempts > 1:
        text += f" · {row.attempts} attempts"
    error_class = getattr(row, "error_class", None)
    if status == "FAILURE" and isinstance(error_class, str):
        text += f" · {error_class}"
    return Note(y, end_x, text, status if status in ("FAILURE", "CANCELED") else "text")


def _add_steps(layout: TimelineLayout, steps: pd.DataFrame, clock: _Clock) -> None:
    sec = clock.sec
    now_s = sec(clock.now)
    stop_s = sec(clock.run_end) if clock.run_end is not None else now_s
    for y, (row, status) in enumerate(zip(steps.itertuples(index=False), layout.statuses, strict=True)):
        layout.bars += _worker_bars(y, row, sec)
        if status == "SKIPPED":
            at = row.end if _known(row.end) else getattr(row, "last_event", None)
            x = sec(at) if _known(at) else 0.0
            layout.marks.append(Mark("skipped", y, x))
            layout.notes.append(Note(y, x, "skipped", "SKIPPED"))
            continue
        bars, marks = _attempt_bars(y, row, status, sec, now_s, stop_s)
        layout.bars += bars
        layout.marks += marks
        if bars:
            layout.notes.append(_note(y, row, status, sec, max(b.end for b in bars)))
    if any(m.kind == "running" for m in layout.marks):
        layout.last_event = now_s
    ends = [sec(t) for t in steps["end"] if _known(t)]
    if ends and "IN_PROGRESS" not in layout.statuses:
        layout.done_at = max(ends)


# --------------------------------------------------------------------------- the run


def _run_state(run_events: list[tuple[str, pd.Timestamp]], status: Any) -> str:
    """What a run without step rows is, from its run-level events (or the status it was fetched with)."""
    if not run_events:
        if status in (None, "NOT_STARTED"):
            return "not started (no events)"
        return f"{str(status).lower()}, no events yet"
    phase, at = run_events[-1]
    first = {p: t for p, t in reversed(run_events)}
    when = iso_utc(at, timespec="seconds")
    if phase == "canceled" and "started" not in first:
        queued = first.get("enqueued")
        waited = f" after {duration_text(at - queued)} in the queue" if queued is not None else ""
        return f"canceled while queued, at {when}{waited}"
    if phase in _ENDED:
        return f"{phase} at {when}, before any step ran"
    if phase == "canceling":
        return f"canceling since {when}, no steps ran"
    if phase == "enqueued":
        return f"queued since {when}, no steps yet"
    return f"{phase} at {when}, no steps yet"


def timeline_layout(events_or_steps: Any) -> TimelineLayout:
    """Read one run's events (or steps) frame into what its timeline shows.

    Raises
    ------
    InvalidArgument
        For a frame that is no events, step_durations or step_stats frame, or that holds
        several runs.
    """
    steps, events = _steps_and_events(events_or_steps)
    run_id = _one_run(steps, events)
    steps = _row_order(steps)
    run_events = _run_events(events)
    clock = _clock(steps, events, run_id, run_events)
    layout = TimelineLayout(run_id=run_id, origin=clock.origin, x_label=clock.x_label,
                            rows=text_values(steps["step_key"]), statuses=text_values(steps["status"]))
    if clock.origin is not None:
        layout.run_events = [(phase, clock.sec(t)) for phase, t in run_events]
        layout.run_end = clock.sec(clock.run_end) if clock.run_end is not None else None
    if layout.rows:
        _add_steps(layout, steps, clock)
    elif events is not None:
        layout.state = _run_state(run_events, events.attrs.get("status"))
    else:
        layout.state = "no steps"  # a steps frame does not say whether the run is queued or never ran
    return layout


def timeline_title(layout: TimelineLayout) -> str:
    """``Run 1a2b3c4d · 8 steps, 1 failed, 2 skipped, last step done at 8.200 s``."""
    head = f"Run {layout.run_id[:8]}" if layout.run_id else "Run"
    if layout.state is not None:
        return f"{head} · {layout.state}"
    n = len(layout.rows)
    parts = [f"{n} step{'s' if n != 1 else ''}"]
    for status, word in (("FAILURE", "failed"), ("CANCELED", "canceled"), ("IN_PROGRESS", "running"),
                         ("SKIPPED", "skipped")):
        count = layout.statuses.count(status)
        if count:
            parts.append(f"{count} {word}")
    if layout.done_at is not None:
        parts.append(f"last step done at {duration_text(layout.done_at)}")
    ended = [phase for phase, _ in layout.run_events if phase in _ENDED]
    if ended and ended[-1] == "canceled":
        parts.append("run canceled")
    return f"{head} · " + ", ".join(parts)
