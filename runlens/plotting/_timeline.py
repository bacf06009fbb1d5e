"""The Gantt chart of one run: :func:`plot_timeline` draws a :class:`TimelineLayout`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import InvalidArgument
from ._common import COLORS, date_axis, new_axes, style, tick_size
from ._layout import TimelineLayout, timeline_layout, timeline_title

_BAR_STYLES = {
    "retry_wait": dict(height=0.36, edgecolor=COLORS["retry_wait_edge"], hatch="////", linewidth=0.5, zorder=2),
    "worker_startup": dict(height=0.44, edgecolor=COLORS["worker_startup_edge"], hatch="....", linewidth=0.5,
                           zorder=3),
    "attempt": dict(height=0.62, linewidth=0.8, zorder=4),
}
_LABEL_LOOKS = ("FAILURE", "SKIPPED", "IN_PROGRESS", "CANCELED")


def plot_timeline(events_or_steps: pd.DataFrame, ax=None, *, absolute: bool = False, title: str | None = None,
                  critical_path: Any = False):
    """Gantt chart of one run: a row per step, a bar per attempt.

    Parameters
    ----------
    events_or_steps : pandas.DataFrame
        The run's events frame, its :func:`runlens.step_durations` frame, or its
        ``Client.step_stats`` frame (Dagster's own numbers: no worker start-ups).
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default a new figure whose height follows the number of steps.
    absolute : bool
        x axis in UTC date-times instead of seconds since the run started (RUN_START; the
        first step event when the log has none).
    title : str, optional
        Defaults to the run id, step counts and wall time; for a run with no steps, what
        the run is ("queued since ..., no steps yet", "not started", "canceled while queued").
    critical_path : bool or runlens.CriticalPath, default False
        Outline the critical path's steps, link them and put their labels in bold: a
        :func:`runlens.critical_path` result, or True to compute it from the events frame
        (edges from its LOADED_INPUT events; pass ``critical_path(events, plan)`` to use the
        run's execution plan).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    InvalidArgument
        For another kind of frame, or a frame of several runs.

    Notes
    -----
    Rows follow the steps' start (top first), skipped steps last with an ``x`` marker.
    Attempts are bars coloured by how they ended: green success, red failure, orange
    failed-then-retried, brown canceled with the run, blue still running (open-ended to
    the run's last event, with a ``>`` marker). Retry waits are light hatched bars between
    attempts, worker process start-ups lavender dotted bars ahead of them. Each step's
    duration is written at its right. Patches carry ``gid`` ``"attempt"``,
    ``"retry_wait"`` or ``"worker_startup"``; the critical path's outlines ``"critical_path"``,
    its links ``"critical_link"``. The data drawn is
    ``runlens.plotting.timeline_layout(frame)``.

    Examples
    --------
    >>> ax = plot_timeline(events)                      # doctest: +SKIP
    >>> ax.figure.savefig("timeline.png", dpi=150)      # doctest: +SKIP
    """
    layout = timeline_layout(events_or_steps)
    if ax is None:
        ax = new_axes(len(layout.rows))
    size = tick_size(len(layout.rows))
    scale = _Scale.of(layout, absolute)
    if layout.rows:
        _draw_rows(ax, layout, size)
        _draw_bars(ax, layout, scale)
        _draw_marks(ax, layout, scale, size)
        _draw_notes(ax, layout, scale, size)
    else:
        _draw_empty(ax, layout, scale, size)
    path = _critical_path(events_or_steps, critical_path)
    if path is not None and layout.rows:
        _draw_critical_path(ax, layout, scale, path)
    _x_axis(ax, layout, scale, size)
    if title is None:
        title = timeline_title(layout)
        if path is not None and path.keys:
            title += "\n" + str(path)
    ax.set_title(title, loc="left", fontsize=size + 2)
    _legend(ax, layout, size, critical=path is not None and bool(path.keys))
    return ax


def _critical_path(frame: pd.DataFrame, wanted: Any) -> Any:
    from ..critical import CriticalPath, critical_path

    if wanted is False or wanted is None:
        return None
    if isinstance(wanted, CriticalPath):
        return wanted
    if wanted is True:
        return critical_path(frame)
    raise InvalidArgument(f"critical_path= takes True, False or a runlens.critical_path() result, "
                          f"not {type(wanted).__name__}")


def _draw_critical_path(ax, layout: TimelineLayout, scale: _Scale, path: Any) -> None:
    """Each chain step's span outlined, a link from each to the next, its label in bold."""
    from matplotlib.patches import Rectangle

    rows = {key: y for y, key in enumerate(layout.rows)}
    spans = []
    for key, start, end in zip(path.chain["step_key"], path.chain["start"], path.chain["end"], strict=True):
        if key not in rows:
            continue
        y, x0, x1 = rows[key], (start - layout.origin).total_seconds(), (end - layout.origin).total_seconds()
        ax.add_patch(Rectangle((scale.x(x0), y - 0.42), scale.width(x1 - x0), 0.84, fill=False,
                               edgecolor=COLORS["critical"], linewidth=1.8, zorder=7, gid="critical_path"))
        spans.append((y, x0, x1))
    for (y0, _, end0), (y1, start1, _) in zip(spans, spans[1:], strict=False):
        ax.annotate("", xy=(scale.x(start1), y1), xytext=(scale.x(end0), y0),
                    arrowprops=dict(arrowstyle="->", color=COLORS["critical"], linewidth=1.2, linestyle="--",
                                    shrinkA=0, shrinkB=0), zorder=7, gid="critical_link")
    for label in ax.get_yticklabels():
        if label.get_text() in path.keys:
            label.set_fontweight("bold")


@dataclass(frozen=True)
class _Scale:
    """Seconds since the origin → x: the same seconds, or matplotlib date numbers."""

    base: float = 0.0
    per_unit: float = 1.0
    absolute: bool = False

    @classmethod
    def of(cls, layout: TimelineLayout, absolute: bool) -> _Scale:
        if not absolute or layout.origin is None:
            return cls()
        import matplotlib.dates as mdates

        origin = layout.origin.tz_convert("UTC").tz_localize(None).to_pydatetime()
        return cls(mdates.date2num(origin), 86400.0, True)

    def x(self, seconds: float) -> float:
        return self.base + seconds / self.per_unit

    def width(self, seconds: float) -> float:
        return seconds / self.per_unit


def _draw_rows(ax, layout: TimelineLayout, size: float) -> None:
    """Alternate bands, the step keys as y labels (coloured when the status matters), row 0 on top."""
    n = len(layout.rows)
    for y in range(1, n, 2):
        ax.axhspan(y - 0.5, y + 0.5, color=COLORS["band"], zorder=0, linewidth=0, gid="row_band")
    ax.set_yticks(range(n), labels=layout.rows, fontsize=size)
    for label, status in zip(ax.get_yticklabels(), layout.statuses, strict=True):
        if status in _LABEL_LOOKS:
            label.set_color(COLORS[status])
    ax.set_ylim(n - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)


def _draw_bars(ax, layout: TimelineLayout, scale: _Scale) -> None:
    for kind, bar_style in _BAR_STYLES.items():
        bars = [b for b in layout.bars if b.kind == kind]
        if not bars:
            continue
        colors = [COLORS[b.look] for b in bars]
        extra = {"edgecolor": colors} if kind == "attempt" else {}
        container = ax.barh([b.row for b in bars], [scale.width(b.end - b.start) for b in bars],
                            left=[scale.x(b.start) for b in bars], color=colors, align="center",
                            **{**bar_style, **extra})
        for patch in container.patches:
            patch.set_gid(kind)


def _draw_marks(ax, layout: TimelineLayout, scale: _Scale, size: float) -> None:
    """``>`` where running bars end, ``x`` for skipped steps, lines at the last event and the run's end."""
    looks = {"running": dict(marker=">", markersize=5, color=COLORS["IN_PROGRESS"]),
             "skipped": dict(marker="x", markersize=6, markeredgewidth=1.4, color=COLORS["SKIPPED"])}
    for kind, look in looks.items():
        marks = [m for m in layout.marks if m.kind == kind]
        if marks:
            ax.plot([scale.x(m.x) for m in marks], [m.row for m in marks], linestyle="none", zorder=5, gid=kind,
                    **look)
    if layout.last_event is not None:
        ax.axvline(scale.x(layout.last_event), color=COLORS["IN_PROGRESS"], linestyle=":", linewidth=0.8,
                   zorder=1, gid="last_event")
    if layout.run_end is not None:
        ax.axvline(scale.x(layout.run_end), color=COLORS["muted"], linestyle="--", linewidth=0.8, zorder=1,
                   gid="run_end")
        ax.annotate("run end", (scale.x(layout.run_end), 1), xycoords=("data", "axes fraction"), xytext=(3, -2),
                    textcoords="offset points", fontsize=size - 2, color=COLORS["muted"], ha="left", va="top")


def _draw_notes(ax, layout: TimelineLayout, scale: _Scale, size: float) -> None:
    lo, hi = layout.x_range()
    ax.set_xlim(scale.x(lo), scale.x(hi))
    for note in layout.notes:
        if note.text:
            ax.annotate(note.text, (scale.x(note.x), note.row), xytext=(6, 0), textcoords="offset points",
                        va="center", ha="left", fontsize=size - 1, color=COLORS[note.look],
                        annotation_clip=False, zorder=6)


def _draw_empty(ax, layout: TimelineLayout, scale: _Scale, size: float) -> None:
    """No step rows: the run-level events as labelled lines, and what the run is in words."""
    for i, (phase, x) in enumerate(layout.run_events):
        ax.axvline(scale.x(x), color=COLORS["muted"], linestyle="--", linewidth=0.8, gid="run_event")
        # Stepped down: RUN_CANCELING and RUN_CANCELED are often milliseconds apart.
        ax.annotate(phase, (scale.x(x), 1), xycoords=("data", "axes fraction"), xytext=(3, -2 - 11 * i),
                    textcoords="offset points", fontsize=size - 1, color=COLORS["muted"], ha="left", va="top")
    lo, hi = layout.x_range()
    ax.set_xlim(scale.x(lo), scale.x(hi))
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.text(0.5, 0.45, "no steps yet" if "yet" in (layout.state or "") else "no steps",
            transform=ax.transAxes, ha="center", va="center", fontsize=size + 1, color=COLORS["muted"],
            gid="no_steps")
    if not layout.run_events:
        ax.set_xticks([])


def _x_axis(ax, layout: TimelineLayout, scale: _Scale, size: float) -> None:
    ax.tick_params(axis="x", labelsize=size)
    style(ax)
    if scale.absolute:
        date_axis(ax)
        ax.set_xlabel("time (UTC)", fontsize=size)
    else:
        ax.set_xlabel(layout.x_label, fontsize=size)


_LEGEND_LABELS = {
    "SUCCESS": "attempt: success",
    "FAILURE": "attempt: failure",
    "RETRIED": "attempt: failed, retried",
    "CANCELED": "attempt: canceled with the run",
    "IN_PROGRESS": "attempt: running",
    "retry_wait": "retry wait",
    "worker_startup": "worker start-up",
    "SKIPPED": "skipped",
}


def _legend_handle(look: str) -> Any:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    label = _LEGEND_LABELS[look]
    if look == "SKIPPED":
        return Line2D([], [], linestyle="none", marker="x", color=COLORS["SKIPPED"], label=label)
    if look in ("retry_wait", "worker_startup"):
        return Patch(facecolor=COLORS[look], edgecolor=COLORS[f"{look}_edge"], hatch=_BAR_STYLES[look]["hatch"],
                     label=label)
    return Patch(facecolor=COLORS[look], label=label)


def _legend(ax, layout: TimelineLayout, size: float, *, critical: bool = False) -> None:
    """One entry per kind of thing drawn, in a fixed order, outside the plot on the right."""
    from matplotlib.patches import Patch

    looks = layout.looks
    handles = [_legend_handle(look) for look in _LEGEND_LABELS if look in looks]
    if critical:
        handles.append(Patch(fill=False, edgecolor=COLORS["critical"], linewidth=1.8, label="critical path"))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=size - 1,
                  frameon=False, borderaxespad=0.0)
