"""Step durations over runs: the steps that changed most in colour, the others grey.

Fifty steps over two hundred runs cannot each get a colour a reader tells apart, so
:func:`trend_highlights` (plain data, no matplotlib) picks the few whose duration moved
most between the earliest and the latest runs, and :func:`plot_trend` draws them.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from ..text import duration_text
from ._common import date_axis, new_axes, say_empty, style, utc_naive

#: Tableau 10 without its grey: distinct for a reader, the others are drawn grey.
PALETTE = ("#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7")
OTHERS = "#C9C9C9"
#: At most this many coloured lines; with up to ``len(PALETTE)`` steps all are coloured.
HIGHLIGHTS = 6


class Highlight(NamedTuple):
    """A coloured step: its key, the change of its median duration (seconds), its colour."""

    step_key: str
    change: float
    color: str


def trend_highlights(data: pd.DataFrame, x: str, *, limit: int = HIGHLIGHTS) -> list[Highlight]:
    """The steps to colour, most changed first.

    The change of a step is the median of its latest third of runs minus the median of
    its earliest third (by `x`): a step that got slower or faster shows, a step that is
    merely slow or noisy does not. Steps with one run change by 0. With up to
    ``len(PALETTE)`` steps every step is coloured; with more, at most `limit`, and only
    those whose change is at least a tenth of the largest.
    """
    changes = []
    for key, part in data.sort_values(x, kind="stable").groupby("step_key", sort=False):
        durations = part["duration"].to_numpy()
        third = max(len(durations) // 3, 1)
        change = float(pd.Series(durations[-third:]).median() - pd.Series(durations[:third]).median())
        changes.append((str(key), change, float(pd.Series(durations).median())))
    ranked = sorted(changes, key=lambda c: (-abs(c[1]), -c[2], c[0]))
    if len(ranked) > len(PALETTE):
        # Among many steps, colour only real movers: noise drawn in colour would read as news.
        largest = abs(ranked[0][1])
        ranked = [c for c in ranked[:limit] if abs(c[1]) >= 0.1 * largest and c[1] != 0] or ranked[:1]
    return [Highlight(key, change, PALETTE[i]) for i, (key, change, _) in enumerate(ranked)]


def plot_trend(trend: pd.DataFrame, ax, title: str | None):
    """Draw a :func:`runlens.duration_trend` frame: a line per step over run time."""
    use_created = "created" in trend.columns and trend["created"].notna().any()
    x = "created" if use_created else "run_start"
    data = trend[trend["duration"].notna() & trend[x].notna()].astype({"step_key": str})
    highlights = trend_highlights(data, x)
    chosen = {h.step_key: h for h in highlights}
    if ax is None:
        ax = new_axes(0, width=10.0, extra=4.5)
    many_runs = data["run_id"].nunique() > 40
    for key, part in data.sort_values(x, kind="stable").groupby("step_key", sort=False):
        h = chosen.get(str(key))
        look = (dict(color=h.color, linewidth=1.4, zorder=3, marker=None if many_runs else "o", markersize=3.5)
                if h else dict(color=OTHERS, linewidth=0.7, zorder=2))
        ax.plot(utc_naive(part[x]), part["duration"].to_numpy(), label=str(key), gid="trend", **look)
    if data.empty:
        say_empty(ax, "no step has a duration yet")
    else:
        date_axis(ax)
        ax.set_ylim(bottom=0)
    ax.set_ylabel("duration (seconds)")
    ax.set_xlabel("run created (UTC)" if use_created else "run start (UTC)")
    n_steps = data["step_key"].nunique()
    more = f" · the {len(highlights)} of {n_steps} steps that changed most in colour" if len(chosen) < n_steps else ""
    ax.set_title(title or f"Step durations over {data['run_id'].nunique()} runs{more}", loc="left", fontsize=10)
    _legend(ax, highlights, n_steps - len(highlights))
    style(ax, grid="y")
    return ax


def _change_text(change: float) -> str:
    return ("+" if change >= 0 else "−") + duration_text(abs(change))


def _legend(ax, highlights: list[Highlight], others: int) -> None:
    """Each coloured line named once with its change, then one entry for all the grey ones."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=h.color, linewidth=1.6, label=f"{h.step_key}  {_change_text(h.change)}")
               for h in highlights]
    if others:
        handles.append(Line2D([], [], color=OTHERS, linewidth=1.0, label=f"{others} other step{'s' * (others > 1)}"))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False,
                  borderaxespad=0.0, title="change, first → last third", title_fontsize=8,
                  alignment="left")
