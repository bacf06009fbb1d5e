"""Timeline and step-duration plots of Dagster runs (matplotlib).

Every function takes ``ax=None`` and returns the :class:`~matplotlib.axes.Axes` it drew
on; none calls ``plt.show()``. matplotlib is imported inside the functions, so
``import runlens`` stays light. Without ``ax``, a figure sized to the number of steps is
made with ``pyplot`` (so notebooks display it); close it with ``plt.close(ax.figure)``
when drawing many in a loop.

What is drawn carries a ``gid`` so it can be found again: timeline bars are ``"attempt"``,
``"retry_wait"`` and ``"worker_startup"``; markers ``"skipped"`` and ``"running"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .steps import step_durations

__all__ = ["COLORS", "plot_step_durations", "plot_timeline"]

#: Colours by meaning (Tableau 10): attempts by how they ended, waits and start-up light.
COLORS = {
    "SUCCESS": "#59A14F",
    "FAILURE": "#E15759",
    "RETRIED": "#F28E2B",       # an attempt that failed and was retried
    "IN_PROGRESS": "#4E79A7",
    "SKIPPED": "#8C8C8C",
    "retry_wait": "#EDEDED",
    "retry_wait_edge": "#A5A5A5",
    "worker_startup": "#E4D8F0",
    "worker_startup_edge": "#9A7BBF",
    "text": "#4A4A4A",
    "band": "#F7F7F7",
}

_LABEL_COLORS = {"FAILURE": COLORS["FAILURE"], "SKIPPED": COLORS["SKIPPED"], "IN_PROGRESS": COLORS["IN_PROGRESS"]}


# --------------------------------------------------------------------------- shared


def _steps_of(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``(steps, events)`` from an events frame or a :func:`step_durations` frame."""
    if "attempt_spans" in frame.columns and "status" in frame.columns:
        return frame, None
    if "event_type" in frame.columns:
        return step_durations(frame), frame
    raise TypeError("expected an events frame or a step_durations() frame")


def _new_axes(n_rows: int, *, width: float = 11.0, row: float = 0.24, extra: float = 1.3):
    import matplotlib.pyplot as plt

    height = min(max(2.6, extra + row * max(n_rows, 1)), 120.0)
    _, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return ax


def _tick_size(n_rows: int) -> float:
    return 9 if n_rows <= 30 else 8 if n_rows <= 60 else 7 if n_rows <= 100 else 6


def _seconds(value: Any) -> float:
    return pd.Timedelta(value).total_seconds()


def _fmt_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(seconds, 60)
    return f"{int(minutes)} min {sec:02.0f} s" if minutes < 60 else f"{int(minutes // 60)} h {int(minutes % 60):02d} min"


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", color="#E3E3E3", linewidth=0.6)
    ax.set_axisbelow(True)


def _row_order(steps: pd.DataFrame) -> pd.DataFrame:
    """Steps by start (end, then last event when not started), skipped last."""
    skipped = (steps["status"] == "SKIPPED").to_numpy()
    when = steps["start"].fillna(steps["end"])
    if "last_event" in steps.columns:
        when = when.fillna(steps["last_event"])
        when = when.where(~skipped, steps["last_event"])
    keys = pd.DataFrame({"skipped": skipped, "when": when, "key": steps["step_key"].astype(str)})
    order = keys.sort_values(["skipped", "when", "key"], kind="stable", na_position="last").index
    return steps.loc[order].reset_index(drop=True)


# --------------------------------------------------------------------------- timeline


def _timeline_clock(steps: pd.DataFrame, events: pd.DataFrame | None, run_id: Any):
    """``(origin, now, origin_is_run_start, run_end)``: x = 0, where open bars end, and the
    run's terminal event (None if not seen)."""
    attrs = steps.attrs
    if events is not None:
        et = events["event_type"]
        starts = events.loc[et.isin(["RUN_START", "PIPELINE_START"]), "timestamp"]
        origin = starts.min() if len(starts) else None
        now = events["timestamp"].max()
        ends = events.loc[et.isin(["RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED", "PIPELINE_SUCCESS",
                                   "PIPELINE_FAILURE", "PIPELINE_CANCELED"]), "timestamp"]
        run_end = ends.max() if len(ends) else None
    else:
        origin = attrs.get("run_start", {}).get(run_id)
        now = attrs.get("run_last_event", {}).get(run_id)
        run_end = attrs.get("run_end", {}).get(run_id)
    known = [s for spans in steps["attempt_spans"] for pair in spans for s in pair if s is not None]
    known += [s for spans in steps.get("worker_spans", []) for pair in spans for s in pair if s is not None]
    for column in ("start", "end", "last_event"):
        if column in steps.columns:
            known += [t for t in steps[column] if not pd.isna(t)]
    is_run_start = origin is not None and not pd.isna(origin)
    if not is_run_start:
        origin = min(known) if known else pd.Timestamp(0, tz="UTC")
    if now is None or pd.isna(now):
        now = max(known) if known else origin
    run_end = None if run_end is None or pd.isna(run_end) else pd.Timestamp(run_end)
    return pd.Timestamp(origin), pd.Timestamp(now), is_run_start, run_end


def plot_timeline(events_or_steps: pd.DataFrame, ax=None, *, absolute: bool = False, title: str | None = None):
    """Gantt chart of one run: a row per step, a bar per attempt.

    Parameters
    ----------
    events_or_steps : pandas.DataFrame
        The run's events frame, or its :func:`runlens.step_durations` frame.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default a new figure whose height follows the number of steps.
    absolute : bool
        x axis in UTC date-times instead of seconds since the run started (RUN_START; the
        first step event when the log has none).
    title : str, optional
        Defaults to the run id, step counts and wall time.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Rows follow the steps' start (top first), skipped steps last with an ``x`` marker.
    Attempts are bars coloured by how they ended: green success, red failure, orange
    failed-then-retried, blue still running (open-ended to the run's last event, with a
    ``>`` marker). Retry waits are light hatched bars between attempts, worker process
    start-ups lavender dotted bars ahead of them. Each step's duration is written at its
    right. Patches carry ``gid`` ``"attempt"``, ``"retry_wait"`` or ``"worker_startup"``.

    Examples
    --------
    >>> ax = plot_timeline(events)                      # doctest: +SKIP
    >>> ax.figure.savefig("timeline.png", dpi=150)      # doctest: +SKIP
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    steps, events = _steps_of(events_or_steps)
    runs = pd.unique(steps["run_id"].dropna())
    if len(runs) > 1:
        raise ValueError(
            f"plot_timeline draws one run; this frame holds {len(runs)} "
            "(select one: frame[frame.run_id == run_id])"
        )
    run_id = runs[0] if len(runs) else None
    if events is not None and run_id is not None and events["run_id"].nunique() > 1:
        events = events[events["run_id"] == run_id]
    steps = _row_order(steps)
    origin, now, from_run_start, run_end = _timeline_clock(steps, events, run_id)
    n = len(steps)
    if ax is None:
        ax = _new_axes(n)

    def sec(t) -> float:
        return _seconds(pd.Timestamp(t) - origin)

    bars: dict[str, dict[str, list]] = {
        k: {"y": [], "left": [], "width": [], "color": []} for k in ("retry_wait", "worker_startup", "attempt")
    }
    running_ends: list[tuple[float, int]] = []
    skipped_marks: list[tuple[float, int]] = []
    notes: list[tuple[float, int, str, str]] = []
    present: set[str] = set()

    def bar(kind: str, y: int, start: float, end: float, color: str) -> None:
        b = bars[kind]
        b["y"].append(y)
        b["left"].append(start)
        b["width"].append(end - start)
        b["color"].append(color)

    now_s = sec(now)
    for y, row in enumerate(steps.itertuples(index=False)):
        status = str(row.status)
        for s, e in getattr(row, "worker_spans", None) or []:
            if e is not None:
                bar("worker_startup", y, sec(s), sec(e), COLORS["worker_startup"])
                present.add("worker_startup")
        if status == "SKIPPED":
            at = row.end if not pd.isna(row.end) else getattr(row, "last_event", pd.NaT)
            x = sec(at) if not pd.isna(at) else 0.0
            skipped_marks.append((x, y))
            notes.append((x, y, "skipped", COLORS["SKIPPED"]))
            present.add("SKIPPED")
            continue
        spans = list(row.attempt_spans)
        end_x = None
        for j, (s, e) in enumerate(spans):
            last = j == len(spans) - 1
            if e is None:
                color, e_x = COLORS["IN_PROGRESS"], now_s
                running_ends.append((now_s, y))
                present.add("IN_PROGRESS")
            else:
                e_x = sec(e)
                if not last or status == "IN_PROGRESS":
                    color = COLORS["RETRIED"]
                    present.add("RETRIED")
                else:
                    color = COLORS.get(status, COLORS["SUCCESS"])
                    present.add(status)
            if j > 0 and spans[j - 1][1] is not None:
                bar("retry_wait", y, sec(spans[j - 1][1]), sec(s), COLORS["retry_wait"])
                present.add("retry_wait")
            bar("attempt", y, sec(s), e_x, color)
            end_x = e_x
        if status == "IN_PROGRESS" and spans and spans[-1][1] is not None:
            # Up for retry right now: the wait runs to the last event seen.
            bar("retry_wait", y, sec(spans[-1][1]), now_s, COLORS["retry_wait"])
            running_ends.append((now_s, y))
            present.add("retry_wait")
            end_x = now_s
        if end_x is None:
            continue
        if not pd.isna(row.duration):
            text = _fmt_seconds(_seconds(row.duration))
        elif not pd.isna(row.start):
            text = f"running {_fmt_seconds(max(now_s - sec(row.start), 0.0))}"
        else:
            text = ""
        if row.attempts > 1:
            text += f" · {row.attempts} attempts"
        if status == "FAILURE" and isinstance(row.error_class, str):
            text += f" · {row.error_class}"
        notes.append((end_x, y, text, COLORS["FAILURE"] if status == "FAILURE" else COLORS["text"]))

    # Coordinates: seconds since origin, or matplotlib date numbers.
    if absolute:
        import matplotlib.dates as mdates

        base = mdates.date2num(origin.tz_convert("UTC").tz_localize(None).to_pydatetime())

        def to_x(seconds: float) -> float:
            return base + seconds / 86400.0

        def to_w(seconds: float) -> float:
            return seconds / 86400.0
    else:
        def to_x(seconds: float) -> float:
            return seconds

        def to_w(seconds: float) -> float:
            return seconds

    size = _tick_size(n)
    for y in range(1, n, 2):
        ax.axhspan(y - 0.5, y + 0.5, color=COLORS["band"], zorder=0, linewidth=0, gid="row_band")
    styles = {
        "retry_wait": dict(height=0.36, edgecolor=COLORS["retry_wait_edge"], hatch="////", linewidth=0.5, zorder=2),
        "worker_startup": dict(height=0.44, edgecolor=COLORS["worker_startup_edge"], hatch="....", linewidth=0.5,
                               zorder=3),
        "attempt": dict(height=0.62, linewidth=0.8, zorder=4),
    }
    for kind, b in bars.items():
        if not b["y"]:
            continue
        style = dict(styles[kind])
        if kind == "attempt":
            style["edgecolor"] = b["color"]
        container = ax.barh(
            b["y"], [to_w(w) for w in b["width"]], left=[to_x(x) for x in b["left"]], color=b["color"],
            align="center", **style,
        )
        for patch in container.patches:
            patch.set_gid(kind)
    if running_ends:
        xs, ys = zip(*running_ends, strict=True)
        ax.plot([to_x(x) for x in xs], ys, linestyle="none", marker=">", markersize=5,
                color=COLORS["IN_PROGRESS"], zorder=5, gid="running")
        ax.axvline(to_x(now_s), color=COLORS["IN_PROGRESS"], linestyle=":", linewidth=0.8, zorder=1,
                   gid="last_event")
    if run_end is not None:
        end_s = sec(run_end)
        ax.axvline(to_x(end_s), color="#7F7F7F", linestyle="--", linewidth=0.8, zorder=1, gid="run_end")
        ax.annotate("run end", (to_x(end_s), 1), xycoords=("data", "axes fraction"), xytext=(3, -2),
                    textcoords="offset points", fontsize=_tick_size(n) - 2, color="#7F7F7F", ha="left",
                    va="top")
    if skipped_marks:
        xs, ys = zip(*skipped_marks, strict=True)
        ax.plot([to_x(x) for x in xs], ys, linestyle="none", marker="x", markersize=6, markeredgewidth=1.4,
                color=COLORS["SKIPPED"], zorder=5, gid="skipped")

    # x range: everything drawn, plus room on the right for the notes.
    lefts = [x for b in bars.values() for x in b["left"]] + [x for x, _ in skipped_marks] + [0.0]
    rights = [x + w for b in bars.values() for x, w in zip(b["left"], b["width"], strict=True)] + [x for x, _ in skipped_marks]
    rights += [sec(run_end)] if run_end is not None else []
    lo, hi = min(lefts), max(rights + [0.0])
    span = max(hi - lo, 1e-3)
    ax.set_xlim(to_x(lo - 0.01 * span), to_x(hi + 0.2 * span))
    for x, y, text, color in notes:
        if text:
            ax.annotate(text, (to_x(x), y), xytext=(6, 0), textcoords="offset points", va="center", ha="left",
                        fontsize=size - 1, color=color, annotation_clip=False, zorder=6)

    ax.set_yticks(range(n), labels=[str(k) for k in steps["step_key"]], fontsize=size)
    for label, status in zip(ax.get_yticklabels(), steps["status"].astype(str), strict=True):
        if status in _LABEL_COLORS:
            label.set_color(_LABEL_COLORS[status])
    ax.set_ylim(n - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.tick_params(axis="x", labelsize=size)
    _style(ax)
    if absolute:
        import matplotlib.dates as mdates

        locator = mdates.AutoDateLocator(tz="UTC")
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))
        ax.set_xlabel("time (UTC)", fontsize=size)
    else:
        ax.set_xlabel("seconds since run start" if from_run_start else "seconds since the first step event",
                      fontsize=size)

    if title is None:
        counts = steps["status"].astype(str).value_counts()
        parts = [f"{n} step{'s' if n != 1 else ''}"]
        for status, word in (("FAILURE", "failed"), ("IN_PROGRESS", "running"), ("SKIPPED", "skipped")):
            if counts.get(status, 0):
                parts.append(f"{counts[status]} {word}")
        ends = [t for t in steps["end"].dropna()]
        if ends and not counts.get("IN_PROGRESS", 0):
            parts.append(f"last step done at {_fmt_seconds(sec(max(ends)))}")
        title = f"Run {str(run_id)[:8] if run_id is not None else '?'} · " + ", ".join(parts)
    ax.set_title(title, loc="left", fontsize=size + 2)

    legend = {
        "SUCCESS": Patch(facecolor=COLORS["SUCCESS"], label="attempt: success"),
        "FAILURE": Patch(facecolor=COLORS["FAILURE"], label="attempt: failure"),
        "RETRIED": Patch(facecolor=COLORS["RETRIED"], label="attempt: failed, retried"),
        "IN_PROGRESS": Patch(facecolor=COLORS["IN_PROGRESS"], label="attempt: running"),
        "retry_wait": Patch(facecolor=COLORS["retry_wait"], edgecolor=COLORS["retry_wait_edge"], hatch="////",
                            label="retry wait"),
        "worker_startup": Patch(facecolor=COLORS["worker_startup"], edgecolor=COLORS["worker_startup_edge"],
                                hatch="....", label="worker start-up"),
        "SKIPPED": Line2D([], [], linestyle="none", marker="x", color=COLORS["SKIPPED"], label="skipped"),
    }
    handles = [h for k, h in legend.items() if k in present]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=size - 1,
                  frameon=False, borderaxespad=0.0)
    return ax


# --------------------------------------------------------------------------- durations


def _boxplot(ax, data, positions):
    kw = dict(positions=positions, widths=0.55, patch_artist=True, showfliers=False, manage_ticks=False,
              medianprops=dict(color="#333333", linewidth=1.2),
              boxprops=dict(facecolor="#DCE6F0", edgecolor="#6B8BAE", linewidth=0.8),
              whiskerprops=dict(color="#6B8BAE", linewidth=0.8), capprops=dict(color="#6B8BAE", linewidth=0.8))
    try:
        return ax.boxplot(data, orientation="horizontal", **kw)  # matplotlib >= 3.10
    except TypeError:
        return ax.boxplot(data, vert=False, **kw)


def plot_step_durations(steps: pd.DataFrame, ax=None, *, kind: str = "auto", runs: pd.DataFrame | None = None,
                        title: str | None = None):
    """How long steps take: one run's bars, or many runs' distributions or trends.

    Parameters
    ----------
    steps : pandas.DataFrame
        :func:`runlens.step_durations` of one run or many (an events frame is accepted,
        and for ``kind="trend"`` a :func:`runlens.duration_trend` frame).
    ax : matplotlib.axes.Axes, optional
    kind : {"auto", "bar", "box", "strip", "trend"}
        ``bar``: one horizontal bar per step, longest on top, coloured by status.
        ``box``: per step, the distribution over runs (box and points); ``strip``: the
        points only. ``trend``: duration against the run's creation time (``runs`` given)
        or start, one line per step. ``auto``: ``bar`` for one run, ``box`` for more.
    runs : pandas.DataFrame, optional
        A runs frame (:func:`runlens.frames.runs_frame`) for ``trend``'s creation times.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .steps import duration_trend

    if kind == "trend" and "attempt_spans" not in steps.columns and "run_start" in steps.columns:
        trend = steps
    else:
        steps, _ = _steps_of(steps)
        trend = None
    n_runs = steps["run_id"].nunique() if trend is None else trend["run_id"].nunique()
    if kind == "auto":
        kind = "bar" if n_runs <= 1 else "box"
    if kind not in ("bar", "box", "strip", "trend"):
        raise ValueError(f"kind must be 'auto', 'bar', 'box', 'strip' or 'trend', not {kind!r}")

    if kind == "trend":
        return _plot_trend(trend if trend is not None else duration_trend(steps, runs), ax, title)

    timed = steps[steps["duration"].notna()]
    seconds = timed["duration"].dt.total_seconds()
    if kind == "bar":
        if n_runs > 1:
            raise ValueError("kind='bar' draws one run; use kind='box' or 'trend' for several")
        order = seconds.sort_values(ascending=False, kind="stable").index
        n = len(order)
        if ax is None:
            ax = _new_axes(n, width=9.0)
        size = _tick_size(n)
        values = seconds.loc[order].to_numpy()
        colors = [COLORS.get(str(s), COLORS["SUCCESS"]) for s in timed.loc[order, "status"]]
        container = ax.barh(range(n), values, color=colors, height=0.66, zorder=3)
        for patch in container.patches:
            patch.set_gid("duration")
        top = values.max() if n else 1.0
        for y, v in enumerate(values):
            ax.annotate(_fmt_seconds(v), (v + 0.01 * top, y), va="center", fontsize=size - 1, color=COLORS["text"],
                        annotation_clip=False)
        ax.set_yticks(range(n), labels=[str(k) for k in timed.loc[order, "step_key"]], fontsize=size)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlim(0, top * 1.15 if top > 0 else 1)
        ax.set_xlabel("duration (seconds)", fontsize=size)
        left_out = len(steps) - n
        if title is None:
            run_id = steps["run_id"].dropna().astype(str)
            title = f"Step durations · run {run_id.iloc[0][:8]}" if len(run_id) else "Step durations"
            if left_out:
                title += f" ({left_out} skipped or running not shown)"
        ax.set_title(title, loc="left", fontsize=size + 2)
        ax.tick_params(axis="y", length=0)
        _style(ax)
        return ax

    # box / strip: one row per step, slowest median on top.
    frame = pd.DataFrame({"step": timed["step_key"].astype(str), "s": seconds, "status": timed["status"].astype(str)})
    medians = frame.groupby("step")["s"].median().sort_values(ascending=False, kind="stable")
    keys = list(medians.index)
    n = len(keys)
    if ax is None:
        ax = _new_axes(n, width=9.0, row=0.3)
    size = _tick_size(n)
    data = [frame.loc[frame["step"] == k, "s"].to_numpy() for k in keys]
    if kind == "box" and n:
        _boxplot(ax, data, list(range(n)))
    rng = np.random.default_rng(0)
    for y, k in enumerate(keys):
        part = frame[frame["step"] == k]
        jitter = rng.uniform(-0.18, 0.18, len(part))
        colors = [COLORS.get(s, COLORS["SUCCESS"]) for s in part["status"]]
        ax.scatter(part["s"], y + jitter, s=12, c=colors, alpha=0.8, linewidths=0, zorder=4, gid="run_point")
    ax.set_yticks(range(n), labels=keys, fontsize=size)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(left=0)
    ax.set_xlabel("duration (seconds)", fontsize=size)
    ax.set_title(title or f"Step durations across {n_runs} run{'s' if n_runs != 1 else ''}", loc="left",
                 fontsize=size + 2)
    ax.tick_params(axis="y", length=0)
    _style(ax)
    return ax


def _plot_trend(trend: pd.DataFrame, ax, title: str | None):
    import matplotlib.dates as mdates

    use_created = "created" in trend.columns and trend["created"].notna().any()
    x_col = "created" if use_created else "run_start"
    data = trend[trend["duration"].notna() & trend[x_col].notna()]
    medians = data.groupby("step_key")["duration"].median().sort_values(ascending=False, kind="stable")
    keys = list(medians.index)
    if ax is None:
        ax = _new_axes(0, width=10.0, extra=4.5)
    highlighted = set(keys[:10]) if len(keys) > 12 else set(keys)
    import matplotlib as mpl

    palette = mpl.colormaps["tab10"]
    color_i = 0
    for key in keys:
        part = data[data["step_key"] == key].sort_values(x_col)
        x = part[x_col].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        if key in highlighted:
            ax.plot(x, part["duration"], marker="o", markersize=3.5, linewidth=1.3, label=key,
                    color=palette(color_i % 10), zorder=3, gid="trend")
            color_i += 1
        else:
            ax.plot(x, part["duration"], linewidth=0.8, color="#C8C8C8", zorder=2, gid="trend")
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("duration (seconds)")
    ax.set_xlabel("run created (UTC)" if use_created else "run start (UTC)")
    more = f" (10 slowest of {len(keys)} highlighted)" if len(keys) > 12 else ""
    ax.set_title(title or f"Step durations over {data['run_id'].nunique()} runs{more}", loc="left")
    if keys:
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False, borderaxespad=0.0)
    ax.grid(axis="y", color="#E3E3E3", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax
