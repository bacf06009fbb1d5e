"""Two runs' step durations side by side (:func:`runlens.compare_step_durations`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InvalidArgument
from ..text import duration_text
from ._common import COLORS, new_axes, say_empty, style, text_values, tick_size

_COLUMNS = ("step_key", "duration_a", "duration_b", "delta")


def plot_step_comparison(comparison: pd.DataFrame, ax=None, *, labels: tuple[str, str] = ("A", "B"),
                         title: str | None = None):
    """Paired bars per step: run A light, run B dark, ``B − A`` written at the right.

    Red when B was slower, green when faster; a step missing from one run has no bar
    there and no delta.

    Parameters
    ----------
    comparison : pandas.DataFrame
        :func:`runlens.compare_step_durations` of two runs.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default a new figure whose height follows the number of steps.
    labels : (str, str)
        The legend's names of run A and run B.
    title : str, optional
        Defaults to ``"Step durations: A vs B (delta = B − A)"`` with the labels.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> comparison = runlens.compare_step_durations(old_events, new_events)   # doctest: +SKIP
    >>> plot_step_comparison(comparison, labels=("yesterday", "today"))      # doctest: +SKIP
    """
    missing = [c for c in _COLUMNS if not isinstance(comparison, pd.DataFrame) or c not in comparison.columns]
    if missing:
        raise InvalidArgument("plot_step_comparison() expects a compare_step_durations frame; "
                              f"got one without the column(s) {', '.join(missing)}.")
    if isinstance(labels, str) or len(labels) != 2:
        raise InvalidArgument(f"labels must name the two runs, e.g. ('old', 'new'); got {labels!r}")
    n = len(comparison)
    if ax is None:
        ax = new_axes(n, width=9.0, row=0.3, extra=1.2)
    size = tick_size(n)
    y = np.arange(n)
    a = comparison["duration_a"].astype("float64").fillna(0).to_numpy()
    b = comparison["duration_b"].astype("float64").fillna(0).to_numpy()
    ax.barh(y - 0.2, a, height=0.38, color="#A0CBE8", label=labels[0], gid="duration_a")
    ax.barh(y + 0.2, b, height=0.38, color=COLORS["IN_PROGRESS"], label=labels[1], gid="duration_b")
    for row, (delta, right) in enumerate(zip(comparison["delta"], np.maximum(a, b), strict=True)):
        if pd.notna(delta):
            color = COLORS["FAILURE"] if delta > 0 else COLORS["SUCCESS"] if delta < 0 else COLORS["muted"]
            ax.annotate(("+" if delta > 0 else "") + duration_text(delta), (right, row), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=size - 1, color=color, gid="delta")
    if n:
        ax.set_yticks(y, labels=text_values(comparison["step_key"]), fontsize=size)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xlim(0, max(float(np.max(np.concatenate([a, b, [0.0]]))) * 1.25, 1e-3))
    else:
        say_empty(ax, "neither run has steps")
    ax.set_xlabel("duration (seconds)", fontsize=size)
    first, second = labels
    ax.set_title(title or f"Step durations: {first} vs {second} (delta = {second} − {first})", loc="left",
                 fontsize=size + 1)
    ax.legend(loc="lower right", fontsize=size - 1, frameon=False)
    ax.tick_params(axis="y", length=0)
    style(ax)
    return ax
