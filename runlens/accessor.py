"""``df.runlens``: the library's functions as methods of a runlens DataFrame.

>>> events.runlens.filter(types="STEP_FAILURE")          # doctest: +SKIP
>>> events.runlens.step_durations()                        # doctest: +SKIP
>>> events.runlens.plot_timeline()                         # doctest: +SKIP
>>> client.step_stats(run_id).runlens.plot_timeline()      # doctest: +SKIP

The frame's kind (:func:`runlens.frame_kind`: events, steps, step_stats, runs, trend)
decides what it offers. As pandas accessors do, ``df.runlens`` on a frame of no runlens
kind raises :class:`AttributeError`; a method the kind does not support raises
:class:`runlens.InvalidArgument` naming the frame it needs.

This module imports nothing heavy at import time: it is loaded by ``import runlens``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


@pd.api.extensions.register_dataframe_accessor("runlens")
class RunlensAccessor:
    """Methods for frames made by runlens: events, step_durations, step_stats, runs, trends."""

    def __init__(self, frame: pd.DataFrame) -> None:
        from .errors import InvalidArgument
        from .frames import FRAME_KINDS, require_kind

        try:
            #: The frame's kind: "events", "steps", "step_stats", "runs" or "trend".
            self.kind = require_kind(frame, *FRAME_KINDS, func="df.runlens")
        except InvalidArgument as err:
            raise AttributeError(str(err).replace("df.runlens()", "df.runlens", 1)) from None
        self._frame = frame

    def _events(self, what: str) -> pd.DataFrame:
        from .frames import require_kind

        require_kind(self._frame, "events", func=f"df.runlens.{what}")
        return self._frame

    def filter(self, types=None, step=None, levels=None) -> pd.DataFrame:
        """Rows matching the filters (see :func:`runlens.filter_events`)."""
        from .filters import filter_events

        return filter_events(self._events("filter"), types=types, step=step, levels=levels)

    def errors(self) -> pd.DataFrame:
        """Events at level ERROR or above, and every event that carries an error."""
        from .vocabulary import LEVELS

        events = self._events("errors")
        # By name, not by ``>=``: after a round trip through text (CSV, DuckDB) the level
        # column is no longer an ordered categorical, and "WARNING" >= "ERROR" as text.
        severe = events["level"].astype(object).isin(LEVELS[LEVELS.index("ERROR"):])
        return events[severe | events["error_class"].notna()]

    def step_durations(self) -> pd.DataFrame:
        """One row per run and step (see :func:`runlens.step_durations`)."""
        from .steps import step_durations

        return step_durations(self._events("step_durations"))

    def summary(self, run=None):
        """The run's summary (see :func:`runlens.run_summary`)."""
        from .summary import run_summary

        return run_summary(self._events("summary"), run)

    def plot_timeline(self, ax=None, **kwargs: Any):
        """A Gantt chart of the run (see :func:`runlens.plot_timeline`)."""
        from .plotting import plot_timeline

        return plot_timeline(self._frame, ax=ax, **kwargs)

    def plot_step_durations(self, ax=None, **kwargs: Any):
        """Step durations (see :func:`runlens.plot_step_durations`)."""
        from .plotting import plot_step_durations

        return plot_step_durations(self._frame, ax=ax, **kwargs)
