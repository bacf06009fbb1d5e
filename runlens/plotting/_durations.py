"""How long steps take: one run's bars, many runs' distributions (the trend is in ``_trend``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidArgument
from ..text import duration_text
from ._common import COLORS, new_axes, say_empty, style, text_values, tick_size

KINDS = ("auto", "bar", "box", "strip", "trend")


def plot_step_durations(steps: pd.DataFrame, ax=None, *, kind: str = "auto", runs: pd.DataFrame | None = None,
                        title: str | None = None):
    """How long steps take: one run's bars, or many runs' distributions or trends.

    Parameters
    ----------
    steps : pandas.DataFrame
        :func:`runlens.step_durations` of one run or many (an events frame or a
        ``Client.step_stats`` frame is accepted, and for ``kind="trend"`` a
        :func:`runlens.duration_trend` frame). Plain ``pd.concat`` of such frames works.
    ax : matplotlib.axes.Axes, optional
    kind : {"auto", "bar", "box", "strip", "trend"}
        ``bar``: one horizontal bar per step, longest on top, coloured by status.
        ``box``: per step, the distribution over runs (box and points); ``strip``: the
        points only. ``trend``: duration against the run's creation time (``runs`` given)
        or start, one line per step; the steps whose duration changed most are coloured,
        the others grey. ``auto``: ``bar`` for one run, ``box`` for more.
    runs : pandas.DataFrame, optional
        A runs frame (:func:`runlens.frames.runs_frame`) for ``trend``'s creation times.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    InvalidArgument
        For an unknown ``kind``, ``kind="bar"`` over several runs, or a frame of another kind.
    """
    from ..frames import require_kind
    from ..steps import step_durations
    from ..trends import duration_trend
    from ._trend import plot_trend

    if kind not in KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(map(repr, KINDS))}, not {kind!r}")
    accepted = ("events", "steps", "step_stats", "trend") if kind == "trend" else ("events", "steps", "step_stats")
    frame_kind = require_kind(steps, *accepted, func="plot_step_durations")
    if frame_kind == "trend":
        return plot_trend(steps, ax, title)
    if frame_kind == "events":
        steps = step_durations(steps)
    if kind == "trend":
        return plot_trend(duration_trend(steps, runs), ax, title)
    n_runs = steps["run_id"].nunique()
    if kind == "auto":
        kind = "bar" if n_runs <= 1 else "box"
    if kind == "bar":
        if n_runs > 1:
            raise InvalidArgument("kind='bar' draws one run; use kind='box' or 'trend' for several")
        return _bars(steps, ax, title)
    return _distributions(steps, ax, title, points_only=kind == "strip")


def _timed(steps: pd.DataFrame) -> pd.DataFrame:
    """Steps with a duration: key, seconds and status as plain columns."""
    timed = steps[steps["duration"].notna()]
    return pd.DataFrame({"step": text_values(timed["step_key"]),
                         "s": timed["duration"].dt.total_seconds().to_numpy(),
                         "status": text_values(timed["status"])})


def _bars(steps: pd.DataFrame, ax, title: str | None):
    """One run: a bar per timed step, longest on top, with its duration written."""
    timed = _timed(steps).sort_values("s", ascending=False, kind="stable")
    n = len(timed)
    if ax is None:
        ax = new_axes(n, width=9.0)
    size = tick_size(n)
    if not n:
        say_empty(ax, "no step has a duration yet")
    values = timed["s"].to_numpy()
    colors = [COLORS.get(s, COLORS["SUCCESS"]) for s in timed["status"]]
    container = ax.barh(range(n), values, color=colors, height=0.66, zorder=3)
    for patch in container.patches:
        patch.set_gid("duration")
    top = values.max() if n else 1.0
    for y, v in enumerate(values):
        ax.annotate(duration_text(v), (v + 0.01 * top, y), va="center", fontsize=size - 1, color=COLORS["text"],
                    annotation_clip=False)
    if n:
        ax.set_yticks(range(n), labels=list(timed["step"]), fontsize=size)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlim(0, top * 1.15 if top > 0 else 1)
    ax.set_xlabel("duration (seconds)", fontsize=size)
    if title is None:
        run_id = steps["run_id"].dropna().astype(str)
        title = f"Step durations · run {run_id.iloc[0][:8]}" if len(run_id) else "Step durations"
        left_out = len(steps) - n
        if left_out:
            title += f" ({left_out} without a duration not shown: skipped, running or canceled)"
    ax.set_title(title, loc="left", fontsize=size + 2)
    ax.tick_params(axis="y", length=0)
    style(ax)
    return ax


def _boxplot(ax, data, positions):
    kw = dict(positions=positions, widths=0.55, patch_artist=True, showfliers=False, manage_ticks=False,
              medianprops=dict(color="#333333", linewidth=1.2),
              boxprops=dict(facecolor="#DCE6F0", edgecolor="#6B8BAE", linewidth=0.8),
              whiskerprops=dict(color="#6B8BAE", linewidth=0.8), capprops=dict(color="#6B8BAE", linewidth=0.8))
    try:
        return ax.boxplot(data, orientation="horizontal", **kw)  # matplotlib >= 3.10
    except TypeError:
        return ax.boxplot(data, vert=False, **kw)


def _distributions(steps: pd.DataFrame, ax, title: str | None, *, points_only: bool):
    """Many runs: per step (slowest median on top) a box and a point per run."""
    frame = _timed(steps)
    keys = list(frame.groupby("step")["s"].median().sort_values(ascending=False, kind="stable").index)
    n = len(keys)
    if ax is None:
        ax = new_axes(n, width=9.0, row=0.3)
    size = tick_size(n)
    if not points_only and n:
        _boxplot(ax, [frame.loc[frame["step"] == k, "s"].to_numpy() for k in keys], list(range(n)))
    rng = np.random.default_rng(0)
    for y, k in enumerate(keys):
        part = frame[frame["step"] == k]
        colors = [COLORS.get(s, COLORS["SUCCESS"]) for s in part["status"]]
        ax.scatter(part["s"], y + rng.uniform(-0.18, 0.18, len(part)), s=12, c=colors, alpha=0.8, linewidths=0,
                   zorder=4, gid="run_point")
    if n:
        ax.set_yticks(range(n), labels=keys, fontsize=size)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlim(left=0)
    else:
        say_empty(ax, "no step has a duration yet")
    ax.set_xlabel("duration (seconds)", fontsize=size)
    n_runs = steps["run_id"].nunique()
    ax.set_title(title or f"Step durations across {n_runs} run{'s' if n_runs != 1 else ''}", loc="left",
                 fontsize=size + 2)
    ax.tick_params(axis="y", length=0)
    style(ax)
    return ax
