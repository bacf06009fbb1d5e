"""Timeline, step-duration and comparison plots of Dagster runs (matplotlib).

Every function takes ``ax=None`` and returns the :class:`~matplotlib.axes.Axes` it drew
on; none calls ``plt.show()``. matplotlib is imported inside the functions, so
``import runlens`` stays light. Without ``ax``, a figure sized to the number of steps is
made with ``pyplot`` (so notebooks display it); close it with ``plt.close(ax.figure)``
when drawing many in a loop.

What is drawn carries a ``gid`` so it can be found again: timeline bars are ``"attempt"``,
``"retry_wait"`` and ``"worker_startup"``; markers ``"skipped"`` and ``"running"``.

The package reads as its steps: ``_layout`` turns a run into plain data (bars, marks,
notes: :func:`timeline_layout`, testable without matplotlib), ``_timeline`` draws it;
``_durations``, ``_trend``, ``_comparison``, ``_assets`` and ``_why`` (percentile trend, heatmap) hold the other plots; ``_common`` the
colours and figure helpers.
"""

from __future__ import annotations

from ._assets import partition_status_table, plot_asset_metadata, plot_partition_status
from ._common import COLORS
from ._comparison import plot_step_comparison
from ._durations import plot_step_durations
from ._layout import TimelineLayout, timeline_layout
from ._timeline import plot_timeline
from ._why import plot_heatmap, plot_percentile_trend

__all__ = ["COLORS", "TimelineLayout", "partition_status_table", "plot_asset_metadata", "plot_heatmap",
           "plot_partition_status", "plot_percentile_trend", "plot_step_comparison", "plot_step_durations",
           "plot_timeline", "timeline_layout"]
