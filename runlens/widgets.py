"""Notebook widgets: a run's timeline with the CLI's filters, and a runs browser.

>>> from runlens.widgets import timeline, runs_browser
>>> timeline(run_id)                          # doctest: +SKIP
>>> timeline(run_id, follow=True)             # a run in progress, updated as events arrive  # doctest: +SKIP
>>> runs_browser(job="etl_job")               # doctest: +SKIP

The widgets only wire controls to the library: filtering is
:func:`runlens.filters.filter_events` (the CLI's ``--type``/``--step``/``--level``),
the Gantt is :func:`runlens.plotting.plot_timeline`, step numbers are
:func:`runlens.steps.step_durations` and :func:`runlens.summary.run_summary`.

Figures are drawn on :class:`matplotlib.figure.Figure` objects that pyplot never sees
and are shipped to the frontend as PNG: nothing accumulates in ``plt.get_fignums()``,
the inline backend never shows a stray copy at the end of a cell, and a follow thread
can redraw without touching pyplot's global state.

``import runlens`` does not import this module; ipywidgets is imported here, on first
use of ``runlens.widgets``.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import pandas as pd

from .errors import InvalidArgument, RunlensError, RunlensWarning
from .filters import filter_events
from .frames import concat_events, empty_events_frame, require_kind
from .steps import step_durations
from .summary import run_summary
from .text import MISSING, duration_text, iso_utc
from .trends import compare_step_durations
from .vocabulary import LEVELS, TERMINAL_STATUSES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .client import Client

__all__ = ["RunsBrowser", "Timeline", "runs_browser", "timeline"]

#: Columns of the events tables, in this order.
#: Lines of a step's captured stderr the timeline's step panel shows.
STDERR_LINES = 20
TABLE_COLUMNS = ("seq", "timestamp", "level", "event_type", "step_key", "message", "error_class")
#: Longer messages are cut in the tables (the frame keeps them whole).
MESSAGE_CHARS = 400

# Rendering goes through one lock: matplotlib is not thread-safe in general, and a
# follow thread redraws while the notebook's main thread may be drawing too.
_DRAW_LOCK = threading.Lock()
_NONE = MISSING
# The runs browser keeps the events of this many finished runs (oldest fetch dropped first).
_CACHED_RUNS = 16


# --------------------------------------------------------------------------- helpers


def _default_client(client: Client | None) -> Client:
    if client is not None:
        return client
    from .client import Client

    return Client()


def _png_output(fig: Figure, text: str, dpi: int = 90) -> dict:
    """An Output widget entry holding ``fig`` as a PNG (no pyplot involved)."""
    buffer = io.BytesIO()
    with _DRAW_LOCK:
        # No bbox_inches="tight": the figure's constrained layout already fits its labels and
        # legend, and "tight" lays the figure out and draws it once more (~13% of the first
        # paint of a 121-step Gantt).
        fig.savefig(buffer, format="png", dpi=dpi)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"output_type": "display_data", "data": {"image/png": data, "text/plain": text}, "metadata": {}}


def _text_output(text: str) -> dict:
    return {"output_type": "display_data", "data": {"text/plain": text}, "metadata": {}}


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# What a run without steps is doing, by status: the status bar and the empty Gantt say it.
_WAITING = {
    "QUEUED": "queued: waiting in the run queue, no steps yet",
    "NOT_STARTED": "not started: created but not launched, no steps yet (it may never start)",
    "STARTING": "starting: its run worker is starting, no steps yet",
}
_RUN_START_TYPES = ("RUN_START", "PIPELINE_START")


def _no_steps_note(status: str | None, events: pd.DataFrame) -> str | None:
    """Why a run has no steps, when its status says: queued, not started, canceled before it started."""
    if status in _WAITING:
        return _WAITING[status]
    if status == "CANCELED" and not events["event_type"].astype(object).isin(_RUN_START_TYPES).any():
        return "canceled before it started: no steps"
    return None


def _ran(runs: pd.DataFrame) -> pd.Series:
    """Which listed runs ran: terminal, with a start before their end.

    A run canceled while queued has ``startTime == endTime`` though it never started.
    """
    terminal = runs["status"].astype(object).isin(TERMINAL_STATUSES)
    return terminal & runs["started"].notna() & runs["ended"].notna() & (runs["ended"] > runs["started"])


def _table_html(frame: pd.DataFrame, max_rows: int, *, tail: bool = False, what: str = "events") -> str:
    """An HTML table of at most ``max_rows`` rows of an events frame, with a note."""
    n = len(frame)
    shown = frame.tail(max_rows) if tail else frame.head(max_rows)
    if n == 0:
        return f"<p><i>no {what}</i></p>"
    columns = [c for c in TABLE_COLUMNS if c in shown.columns]
    view = shown[columns].copy()
    if "timestamp" in view.columns:
        view["timestamp"] = view["timestamp"].map(iso_utc)
    if "message" in view.columns:
        message = view["message"].astype(object).fillna("")
        view["message"] = [m if len(m) <= MESSAGE_CHARS else m[:MESSAGE_CHARS] + " …" for m in message]
    note = f"{n:,} {what}"
    if n > max_rows:
        note += f"; showing the {'last' if tail else 'first'} {max_rows:,} (storage order)"
    table = view.to_html(index=False, escape=True, na_rep="", border=0, classes="runlens-table")
    # Messages wrap (keeping their line breaks); the other columns do not: a browser otherwise
    # breaks timestamps at their hyphens to make room for the messages.
    wraps = "".join(f".runlens-table td:nth-child({i + 1}){{white-space:pre-wrap}}"
                    for i, c in enumerate(columns) if c in ("message", "error_class"))
    style = ("<style>.runlens-table td{white-space:nowrap;vertical-align:top;text-align:left;"
             f"font-family:monospace;font-size:11px}}{wraps}.runlens-table th{{text-align:left}}</style>")
    return (f"{style}<div style='font-size:12px'><b>{escape(note)}</b></div>"
            f"<div style='max-height:380px;overflow:auto'>{table}</div>")


def _set_options(control: widgets.Widget, options: list, *, multiple: bool) -> None:
    """Replace a selection's options, keeping what was selected if still offered."""
    values = [v for _, v in options]
    if [tuple(o) for o in control.options] == [tuple(o) for o in options]:
        return
    old = control.value
    control.options = options
    if multiple:
        control.value = tuple(v for v in old if v in values)
    else:
        control.value = old if old in values else values[0]


def _descendants(box: widgets.Widget) -> list[widgets.Widget]:
    """Every widget inside ``box`` (not ``box`` itself), deepest first."""
    out: list[widgets.Widget] = []
    for child in getattr(box, "children", None) or ():
        out += _descendants(child)
        out.append(child)
    return out


# --------------------------------------------------------------------------- timeline


def _checked_timeline_input(events: pd.DataFrame | None, run_id: str | None, client: Client | None, follow: bool,
                            interval: float, max_rows: int) -> tuple[pd.DataFrame, str | None]:
    """The events and run id a :class:`Timeline` shows; InvalidArgument for what it cannot."""
    if events is None:
        if run_id is None:
            raise InvalidArgument("give an events frame or a run id")
        events = empty_events_frame(run_id)
    require_kind(events, "events", func="Timeline")
    present = [str(r) for r in pd.unique(events["run_id"].dropna())]
    if len(present) > 1:
        raise InvalidArgument(f"a timeline shows one run; this frame holds {len(present)}: "
                              "select one with frame[frame.run_id == run_id]")
    if run_id is None:
        run_id = present[0] if present else None
    if interval <= 0 or max_rows < 1:
        raise InvalidArgument("interval must be positive and max_rows at least 1")
    if follow:
        if run_id is None or client is None:
            raise InvalidArgument("follow=True needs a run id and a client")
        if len(events) and (events.attrs.get("cursor") is None or events.attrs.get("complete") is False
                            or events.attrs.get("filtered")):
            raise InvalidArgument("to follow on from a frame it must be a complete, unfiltered "
                                  "Client.events() result (attrs['cursor']); pass the run id instead")
    return events, run_id


class Timeline(widgets.VBox):
    """A run's Gantt chart and events table, filtered like the CLI, optionally live.

    Build it with :func:`timeline`. The controls are attributes, so code (and tests)
    can drive them: set ``types.value``, ``step.value``, ``levels.value`` or
    ``step_select.value`` and the table, the Gantt and the step panel follow.

    Attributes
    ----------
    run_id : str or None
    events : pandas.DataFrame
        Every event received so far, in storage order (grows while following).
    steps : pandas.DataFrame
        ``step_durations(events)``.
    types : ipywidgets.SelectMultiple
        Event types present in the run (``--type``); none selected means all.
    step : ipywidgets.Text
        Case-insensitive substring of the step key (``--step``); also narrows the Gantt.
    levels : ipywidgets.SelectMultiple
        Levels to keep, exact membership (``--level``); none selected means all.
    step_select : ipywidgets.Dropdown
        One step whose events and error are shown in ``detail``.
    status_bar, table, detail : ipywidgets.HTML
    plot : ipywidgets.Output
        The Gantt, as one PNG.
    figure : matplotlib.figure.Figure or None
        The figure last drawn (not registered with pyplot).
    redraws : int
        How many times the Gantt was drawn.
    done : threading.Event
        Set once the widget has all the run's events: at once without ``follow``, when
        the run ended and its last events were drained with it, or when following failed
        or was stopped.
    status : str or None
        The run's status as last seen on the server.
    error : Exception or None
        What stopped following, if it failed.
    batches : list of dict
        While following, one dict per batch of new events: ``received`` (UTC), ``n``,
        ``first_seq``, ``last_seq``, ``first_event`` and ``last_event`` (the batch's
        oldest and newest event times), to measure how far behind the widget runs.
    transport : str or None
        While following: ``"websocket"`` (events pushed by the webserver) or
        ``"polling"`` (see :meth:`runlens.Client.follow`); shown in the status line.
    redraw_every : float
        While following, the table and the Gantt are redrawn at most this often (and
        never more often than three times the last redraw took), so a log storm pushed
        event by event does not freeze the notebook; 0 redraws on every batch.
    """

    def __init__(
        self,
        events: pd.DataFrame | None = None,
        *,
        run_id: str | None = None,
        client: Client | None = None,
        follow: bool = False,
        interval: float = 2.0,
        grace: float = 1.0,
        max_rows: int = 500,
        status: str | None = None,
        push: bool | None = None,
        redraw_every: float = 0.5,
    ) -> None:
        events, run_id = _checked_timeline_input(events, run_id, client, follow, interval, max_rows)
        self.run_id = run_id
        self.client = client
        self.interval = float(interval)
        self.grace = float(grace)
        self.max_rows = int(max_rows)
        self.following = bool(follow)
        self.status = status
        self.error: BaseException | None = None
        self.events = events
        self.steps = step_durations(events)
        self.figure: Figure | None = None
        self.redraws = 0
        self.polls = 0
        self.batches: list[dict] = []
        self.push = push
        self.transport: str | None = None
        self.redraw_every = float(redraw_every)
        self._pending: list[pd.DataFrame] = []  # batches received since the last redraw
        self._next_refresh = 0.0
        self._stderr: dict[str, tuple[list[str], str | None]] = {}
        self.done = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._quiet = False
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        super().__init__(self._build_controls())
        self._refresh(redraw=True)
        if follow:
            self._thread = threading.Thread(target=self._follow, args=(events.attrs.get("cursor"),), daemon=True,
                                            name=f"runlens-follow-{run_id[:8]}")
            self._thread.start()
        else:
            self.done.set()

    def _build_controls(self) -> list[widgets.Widget]:
        """Create the status bar, filter controls, plot, table and detail, wired to their handlers."""
        self.status_bar = widgets.HTML()
        self.types = widgets.SelectMultiple(description="Types", rows=8, layout=widgets.Layout(width="360px"))
        self.step = widgets.Text(description="Step", placeholder="part of a step key, e.g. process",
                                 continuous_update=False, layout=widgets.Layout(width="300px"))
        self.levels = widgets.SelectMultiple(options=list(LEVELS), description="Levels", rows=5,
                                             layout=widgets.Layout(width="300px"))
        self.step_select = widgets.Dropdown(options=[(_NONE, None)], description="Show step",
                                            layout=widgets.Layout(width="360px"))
        self.clear_button = widgets.Button(description="Clear filters", icon="times")
        self.plot = widgets.Output()
        # What the Gantt drawn last shows, as data attributes of a hidden element (see _gantt_data_html).
        self.gantt_data = widgets.HTML(layout=widgets.Layout(display="none"))
        self.table = widgets.HTML()
        self.detail = widgets.HTML()
        self.types.observe(self._on_filter, names="value")
        self.levels.observe(self._on_filter, names="value")
        self.step.observe(self._on_step_filter, names="value")
        self.step_select.observe(self._on_step_select, names="value")
        self.clear_button.on_click(self._on_clear)
        controls = widgets.HBox([
            self.types,
            widgets.VBox([self.step, self.levels]),
            widgets.VBox([self.step_select, self.clear_button]),
        ])
        _add_dom_classes({"status": self.status_bar, "types": self.types, "step": self.step, "levels": self.levels,
                          "step-select": self.step_select, "gantt": self.plot, "gantt-data": self.gantt_data,
                          "events": self.table, "detail": self.detail})
        self.add_class("runlens-timeline")
        return [self.status_bar, controls, self.plot, self.gantt_data, self.table, self.detail]

    # ------------------------------------------------------------------ public API

    @property
    def filters(self) -> dict[str, Any]:
        """The current filters, as keyword arguments of :func:`runlens.filter_events`."""
        return {
            "types": list(self.types.value) or None,
            "step": self.step.value or None,
            "levels": list(self.levels.value) or None,
        }

    @property
    def filtered(self) -> pd.DataFrame:
        """The events matching the current filters (every row, not only those shown)."""
        return filter_events(self.events, **self.filters)

    @property
    def step_events(self) -> pd.DataFrame:
        """The events of the step chosen in ``step_select`` (exact key), or no rows."""
        key = self.step_select.value
        events = self.events
        if key is None:
            return events.iloc[0:0]
        return events[events["step_key"].astype(object) == key]

    @property
    def step_errors(self) -> pd.DataFrame:
        """The chosen step's events that carry an error (class, message, cause)."""
        rows = self.step_events
        return rows[rows["error_class"].notna()]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the widget has every event of the run (see ``done``).

        A run that is QUEUED or NOT_STARTED may never start (a run held in the queue,
        one created and never launched): give a timeout, or this blocks until
        :meth:`stop`. The status bar says when a run is queued or not started.

        Returns
        -------
        bool
            False if ``timeout`` seconds passed first (the widget keeps following).
        """
        return self.done.wait(timeout)

    def stop(self) -> None:
        """Stop following (the widget keeps what it has). Safe to call more than once."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 30.0)

    def close(self) -> None:
        """Stop following and close the widget and its controls."""
        # Also reached from Widget.__del__, possibly on an instance whose __init__ failed.
        if getattr(self, "_stop", None) is not None:
            self.stop()
        self.figure = None
        for child in _descendants(self):
            child.close()
        super().close()

    def __repr__(self) -> str:
        state = "following" if not self.done.is_set() else "stopped" if self.error else "complete"
        filters = {k: v for k, v in self.filters.items() if v}
        run = f"{self.run_id[:8]}…" if self.run_id else "?"
        return (f"Timeline(run={run}, events={len(self.events)}, steps={len(self.steps)}, "
                f"status={self.status or '?'}, {state}" + (f", filters={filters}" if filters else "") + ")")

    # ------------------------------------------------------------------ following

    def _follow(self, cursor: str | None) -> None:
        """Follow the run with :meth:`Client.follow` until it has ended (own thread)."""
        client, run_id = self.client, self.run_id
        assert client is not None and run_id is not None
        seq = int(self.events["seq"].max()) + 1 if len(self.events) else 0
        try:
            for batch in client.follow(run_id, after_cursor=cursor, start_seq=seq, interval=self.interval,
                                       grace=self.grace, stop=self._stop, on_poll=self._on_poll, push=self.push,
                                       on_transport=self._on_transport):
                self._append(batch, batch.attrs.get("cursor"))
        except Exception as exc:  # shown in the widget, kept for the caller
            self.error = exc
        finally:
            with self._lock:
                self._flush()  # the batches a throttled redraw held back
                self.following = False
                self._update_status_bar()
                self._update_table()  # the first rows again, as for a finished run
            self.done.set()

    def _on_poll(self, polls: int, status: str | None) -> None:
        self.polls = polls
        if status is not None and status != self.status:
            with self._lock:
                self.status = status
                self._update_status_bar()

    def _on_transport(self, transport: str) -> None:
        with self._lock:
            self.transport = transport
            self._update_status_bar()

    def _append(self, batch: pd.DataFrame, cursor: str | None) -> None:
        received = pd.Timestamp.now(tz="UTC")
        with self._lock:
            self.batches.append({
                "received": received, "n": len(batch),
                "first_seq": int(batch["seq"].iloc[0]), "last_seq": int(batch["seq"].iloc[-1]),
                "first_event": batch["timestamp"].min(), "last_event": batch["timestamp"].max(),
            })
            self._pending.append(batch)
            if time.monotonic() >= self._next_refresh:
                self._flush()

    def _flush(self) -> None:
        """Take the held-back batches into ``events`` and redraw; the next redraw is throttled."""
        if not self._pending:
            return
        started = time.monotonic()
        attrs = dict(self.events.attrs)
        parts = [self.events, *self._pending] if len(self.events) else self._pending
        events = concat_events(parts) if len(parts) > 1 else parts[0].reset_index(drop=True)
        attrs.update(run_ids=[self.run_id], cursor=self._pending[-1].attrs.get("cursor"), complete=True,
                     fetched_at=self.batches[-1]["received"].isoformat(timespec="seconds"))
        if self.client is not None:
            attrs.setdefault("endpoint", self.client.url)
        events.attrs = attrs
        self._pending = []
        self.events = events
        self.steps = step_durations(events)
        self._refresh(redraw=True)
        took = time.monotonic() - started
        self._next_refresh = time.monotonic() + (max(self.redraw_every, 3 * took) if self.redraw_every else 0.0)

    # ------------------------------------------------------------------ rendering

    def _on_filter(self, change: dict) -> None:
        if not self._quiet:
            with self._lock:
                self._update_table()

    def _on_step_filter(self, change: dict) -> None:
        if not self._quiet:
            with self._lock:
                self._update_table()
                self._redraw()

    def _on_step_select(self, change: dict) -> None:
        if not self._quiet:
            with self._lock:
                self._update_detail()
                self._redraw()

    def _on_clear(self, button: widgets.Button | None = None) -> None:
        with self._lock:
            self._quiet = True
            try:
                self.types.value = ()
                self.levels.value = ()
                self.step.value = ""
            finally:
                self._quiet = False
            self._update_table()
            self._redraw()

    def _refresh(self, *, redraw: bool) -> None:
        with self._lock:
            self._quiet = True
            try:
                counts = self.events["event_type"].value_counts()
                _set_options(self.types, [(f"{t} ({counts[t]:,})", t) for t in sorted(counts[counts > 0].index)],
                             multiple=True)
                steps = [(f"{k} · {str(s).lower()}", str(k)) for k, s in zip(self.steps["step_key"],
                                                                            self.steps["status"])]
                _set_options(self.step_select, [(_NONE, None), *steps], multiple=False)
            finally:
                self._quiet = False
            self._update_table()
            self._update_detail()
            if redraw:
                self._redraw()
            self._update_status_bar()

    def _update_status_bar(self) -> None:
        run = escape(self.run_id or "?")
        parts = [f"<b>run {run}</b>"]
        if self.status:
            parts.append(escape(self.status))
        parts.append(f"{len(self.events):,} events, {len(self.steps)} steps")
        note = _no_steps_note(self.status, self.events) if self.steps.empty else None
        if note:
            parts.append(f"<i>{escape(note)}</i>")
        if self.error is not None:
            parts.append(f"<span style='color:#E15759'>stopped following: {escape(str(self.error))}</span>")
        elif self.following:
            parts.append("following live over a websocket…" if self.transport == "websocket" else
                         f"following every {self.interval:g} s (polling)…" if self.transport == "polling" else
                         "following…")
        elif self.batches:
            how = (f"over a websocket, {len(self.batches)} batches" if self.transport == "websocket" else
                   f"{self.polls} polls")
            parts.append(f"followed to the end ({how}, {time.monotonic() - self._started:.1f} s)")
        self.status_bar.value = " · ".join(parts)

    def _update_table(self) -> None:
        try:
            rows = self.filtered
        except (RunlensError, ValueError, TypeError) as exc:
            self.table.value = f"<p style='color:#E15759'>{escape(str(exc))}</p>"
            return
        what = "matching events" if any(self.filters.values()) else "events"
        # While following, the newest events are the interesting ones.
        self.table.value = _table_html(rows, self.max_rows, tail=self.following, what=what)

    def _update_detail(self) -> None:
        key = self.step_select.value
        if key is None:
            self.detail.value = ""
            return
        html = [f"<h4 style='margin:6px 0'>Step {escape(key)}</h4>"]
        row = self.steps[self.steps["step_key"].astype(object) == key]
        if len(row):
            r = row.iloc[0]
            html.append(f"<div>{escape(str(r['status']))} · duration {duration_text(r['duration'])} · "
                        f"{int(r['attempts'])} attempt(s)</div>")
        for e in self.step_errors.itertuples(index=False):
            cause = f"<div><b>cause:</b> {escape(str(e.error_cause))}</div>" if pd.notna(e.error_cause) else ""
            html.append(
                "<div style='border-left:3px solid #E15759;padding:4px 8px;margin:6px 0;white-space:pre-wrap'>"
                f"<b>{escape(str(e.event_type))}</b> (seq {e.seq}): <b>{escape(str(e.error_class))}</b>: "
                f"{escape(str(e.error_message or '')).strip()}{cause}</div>"
            )
        html.append(self._stderr_html(key))
        html.append(_table_html(self.step_events, self.max_rows, what=f"events of {key}"))
        self.detail.value = "".join(html)

    def step_stderr(self, key: str) -> tuple[list[str], str | None]:
        """The last ``STDERR_LINES`` readable lines of a step's captured stderr, and a note.

        Fetched through the client (the last 32 kB only) when the step is chosen; cached
        once the run is complete. Without a client: no lines, and a note saying so.
        """
        if key in self._stderr:
            return self._stderr[key]
        if not hasattr(self.client, "logs") or self.run_id is None:
            return [], "compute logs need a client (timeline(run_id) or client=)"
        from .logs import readable_lines

        try:
            text = self.client.logs(self.run_id, key, max_bytes=32_000)
        except RunlensError as exc:
            return [], str(exc)
        lines = readable_lines(text.parts[-1].text if text.parts else str(text))
        if text.truncated:
            lines = lines[1:]  # the first line of a tail is cut
        note = "; ".join(text.notes) or None
        found = (lines[-STDERR_LINES:], note)
        if self.done.is_set():
            self._stderr[key] = found
        return found

    def _stderr_html(self, key: str) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunlensWarning)  # the note is shown
            lines, note = self.step_stderr(key)
        html = "<details open><summary><b>stderr</b> (last lines)</summary>"
        if note:
            html += f"<div><i>{escape(note)}</i></div>"
        if lines:
            html += ("<pre style='max-height:16em;overflow:auto;margin:4px 0;background:#f6f6f6'>"
                     f"{escape(chr(10).join(lines))}</pre>")
        return html + "</details>"

    def _gantt_steps(self) -> pd.DataFrame:
        steps = self.steps
        needle = self.step.value
        if needle:
            # The same code as the table and the CLI decides which steps match.
            keys = {str(k) for k in filter_events(self.events, step=needle)["step_key"].dropna()}
            steps = steps[steps["step_key"].astype(object).isin(keys)]
        return steps

    def _redraw(self) -> None:
        from .plotting import plot_timeline

        steps = self._gantt_steps()
        old = self.figure
        if steps.empty:
            self.figure = None
            if self.steps.empty:
                text = _no_steps_note(self.status, self.events) or "no step has started yet"
            else:
                text = f"no step matches {self.step.value!r}"
            self.plot.outputs = (_text_output(text),)
        else:
            fig = _new_figure(10.0, min(max(2.6, 1.3 + 0.26 * len(steps)), 30.0))
            ax = fig.subplots()
            with _DRAW_LOCK:
                plot_timeline(steps, ax=ax)
                _highlight(ax, self.step_select.value)
            self.figure = fig
            self.plot.outputs = (_png_output(fig, repr(self)),)
        if old is not None:
            old.clear()  # free the artists now; pyplot never held it, so nothing to plt.close
        self.redraws += 1
        self.gantt_data.value = _gantt_data_html(self.figure, redraws=self.redraws, events=len(self.events),
                                                 status=self.status)


def _add_dom_classes(parts: dict[str, widgets.Widget]) -> None:
    """CSS classes ``runlens-<name>`` on the parts of a widget, for stylesheets and browser tests."""
    for name, widget in parts.items():
        widget.add_class(f"runlens-{name}")


def _gantt_data_html(fig: Figure | None, **facts: Any) -> str:
    """A hidden element whose ``data-gantt`` is what ``fig`` shows, read from its artists.

    ``rows`` (step keys, top first), ``attempts`` (attempt bars per row: the patches with
    gid ``"attempt"``), ``bars`` (their total) and ``running`` (``>`` marks of attempts still
    running), plus ``facts`` (redraw count, events, status): a browser test checks the
    Gantt the page shows without reading pixels.
    """
    rows: list[str] = []
    attempts: list[int] = []
    running = 0
    if fig is not None and fig.axes:
        ax = fig.axes[0]
        rows = [label.get_text() for label in ax.get_yticklabels()]
        attempts = [0] * len(rows)
        for patch in ax.patches:
            if patch.get_gid() == "attempt":
                row = int(round(patch.get_y() + patch.get_height() / 2))
                if 0 <= row < len(rows):
                    attempts[row] += 1
        running = sum(len(line.get_xdata()) for line in ax.lines if line.get_gid() == "running")
    data = {"rows": rows, "attempts": attempts, "bars": sum(attempts), "running": running, **facts}
    return f"<div class='runlens-gantt-layout' data-gantt='{escape(json.dumps(data))}'></div>"


def _highlight(ax, key: str | None) -> None:
    if key is None:
        return
    for y, label in enumerate(ax.get_yticklabels()):
        if label.get_text() == key:
            label.set_fontweight("bold")
            ax.axhspan(y - 0.5, y + 0.5, color="#FFE9A8", zorder=0.5, linewidth=0, gid="selected_step")


def timeline(
    run_id_or_events: str | pd.DataFrame,
    *,
    client: Client | None = None,
    follow: bool = False,
    interval: float = 2.0,
    max_rows: int = 500,
    push: bool | None = None,
) -> Timeline:
    """A run's Gantt chart and events table with the CLI's filters, as a widget.

    Parameters
    ----------
    run_id_or_events : str or pandas.DataFrame
        A run id (its events are fetched) or an events frame of one run.
    client : runlens.Client, optional
        Defaults to ``Client()``, configured from the environment.
    follow : bool
        Keep following a run in progress, updating the Gantt and the table, until the
        run's status is terminal and its last events are in: each event pushed by the
        webserver over a websocket as it is stored, or, where no websocket is offered,
        polled from the last cursor every ``interval`` seconds (each event is fetched
        once; the status line says which). Redraws are throttled (``redraw_every``), so
        a log storm does not freeze the notebook. Following happens in a background
        thread: the cell returns at once. ``widget.wait()`` blocks until the end,
        ``widget.stop()`` stops early.
    interval : float
        Seconds between polls when following by polling.
    max_rows : int
        Rows shown in the tables (with a note when more match).
    push : bool, optional
        As :meth:`runlens.Client.follow`: None (default) the websocket when offered,
        True only the websocket, False always poll.

    Returns
    -------
    Timeline
        An ``ipywidgets.VBox``: ``types`` (event types), ``step`` (step key substring),
        ``levels`` and ``step_select`` controls; ``plot`` (the Gantt), ``table`` (the
        matching events) and ``detail`` (the chosen step's events and error).

    Raises
    ------
    RunNotFound
        If the server has no such run (checked before anything is drawn).

    Examples
    --------
    >>> w = timeline(run_id)                     # doctest: +SKIP
    >>> w.types.value = ("STEP_FAILURE",)        # the table now shows the failures  # doctest: +SKIP
    >>> w.step.value = "process"                 # ... of the steps matching "process"  # doctest: +SKIP
    >>> w.filtered                               # the matching rows as a frame  # doctest: +SKIP
    >>> live = timeline(run_id, follow=True)     # doctest: +SKIP
    >>> live.wait(timeout=60)                    # False if the run has not ended by then  # doctest: +SKIP
    """
    if isinstance(run_id_or_events, pd.DataFrame):
        events = run_id_or_events
        if follow:
            client = _default_client(client)
        return Timeline(events, client=client, follow=follow, interval=interval, max_rows=max_rows, push=push)
    if not isinstance(run_id_or_events, str):
        raise InvalidArgument(f"expected a run id or an events frame, not {type(run_id_or_events).__name__}")
    client = _default_client(client)
    run_id = run_id_or_events.strip()
    status = str(client.run_status(run_id))  # RunNotFound here, not in a thread
    if follow:
        return Timeline(run_id=run_id, client=client, follow=True, interval=interval, max_rows=max_rows,
                        status=status, push=push)
    events = client.events(run_id)
    return Timeline(events, run_id=run_id, client=client, max_rows=max_rows, status=status)


# --------------------------------------------------------------------------- browser


class RunsBrowser(widgets.VBox):
    """Pick a run to see its summary and timeline; pick two to compare step durations.

    Build it with :func:`runs_browser`.

    Attributes
    ----------
    client : runlens.Client
    runs : pandas.DataFrame
        The runs listed (``client.runs(...)``), newest first.
    run_select : ipywidgets.Select
        The run shown; its value is a run id.
    summary : ipywidgets.HTML
        :func:`runlens.run_summary` of the chosen run.
    timeline : Timeline or None
        The chosen run's timeline (following it when the run is in progress).
    run_a, run_b : ipywidgets.Dropdown
        The runs compared; values are run ids.
    comparison : pandas.DataFrame or None
        :func:`compare_step_durations` of ``run_a`` and ``run_b``.
    compare_table : ipywidgets.HTML
    compare_plot : ipywidgets.Output
        Side-by-side bars of the two runs' step durations.
    refresh_button : ipywidgets.Button
        Lists the runs again.
    """

    def __init__(self, client: Client | None = None, job: str | None = None, *, statuses: Sequence[str] | None = None,
                 limit: int = 50, interval: float = 2.0) -> None:
        self.client = _default_client(client)
        self.job = job
        self.statuses = statuses
        self.limit = limit
        self.interval = interval
        self.runs = pd.DataFrame()
        self.timeline: Timeline | None = None
        self.comparison: pd.DataFrame | None = None
        self.error: BaseException | None = None
        self.figure: Figure | None = None
        self._events: dict[str, pd.DataFrame] = {}

        self.status_bar = widgets.HTML()
        self.run_select = widgets.Select(description="Run", rows=8, layout=widgets.Layout(width="560px"))
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.summary = widgets.HTML()
        self.timeline_box = widgets.VBox()
        self.run_a = widgets.Dropdown(description="A", layout=widgets.Layout(width="560px"))
        self.run_b = widgets.Dropdown(description="B", layout=widgets.Layout(width="560px"))
        self.compare_table = widgets.HTML()
        self.compare_plot = widgets.Output()
        _add_dom_classes({"run-select": self.run_select, "summary": self.summary, "compare-table": self.compare_table,
                          "compare-plot": self.compare_plot})
        super().__init__([
            self.status_bar,
            widgets.HBox([widgets.VBox([self.run_select, self.refresh_button]), self.summary]),
            self.timeline_box,
            widgets.HTML("<h4 style='margin:8px 0 2px'>Compare two runs</h4>"),
            self.run_a,
            self.run_b,
            self.compare_table,
            self.compare_plot,
        ])
        self.add_class("runlens-runs-browser")
        self._quiet = False
        self.run_select.observe(self._on_run, names="value")
        self.run_a.observe(self._on_pair, names="value")
        self.run_b.observe(self._on_pair, names="value")
        self.refresh_button.on_click(lambda button: self.refresh())
        self.refresh()

    # ------------------------------------------------------------------ public API

    def refresh(self) -> None:
        """List the runs again, keeping the selections that are still listed."""
        self.runs = self.client.runs(job=self.job, statuses=self.statuses, limit=self.limit)
        options = [(_run_label(r), str(r.run_id)) for r in self.runs.itertuples(index=False)]
        ids = [v for _, v in options]
        selected, a, b = self.run_select.value, self.run_a.value, self.run_b.value
        self._quiet = True
        try:
            self.run_select.options = options
            self.run_a.options = [(_NONE, None), *options]
            self.run_b.options = [(_NONE, None), *options]
            # Defaults: the newest run shown; the latest two runs of one job that ran compared.
            self.run_select.value = selected if selected in ids else (ids[0] if ids else None)
            if a not in ids or b not in ids:
                b, a = self._default_pair()
            self.run_a.value, self.run_b.value = a, b
        finally:
            self._quiet = False
        what = f"{len(self.runs)} run(s)" + (f" of {self.job}" if self.job else "")
        count = self.runs.attrs.get("count")
        if count is not None and count > len(self.runs):
            what += f" (newest {len(self.runs)} of {count:,})"
        self.status_bar.value = f"<b>{escape(what)}</b> on {escape(self.client.url)}"
        self._show_run(self.run_select.value)
        self._compare()

    def _default_pair(self) -> tuple[str | None, str | None]:
        """``(newer, older)``: two runs of one job that ran, to compare their steps.

        The newest run that ran (terminal, started before it ended) with an earlier
        such run of its job, and that run; SUCCESS and FAILURE runs first, then
        CANCELED ones (they ran part of their steps). Queued, never-launched, still
        running and canceled-while-queued runs have no steps to compare. Without such
        a pair, ``(newest run that ran, None)`` — or the newest run — and nothing is
        compared.
        """
        runs = self.runs
        if runs.empty:
            return None, None
        ids = runs["run_id"].astype(str).tolist()
        jobs = runs["job_name"].astype(object).tolist()
        ran = _ran(runs).tolist()
        completed = (runs["status"].astype(object).isin(("SUCCESS", "FAILURE")) & _ran(runs)).tolist()
        for eligible in (completed, ran):
            for i in range(len(ids)):
                if not eligible[i]:
                    continue
                for j in range(i + 1, len(ids)):
                    if eligible[j] and jobs[j] == jobs[i]:
                        return ids[i], ids[j]
        newest_ran = next((run_id for run_id, r in zip(ids, ran) if r), ids[0])
        return newest_ran, None

    def events(self, run_id: str) -> pd.DataFrame:
        """A run's events; those of a finished run are fetched once and cached (the last 16)."""
        cached = self._events.get(run_id)
        if cached is not None:
            return cached
        events = self.client.events(run_id)
        row = self.runs[self.runs["run_id"] == run_id]
        if len(row) and str(row["status"].iloc[0]) in TERMINAL_STATUSES:
            self._events[run_id] = events
            while len(self._events) > _CACHED_RUNS:
                self._events.pop(next(iter(self._events)))
        return events

    def select(self, run_id: str, *, a: str | None = None, b: str | None = None) -> None:
        """Show ``run_id``; with ``a`` and ``b``, compare those two runs."""
        self.run_select.value = run_id
        if a is not None:
            self.run_a.value = a
        if b is not None:
            self.run_b.value = b

    def close(self) -> None:
        """Close the timeline (stopping any follow thread) and every control."""
        if getattr(self, "timeline", None) is not None:
            self.timeline.close()
        for child in _descendants(self):
            child.close()
        super().close()

    def __repr__(self) -> str:
        shown = self.run_select.value
        return (f"RunsBrowser({len(self.runs)} runs" + (f" of {self.job}" if self.job else "")
                + f", showing {shown[:8] + '…' if shown else None}"
                + (f", comparing {self.run_a.value[:8]}… and {self.run_b.value[:8]}…"
                   if self.comparison is not None else "") + ")")

    # ------------------------------------------------------------------ callbacks

    def _on_run(self, change: dict) -> None:
        if not self._quiet:
            self._show_run(change["new"])

    def _on_pair(self, change: dict) -> None:
        if not self._quiet:
            self._compare()

    def _guard(self, what: str, action: Callable[[], None], target: widgets.HTML) -> None:
        try:
            action()
            self.error = None
        except RunlensError as exc:  # the server's answer, shown where it applies
            self.error = exc
            target.value = f"<p style='color:#E15759'>could not {what}: {escape(str(exc))}</p>"

    def _show_run(self, run_id: str | None) -> None:
        if self.timeline is not None:
            self.timeline.close()
            self.timeline = None
        self.timeline_box.children = ()
        if run_id is None:
            self.summary.value = ""
            return

        def show() -> None:
            run = self.client.run(run_id)
            if run.is_finished:
                events = self.events(run_id)
                # A failed run's summary shows the failing step's stderr tail (one small request).
                logs = self.client if str(run.status) == "FAILURE" and hasattr(self.client, "logs") else None
                self.summary.value = run_summary(events, run, logs=logs)._repr_html_()
                self.timeline = Timeline(events, run_id=run_id, client=self.client, status=str(run.status))
            else:
                self.summary.value = run._repr_html_()
                self.timeline = Timeline(run_id=run_id, client=self.client, follow=True, interval=self.interval,
                                         status=str(run.status))
            self.timeline_box.children = (self.timeline,)

        self.summary.value = f"<i>loading {escape(run_id)}…</i>"
        self._guard(f"load run {run_id}", show, self.summary)

    def _compare(self) -> None:
        a, b = self.run_a.value, self.run_b.value
        self.comparison = None
        self.figure = None
        if a is None or b is None:
            self.compare_table.value = "<i>choose two runs</i>"
            self.compare_plot.outputs = ()
            return

        def compare() -> None:
            comparison = compare_step_durations(self.events(a), self.events(b))
            self.comparison = comparison
            shown = comparison.copy()
            for column in ("duration_a", "duration_b", "delta"):
                shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
            shown = shown.rename(columns={"duration_a": "A (s)", "duration_b": "B (s)", "delta": "B − A (s)",
                                          "status_a": "status A", "status_b": "status B"})
            head = f"<div style='font-size:12px'>A = {escape(a)}<br>B = {escape(b)}</div>"
            self.compare_table.value = head + shown.to_html(index=False, border=0, na_rep="")
            from .plotting import plot_step_comparison

            self.figure = _new_figure(9.0, min(max(2.4, 1.2 + 0.3 * len(comparison)), 30.0))
            plot_step_comparison(comparison, self.figure.subplots(), labels=(f"A {a[:8]}", f"B {b[:8]}"),
                                 title="Step durations: A vs B (delta = B − A)")
            self.compare_plot.outputs = (_png_output(self.figure, f"comparison of {a} and {b}"),)

        self._guard("compare the runs", compare, self.compare_table)


def _run_label(row: Any) -> str:
    created = iso_utc(row.created, timespec="seconds", missing="?")
    # Only a run that ran has a duration (one canceled while queued has start == end).
    ran = pd.notna(row.started) and pd.notna(row.ended) and row.ended > row.started
    duration = f" · {duration_text(row.ended - row.started)}" if ran else ""
    return f"{created} · {row.job_name} · {row.status}{duration} · {str(row.run_id)[:8]}"


def runs_browser(client: Client | None = None, job: str | None = None, *, statuses: Sequence[str] | None = None,
                 limit: int = 50) -> RunsBrowser:
    """Browse runs: pick one for its summary and timeline, pick two to compare them.

    Parameters
    ----------
    client : runlens.Client, optional
        Defaults to ``Client()``, configured from the environment.
    job : str, optional
        Only this job's runs.
    statuses : list of str, optional
        Only runs in these statuses, e.g. ``["FAILURE"]``.
    limit : int
        How many of the newest runs to list.

    Returns
    -------
    RunsBrowser
        An ``ipywidgets.VBox``. The newest run is shown. ``B`` is the newest run that
        ran (SUCCESS or FAILURE first, then CANCELED after a start) and has an earlier
        such run of its job, and ``A`` that earlier run: queued, never-launched and
        canceled-while-queued runs have no steps to compare.

    Examples
    --------
    >>> browser = runs_browser(job="etl_job")             # doctest: +SKIP
    >>> browser.select(new_id, a=old_id, b=new_id)        # doctest: +SKIP
    >>> browser.comparison.sort_values("delta")           # doctest: +SKIP
    """
    return RunsBrowser(client, job, statuses=statuses, limit=limit)
