"""Across runs: the data behind "is this step getting slower" and two runs side by side.

Pure functions over :func:`runlens.steps.step_durations` frames (events frames are
accepted and turned into steps), plain ``pd.concat`` output of several runs included.
"""

from __future__ import annotations

import pandas as pd

from .errors import InvalidArgument
from .frames import STEP_STATUS_DTYPE, require_kind
from .steps import step_durations_unchecked, warn_if_partial

__all__ = ["compare_step_durations", "duration_trend"]


# --------------------------------------------------------------------------- trends


def _steps_frame(frame: pd.DataFrame, func: str) -> pd.DataFrame:
    """A step_durations frame from `frame`: itself, or the steps of an events frame."""
    if require_kind(frame, "steps", "events", func=func) == "steps":
        return frame
    warn_if_partial(frame, func)
    return step_durations_unchecked(frame)


def _text_column(values: pd.Series) -> pd.Series:
    """A categorical, object or string column as pandas strings (NA stays NA)."""
    return values.astype(object).where(values.notna(), None).astype(pd.StringDtype())


def duration_trend(steps: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The data behind "is this step getting slower": one row per (run, step).

    Parameters
    ----------
    steps : pandas.DataFrame
        :func:`step_durations` of several runs (an events frame is accepted too). A plain
        ``pd.concat`` of per-run frames works as well (categoricals turned into objects,
        ``attrs`` dropped).
    runs : pandas.DataFrame, optional
        A runs frame (:func:`runlens.frames.runs_frame`): adds ``job_name``,
        ``run_status`` and ``created`` (the run's creation time).

    Returns
    -------
    pandas.DataFrame
        ``run_id`` (string), ``step_key`` (string), ``status``, ``start`` (the step's),
        ``run_start`` (the run's first step start), ``duration`` (float seconds; NaN for
        skipped and running steps), and with ``runs``: ``job_name``, ``run_status``,
        ``created``. Sorted by step, then by ``created`` (or ``run_start``).

    Raises
    ------
    InvalidArgument
        `steps` is neither a step_durations frame nor an events frame, or `runs` is not a
        runs frame.
    """
    steps = _steps_frame(steps, "duration_trend")
    out = pd.DataFrame({
        "run_id": _text_column(steps["run_id"]),
        "step_key": _text_column(steps["step_key"]),
        "status": steps["status"].astype(STEP_STATUS_DTYPE),
        "start": steps["start"],
        "duration": steps["duration"].dt.total_seconds().astype("float64"),
    })
    out.insert(4, "run_start", out.groupby("run_id", sort=False, dropna=False)["start"].transform("min"))
    by = ["step_key", "run_start", "run_id"]
    if runs is not None:
        require_kind(runs, "runs", func="duration_trend")
        extra = pd.DataFrame({
            "run_id": _text_column(runs["run_id"]),
            "job_name": runs["job_name"],
            "run_status": runs["status"],
            "created": runs["created"],
        }).drop_duplicates("run_id")
        out = out.merge(extra, on="run_id", how="left")
        by = ["step_key", "created", "run_start", "run_id"]
    return out.sort_values(by, kind="stable", na_position="last").reset_index(drop=True)


def compare_step_durations(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Step durations of two runs side by side.

    Parameters
    ----------
    a, b : pandas.DataFrame
        Each an events frame of one run or its :func:`runlens.step_durations` frame (a
        plain ``pd.concat`` of such frames is fine).

    Returns
    -------
    pandas.DataFrame
        One row per step key of either run, in ``a``'s step order then ``b``'s extra
        steps: ``step_key``, ``status_a``, ``status_b``, ``duration_a``, ``duration_b``
        (float seconds; NaN when the step did not run or has not finished in that run)
        and ``delta`` (``duration_b - duration_a``, positive when ``b`` was slower).
        ``attrs`` holds ``run_a`` and ``run_b``.

    Raises
    ------
    InvalidArgument
        A side is neither kind of frame, or holds several runs.

    Examples
    --------
    >>> runlens.compare_step_durations(client.events(old), client.events(new))   # doctest: +SKIP
    """
    sa, sb = (_steps_frame(frame, "compare_step_durations") for frame in (a, b))
    for steps in (sa, sb):
        if steps["run_id"].nunique() > 1:
            raise InvalidArgument("compare_step_durations() takes one run on each side; filter a frame "
                                  "of several runs first (frame[frame.run_id == run_id])")

    def side(steps: pd.DataFrame, suffix: str) -> pd.DataFrame:
        return pd.DataFrame({
            "step_key": steps["step_key"].astype(str).to_numpy(),
            f"status_{suffix}": steps["status"].astype(str).to_numpy(),
            f"duration_{suffix}": steps["duration"].dt.total_seconds().astype("float64").to_numpy(),
        }).drop_duplicates("step_key")

    left, right = side(sa, "a"), side(sb, "b")
    keys = list(dict.fromkeys([*left["step_key"], *right["step_key"]]))
    out = left.merge(right, on="step_key", how="outer").set_index("step_key").loc[keys].reset_index()
    out = out[["step_key", "status_a", "status_b", "duration_a", "duration_b"]]
    out["delta"] = out["duration_b"] - out["duration_a"]
    out.attrs.update(run_a=_run_of(sa), run_b=_run_of(sb))
    return out


def _run_of(steps: pd.DataFrame) -> str | None:
    ids = steps["run_id"].dropna()
    return str(ids.iloc[0]) if len(ids) else None
