"""``df.runlens``: the library's functions as methods of an events DataFrame.

>>> events.runlens.filter(types="STEP_FAILURE")          # doctest: +SKIP
>>> events.runlens.step_durations()                        # doctest: +SKIP
>>> events.runlens.plot_timeline()                         # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd

EVENT_MARKERS = ("seq", "event_type", "step_key", "timestamp")
STEP_MARKERS = ("step_key", "status", "start", "end", "duration")


@pd.api.extensions.register_dataframe_accessor("runlens")
class RunlensAccessor:
    """Methods for frames made by runlens: events frames, or ``step_durations`` frames."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._is_events = all(c in frame.columns for c in EVENT_MARKERS)
        self._is_steps = all(c in frame.columns for c in STEP_MARKERS)
        if not (self._is_events or self._is_steps):
            raise AttributeError(
                "df.runlens needs a runlens events frame (columns "
                f"{', '.join(EVENT_MARKERS)}) or a step_durations frame"
            )
        self._frame = frame

    def _events(self, what: str) -> pd.DataFrame:
        if not self._is_events:
            raise AttributeError(f"df.runlens.{what}() needs an events frame, not a step table")
        return self._frame

    def filter(self, types=None, step=None, levels=None) -> pd.DataFrame:
        """Rows matching the filters (see :func:`runlens.filter_events`)."""
        from .filters import filter_events

        return filter_events(self._events("filter"), types=types, step=step, levels=levels)

    def errors(self) -> pd.DataFrame:
        """Events at level ERROR or above, and every event that carries an error."""
        events = self._events("errors")
        return events[(events["level"] >= "ERROR") | events["error_class"].notna()]

    def step_durations(self) -> pd.DataFrame:
        """One row per run and step (see :func:`runlens.step_durations`)."""
        from .steps import step_durations

        return step_durations(self._events("step_durations"))

    def summary(self, run=None):
        """The run's summary (see :func:`runlens.run_summary`)."""
        from .steps import run_summary

        return run_summary(self._events("summary"), run)

    def plot_timeline(self, ax=None, **kwargs):
        """A Gantt chart of the run (see :func:`runlens.plot_timeline`)."""
        from .plotting import plot_timeline

        return plot_timeline(self._frame, ax=ax, **kwargs)

    def plot_step_durations(self, ax=None, **kwargs):
        """Step durations (see :func:`runlens.plot_step_durations`)."""
        from .plotting import plot_step_durations

        steps = self._frame if self._is_steps and not self._is_events else self.step_durations()
        return plot_step_durations(steps, ax=ax, **kwargs)
