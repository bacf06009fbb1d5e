"""Across-run views of "what changed": a duration trend with a percentile band, and a
heatmap of runs × steps (:func:`plot_percentile_trend`, :func:`plot_heatmap`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidArgument
from ._common import COLORS, date_axis, say_empty, style, text_values


def plot_percentile_trend(table: pd.DataFrame, step: str | None = None, ax=None, *, band: tuple[str, str] | None = None):
    """A step's (or job's) duration per period: the median line inside a percentile band.

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`runlens.rollup` result (its ``p..`` columns, ``period``).
    step : str, optional
        The step to draw (rollups ``by_step=True``); each job's line without it.
    ax : matplotlib.axes.Axes, optional
    band : (str, str), optional
        The two columns bounding the band; default the lowest and highest ``p..``
        columns other than ``p50``.

    Returns
    -------
    matplotlib.axes.Axes
        Lines carry ``gid`` ``"median"``, bands ``"band"``.
    """
    import matplotlib.pyplot as plt

    if not isinstance(table, pd.DataFrame) or "period" not in table.columns:
        raise InvalidArgument("plot_percentile_trend() takes a runlens.rollup() table")
    quantiles = [c for c in table.columns if c.startswith("p") and c[1:].replace(".", "").isdigit()]
    if "p50" not in quantiles:
        raise InvalidArgument("plot_percentile_trend() needs the p50 column: rollup(..., q=(0.5, 0.9, ...))")
    rows = table
    if step is not None:
        if "step_key" not in table.columns:
            raise InvalidArgument("this rollup is per job (by_step=False): call without step=")
        rows = table[table["step_key"].astype(str) == step]
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6), layout="constrained")
    if rows.empty:
        say_empty(ax, f"no rows for step {step!r}" if step else "no rows")
        return ax
    others = [c for c in quantiles if c != "p50"]
    lo, hi = band if band is not None else ((min(others, key=lambda c: float(c[1:])),
                                             max(others, key=lambda c: float(c[1:]))) if others else ("p50", "p50"))
    for job, group in rows.groupby(rows["job_name"].astype(object).fillna("?"), sort=True):
        group = group.sort_values("period")
        x = group["period"].dt.tz_localize(None).to_numpy()
        line = ax.plot(x, group["p50"], marker="o", markersize=3, linewidth=1.6, gid="median",
                       label=f"{job} p50" if step is None else "p50")[0]
        if hi != lo:
            ax.fill_between(x, group[lo].to_numpy(float), group[hi].to_numpy(float), color=line.get_color(),
                            alpha=0.18, linewidth=0, gid="band", label=f"{lo}–{hi}")
    ax.set_ylabel("duration (s)")
    ax.set_title(f"{step or 'runs'}: median and {lo}–{hi} per {_period_name(rows)}", loc="left")
    date_axis(ax)
    style(ax, grid="y")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    return ax


def _period_name(rows: pd.DataFrame) -> str:
    periods = pd.Series(rows["period"].dropna().unique()).sort_values()
    if len(periods) < 2:
        return "period"
    gap = periods.diff().dropna().min()
    return "day" if gap <= pd.Timedelta(days=1) else "week" if gap <= pd.Timedelta(days=7) else "month"


def plot_heatmap(steps: pd.DataFrame, runs: pd.DataFrame | None = None, ax=None, *, value: str = "duration",
                 max_steps: int = 60):
    """Runs × steps at a glance: each step's duration relative to its median, or its status.

    Parameters
    ----------
    steps : pandas.DataFrame
        :func:`runlens.step_durations` rows of many runs (``History.steps()``).
    runs : pandas.DataFrame, optional
        The runs frame: rows ordered by creation (else by first step start).
    value : {"duration", "status"}
        ``duration``: colour is the duration / the step's median over these runs, on a
        log scale (white = usual, red = slower, blue = faster); ``status``: the step's
        status in the plots' colours.
    max_steps : int, default 60
        The steps with the most variable durations when there are more.

    Returns
    -------
    matplotlib.axes.Axes
        The image carries ``gid`` ``"heatmap"``; its data is ``ax.images[0].get_array()``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap, LogNorm

    from ..frames import require_kind

    if value not in ("duration", "status"):
        raise InvalidArgument(f"value must be 'duration' or 'status', not {value!r}")
    require_kind(steps, "steps", "step_stats", func="plot_heatmap")
    frame = pd.DataFrame({"run_id": text_values(steps["run_id"]), "step_key": text_values(steps["step_key"]),
                          "status": text_values(steps["status"]),
                          "duration": pd.to_timedelta(steps["duration"]).dt.total_seconds().to_numpy(),
                          "start": pd.to_datetime(steps["start"], utc=True).to_numpy()})
    order = _run_order(frame, runs)
    step_order = (frame.groupby("step_key")["start"].median().sort_values(kind="stable").index.tolist())
    grid = frame.pivot_table(index="run_id", columns="step_key", values="duration", aggfunc="first")
    grid = grid.reindex(index=order, columns=step_order)
    if grid.shape[1] > max_steps:
        spread = (np.log(grid.clip(lower=1e-3)).std()).sort_values(ascending=False)
        grid = grid[[c for c in step_order if c in set(spread.index[:max_steps])]]
    if ax is None:
        _, ax = plt.subplots(figsize=(min(max(5.5, 2 + 0.35 * grid.shape[1]), 16),
                                      min(max(3.0, 1.5 + 0.22 * grid.shape[0]), 14)),
                             layout="constrained")
    if grid.empty:
        say_empty(ax, "no steps")
        return ax
    if value == "duration":
        ratio = grid / grid.median()
        data = np.ma.masked_invalid(ratio.to_numpy(float))
        span = float(np.nanmax(np.abs(np.log(ratio.clip(lower=1e-3).to_numpy(float))))) if ratio.notna().any().any() else 1.0
        span = max(np.exp(span), 1.5)
        image = ax.imshow(data, aspect="auto", cmap="RdBu_r", norm=LogNorm(1 / span, span), interpolation="nearest",
                          gid="heatmap")
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.01)
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

        ticks = [t for t in (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16, 32) if 1 / span <= t <= span]
        bar.ax.yaxis.set_major_locator(FixedLocator(ticks))
        bar.ax.yaxis.set_minor_locator(NullLocator())
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        bar.set_label("duration / the step's median")
    else:
        statuses = ["SUCCESS", "FAILURE", "CANCELED", "SKIPPED", "IN_PROGRESS"]
        table = frame.pivot_table(index="run_id", columns="step_key", values="status", aggfunc="first")
        table = table.reindex(index=grid.index, columns=grid.columns)
        codes = table.apply(lambda col: col.map({s: i for i, s in enumerate(statuses)})).to_numpy(float)
        image = ax.imshow(np.ma.masked_invalid(codes), aspect="auto", interpolation="nearest", vmin=-0.5,
                          vmax=len(statuses) - 0.5, cmap=ListedColormap([COLORS[s] for s in statuses]), gid="heatmap")
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.01, ticks=range(len(statuses)))
        bar.ax.set_yticklabels([s.lower().replace("_", " ") for s in statuses])
    ax.set_xticks(range(grid.shape[1]), labels=grid.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(grid.shape[0]), labels=[_run_label(r, runs) for r in grid.index], fontsize=7)
    ax.set_xlabel("step")
    ax.set_ylabel("run (oldest on top)")
    ax.set_title(f"{grid.shape[0]} runs × {grid.shape[1]} steps: {value}", loc="left")
    return ax


def _run_order(frame: pd.DataFrame, runs: pd.DataFrame | None) -> list[str]:
    first = frame.groupby("run_id")["start"].min()
    if runs is not None:
        created = pd.Series(pd.to_datetime(runs["created"], utc=True).to_numpy(),
                            index=runs["run_id"].astype(str).to_numpy())
        first = created.reindex(first.index).fillna(first)
    return first.sort_values(kind="stable").index.tolist()


def _run_label(run_id: Any, runs: pd.DataFrame | None) -> str:
    return str(run_id)[:8]
