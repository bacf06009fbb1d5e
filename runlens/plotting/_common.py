"""What every plot shares: the colours by meaning, a new figure sized to its rows, the frame."""

from __future__ import annotations

import pandas as pd

#: Colours by meaning (Tableau 10): attempts by how they ended, waits and start-up light.
COLORS = {
    "SUCCESS": "#59A14F",
    "FAILURE": "#E15759",
    "RETRIED": "#F28E2B",       # an attempt that failed and was retried
    "IN_PROGRESS": "#4E79A7",
    "SKIPPED": "#8C8C8C",
    "CANCELED": "#9C755F",      # stopped by the run's cancellation: not the step's failure
    "retry_wait": "#EDEDED",
    "retry_wait_edge": "#A5A5A5",
    "worker_startup": "#E4D8F0",
    "worker_startup_edge": "#9A7BBF",
    "text": "#4A4A4A",
    "band": "#F7F7F7",
    "muted": "#7F7F7F",
    "critical": "#1F1F1F",      # the critical path's outline and links
}


def new_axes(n_rows: int, *, width: float = 11.0, row: float = 0.24, extra: float = 1.3):
    """A pyplot figure (so notebooks show it) whose height follows the number of rows."""
    import matplotlib.pyplot as plt

    height = min(max(2.6, extra + row * max(n_rows, 1)), 120.0)
    _, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return ax


def tick_size(n_rows: int) -> float:
    return 9 if n_rows <= 30 else 8 if n_rows <= 60 else 7 if n_rows <= 100 else 6


def style(ax, *, grid: str = "x") -> None:
    """Open frame and a light grid behind the data."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis=grid, color="#E3E3E3", linewidth=0.6)
    ax.set_axisbelow(True)


def text_values(series: pd.Series) -> list[str]:
    """A column as text, whether it arrives categorical, string or object (``pd.concat``)."""
    return [str(v) for v in series.astype(object)]


def utc_naive(series: pd.Series):
    """Times as naive UTC ``datetime64`` values, which matplotlib's date axis reads."""
    times = pd.to_datetime(series, utc=True)
    return times.dt.tz_localize(None).to_numpy()


def say_empty(ax, text: str) -> None:
    """An axes with nothing to draw: the reason in its middle, no ticks, no singular limits."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=COLORS["muted"], gid="no_data")


def date_axis(ax) -> None:
    """Dates a person reads at a glance: ``Nov 26``, ``13:00``, ``13:14:30``, the date as offset."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz="UTC", minticks=3, maxticks=8)
    formatter = mdates.ConciseDateFormatter(locator, tz="UTC")
    # The default writes a seconds tick as "30" next to "13:14": always give the clock time.
    formatter.formats = ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%H:%M:%S"]
    formatter.zero_formats = ["", "%Y", "%b %d", "%b %d", "%H:%M", "%H:%M:%S"]
    formatter.offset_formats = ["", "%Y", "%Y %b", "%Y %b %d", "%Y %b %d", "%Y %b %d"]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
