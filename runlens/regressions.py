"""Since when is a step slower? Change points in each step's duration across runs, and rollups.

* :func:`regressions` finds, for each step of a job's history, the runs where its
  duration changed level (robust binary segmentation on the log duration: medians and
  absolute deviations, so one slow run moves nothing) and the single runs that stand
  out (outliers, not changes).
* :func:`rollup` aggregates per job (and step) and period: runs, success and failure
  rates, retries, duration percentiles (``numpy.quantile``'s), total step time.

Both read :func:`runlens.step_durations` frames of many runs (``History.steps()``,
``step_durations(client.events_many(...))``) and optionally the runs frame (creation
order, job, status, tags). Pure pandas and numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import InvalidArgument
from .frames import require_kind
from .steps import step_durations_unchecked, warn_if_partial

__all__ = ["REGRESSION_COLUMNS", "regressions", "rollup"]

#: A level change must be at least this ratio (as the baseline comparison's flag).
MIN_RATIO = 1.5
#: ... and this many robust spreads (1.4826 MAD of the log durations, floored at 5 %).
MIN_SCORE = 3.5
_FLOOR = np.log(1.05)

REGRESSION_COLUMNS = ("job_name", "step_key", "kind", "run_id", "created", "before", "after", "ratio", "n_before",
                      "n_after", "tags")


def _steps_frame(frame: pd.DataFrame, func: str) -> pd.DataFrame:
    if require_kind(frame, "steps", "step_stats", "events", func=func) == "events":
        warn_if_partial(frame, func)
        return step_durations_unchecked(frame)
    return frame


def _long(steps: pd.DataFrame, runs: pd.DataFrame | None, func: str) -> pd.DataFrame:
    """``run_id, step_key, status, duration (s), attempts, start`` plus the run's
    ``job_name, created, run_status`` and tags when ``runs`` is given."""
    steps = _steps_frame(steps, func)
    duration = steps["duration"]
    if not pd.api.types.is_float_dtype(duration):
        duration = pd.to_timedelta(duration).dt.total_seconds()
    out = pd.DataFrame({
        "run_id": steps["run_id"].astype(str).to_numpy(),
        "step_key": steps["step_key"].astype(str).to_numpy(),
        "status": steps["status"].astype(str).to_numpy(),
        "duration": duration.astype("float64").to_numpy(),
        "attempts": steps["attempts"].astype("int64").to_numpy() if "attempts" in steps.columns else 1,
        "start": pd.to_datetime(steps["start"], utc=True).to_numpy(),
    })
    out["start"] = pd.to_datetime(out["start"], utc=True)
    out["end"] = out["start"] + pd.to_timedelta(out["duration"], unit="s")
    run_start = out.groupby("run_id")["start"].transform("min")
    if runs is None:
        jobs = steps["job_name"].astype(object) if "job_name" in steps.columns else None
        out["job_name"] = jobs.to_numpy() if jobs is not None else None
        created = steps["run_created"] if "run_created" in steps.columns else run_start
        out["created"] = pd.to_datetime(pd.Series(np.asarray(created)), utc=True)
        out["run_status"] = None
        out["tags"] = [{} for _ in range(len(out))]
        return out
    require_kind(runs, "runs", func=func)
    tag_columns = [c for c in runs.columns if str(c).startswith("tags.")]
    info = pd.DataFrame({
        "run_id": runs["run_id"].astype(str).to_numpy(),
        "job_name": runs["job_name"].astype(object).to_numpy(),
        "created": pd.to_datetime(runs["created"], utc=True).to_numpy(),
        "run_status": runs["status"].astype(str).to_numpy(),
        "tags": [{c[5:]: v for c, v in zip(tag_columns, row, strict=True) if isinstance(v, str)}
                 for row in runs[tag_columns].astype(object).itertuples(index=False)] if tag_columns
        else [{} for _ in range(len(runs))],
    }).drop_duplicates("run_id")
    info["created"] = pd.to_datetime(info["created"], utc=True)
    out = out.merge(info, on="run_id", how="left")
    out["created"] = out["created"].fillna(run_start.reindex(out.index))
    return out


# --------------------------------------------------------------------------- change points


def _spread(x: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(x - np.median(x)))) if len(x) else 0.0


def _best_split(x: np.ndarray, min_size: int) -> tuple[int, float] | None:
    """The split (left size) minimising the sum of absolute deviations from each side's median."""
    best = None
    whole = float(np.abs(x - np.median(x)).sum())
    for k in range(min_size, len(x) - min_size + 1):
        left, right = x[:k], x[k:]
        cost = float(np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum())
        if best is None or cost < best[1]:
            best = (k, cost)
    if best is None or best[1] >= whole:
        return None
    return best


def _segments(x: np.ndarray, lo: int, hi: int, min_size: int, out: list[int]) -> None:
    """Robust binary segmentation of ``x[lo:hi]``: split where the medians differ by at
    least :data:`MIN_RATIO` and :data:`MIN_SCORE` pooled robust spreads; recurse."""
    part = x[lo:hi]
    split = _best_split(part, min_size)
    if split is None:
        return
    k = split[0]
    left, right = part[:k], part[k:]
    shift = abs(float(np.median(right) - np.median(left)))
    spread = max(np.sqrt((_spread(left) ** 2 + _spread(right) ** 2) / 2), _FLOOR)
    if shift < np.log(MIN_RATIO) or shift < MIN_SCORE * spread:
        return
    out.append(lo + k)
    _segments(x, lo, lo + k, min_size, out)
    _segments(x, lo + k, hi, min_size, out)


def regressions(steps: pd.DataFrame, runs: pd.DataFrame | None = None, *, min_size: int = 3) -> pd.DataFrame:
    """Where each step's duration changed level across runs, and which single runs stand out.

    Parameters
    ----------
    steps : pandas.DataFrame
        :func:`runlens.step_durations` rows of many runs (``History.steps()``), a
        ``step_stats`` frame, or an events frame. Only successful steps are used.
    runs : pandas.DataFrame, optional
        The runs frame (``History.runs()``, ``Client.runs()``): orders runs by creation
        and adds the job and the run's tags (a commit SHA tag, ...). Without it runs are
        ordered by their first step's start (``History.steps()`` rows carry ``job_name``
        and ``run_created`` themselves).
    min_size : int, default 3
        A level must hold for at least this many runs on each side; one slow run is
        an ``outlier``, never a ``change``. (With 2, two runs that happened to be quick
        on a busy machine made a "level" of their own: measured on the demo.)

    Returns
    -------
    pandas.DataFrame
        One row per finding, :data:`REGRESSION_COLUMNS`: ``kind`` ``"change"`` (``run_id``
        is the first run at the new level; ``before``/``after`` the median seconds of the
        levels either side, ``n_before``/``n_after`` their runs) or ``"outlier"``
        (``after`` is the run's duration, ``before`` its level's median); ``ratio`` is
        ``after / before``; ``tags`` the run's tags (dict). Changes first, by step.

    Notes
    -----
    On the log duration, split the series where the sum of absolute deviations from
    each side's median is smallest; keep the split when the medians differ by at least
    1.5x and by 3.5 pooled spreads (1.4826 MAD, floored at 5 %), and recurse into both
    sides. Within each level, a run more than 1.5x and 3.5 spreads from the median is an
    outlier.
    """
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 1:
        raise InvalidArgument(f"min_size must be a whole number of runs, at least 1, not {min_size!r}")
    long = _long(steps, runs, "regressions")
    ok = long[(long["status"] == "SUCCESS") & long["duration"].notna() & (long["duration"] > 0)]
    ok = ok.sort_values(["created", "run_id"], kind="stable")
    rows: list[tuple] = []
    for (job, key), group in ok.groupby([ok["job_name"].astype(object).fillna(""), "step_key"], sort=True):
        group = group.drop_duplicates("run_id")
        x = np.log(group["duration"].to_numpy())
        cuts: list[int] = []
        _segments(x, 0, len(x), min_size, cuts)
        bounds = [0, *sorted(cuts), len(x)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=False):
            level = x[a:b]
            med, spread = float(np.median(level)), max(_spread(level), _FLOOR)
            for i in range(a, b):
                if b - a >= 3 and x[i] - med >= max(np.log(MIN_RATIO), MIN_SCORE * spread):
                    rows.append(_finding(job, key, "outlier", group.iloc[i], float(np.median(np.exp(level))),
                                         float(np.exp(x[i])), b - a, 1))
        for a, k, b in zip(bounds[:-2], bounds[1:-1], bounds[2:], strict=False):
            raw = np.exp(x)
            rows.append(_finding(job, key, "change", group.iloc[k], float(np.median(raw[a:k])),
                                 float(np.median(raw[k:b])), k - a, b - k))
    frame = pd.DataFrame(rows, columns=list(REGRESSION_COLUMNS))
    frame["job_name"] = frame["job_name"].astype(pd.StringDtype())
    frame["step_key"] = frame["step_key"].astype(pd.StringDtype())
    frame["kind"] = pd.Categorical(frame["kind"], categories=["change", "outlier"])
    frame["run_id"] = frame["run_id"].astype(pd.StringDtype())
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    for column in ("before", "after", "ratio"):
        frame[column] = frame[column].astype("float64")
    for column in ("n_before", "n_after"):
        frame[column] = frame[column].astype("int64")
    return frame.sort_values(["kind", "job_name", "step_key", "created"], kind="stable").reset_index(drop=True)


def _finding(job: str, key: str, kind: str, row: Any, before: float, after: float, n_before: int,
             n_after: int) -> tuple:
    return (job or None, key, kind, row["run_id"], row["created"], before, after, after / before, n_before, n_after,
            dict(row["tags"]) if isinstance(row["tags"], dict) else {})


# --------------------------------------------------------------------------- rollups

_PERIODS = {"day", "week", "month"}


def _period(times: pd.Series, by: str) -> pd.Series:
    naive = pd.to_datetime(times, utc=True).dt.tz_localize(None)
    if by == "day":
        start = naive.dt.floor("D")
    elif by == "week":
        start = (naive - pd.to_timedelta(naive.dt.dayofweek, unit="D")).dt.floor("D")
    else:
        start = naive.dt.to_period("M").dt.start_time
    return start.dt.tz_localize("UTC")


def rollup(steps: pd.DataFrame, runs: pd.DataFrame | None = None, *, by: str = "day", by_step: bool = True,
           q: tuple[float, ...] = (0.5, 0.9, 0.99)) -> pd.DataFrame:
    """Per job (and step) and period: runs, success and failure rates, retries, duration
    percentiles and total step time, as Dagster+ Insights shows them.

    Parameters
    ----------
    steps : pandas.DataFrame
        :func:`runlens.step_durations` rows of many runs (``History.steps()``), a
        ``step_stats`` frame or an events frame.
    runs : pandas.DataFrame, optional
        The runs frame: gives each run's job, creation time (the period) and status.
        Without it the period is the run's first step start and the job is
        ``steps.job_name`` when present (History rows), else NA.
    by : {"day", "week", "month"}
        Period (UTC; weeks start on Monday).
    by_step : bool, default True
        One row per step; False: per job, durations being the runs' wall times
        (first step start → last step end; the runs frame's ``duration`` when given).
    q : tuple of float
        Quantiles of the durations, each a column ``p50``, ``p90``, ``p99`` ...; equal to
        ``numpy.quantile`` (linear) of the same rows.

    Returns
    -------
    pandas.DataFrame
        ``job_name``, (``step_key``), ``period`` (UTC start), ``runs``, ``succeeded``,
        ``failed``, ``success_rate``, ``failure_rate``, ``retries`` (attempts beyond the
        first), the ``p..`` columns (seconds, successful rows only), ``total_time``
        (seconds: the sum of all durations, a proxy for compute cost).
    """
    if by not in _PERIODS:
        raise InvalidArgument(f"by must be one of {sorted(_PERIODS)}, not {by!r}")
    qs = tuple(q) if isinstance(q, (list, tuple)) else (q,)
    if not qs or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1 for v in qs):
        raise InvalidArgument(f"q must be quantiles between 0 and 1, not {q!r}")
    long = _long(steps, runs, "rollup")
    if not by_step:
        long = _per_run(long, runs)
    long["period"] = _period(long["created"], by)
    long["job_name"] = long["job_name"].astype(object).fillna("")
    keys = ["job_name", "step_key", "period"] if by_step else ["job_name", "period"]
    status = long["run_status"] if not by_step else long["status"]
    long["ok"] = (status == "SUCCESS").astype("int64")
    long["bad"] = status.isin(["FAILURE"]).astype("int64")
    long["retries"] = (long["attempts"] - 1).clip(lower=0)
    grouped = long.groupby(keys, sort=True)
    out = pd.DataFrame({
        "runs": grouped["run_id"].nunique(),
        "succeeded": grouped["ok"].sum(),
        "failed": grouped["bad"].sum(),
        "retries": grouped["retries"].sum(),
        "total_time": grouped["duration"].sum(min_count=1),
    })
    rows = grouped.size()
    out["success_rate"] = out["succeeded"] / rows
    out["failure_rate"] = out["failed"] / rows
    good = long[(long["ok"] == 1) & long["duration"].notna()]
    for v in qs:
        name = f"p{round(v * 100, 3):g}"
        out[name] = good.groupby(keys)["duration"].quantile(v).reindex(out.index)
    out = out.reset_index()
    out["job_name"] = out["job_name"].replace("", None).astype(pd.StringDtype())
    if by_step:
        out["step_key"] = out["step_key"].astype(pd.StringDtype())
    order = [*keys, "runs", "succeeded", "failed", "success_rate", "failure_rate", "retries",
             *[c for c in out.columns if c.startswith("p") and c != "period"], "total_time"]
    return out[order]


def _per_run(long: pd.DataFrame, runs: pd.DataFrame | None) -> pd.DataFrame:
    """One row per run: its wall time (the runs frame's duration, else first start → last end)."""
    g = long.groupby("run_id", sort=False)
    out = pd.DataFrame({
        "job_name": g["job_name"].first(), "created": g["created"].first(), "attempts": g["attempts"].max(),
        "run_status": g["run_status"].first(),
        "duration": (g["end"].max() - g["start"].min()).dt.total_seconds(),
    }).reset_index()
    out["attempts"] = 1 + (long.assign(r=(long["attempts"] - 1).clip(lower=0)).groupby("run_id", sort=False)["r"]
                           .sum().reindex(out["run_id"]).to_numpy())
    if runs is not None:
        walls = pd.Series(pd.to_timedelta(runs["duration"]).dt.total_seconds().to_numpy(),
                          index=runs["run_id"].astype(str).to_numpy())
        out["duration"] = walls.reindex(out["run_id"]).to_numpy()
    else:
        out["run_status"] = np.where(g["status"].apply(lambda s: (s == "FAILURE").any()).to_numpy(), "FAILURE",
                                     "SUCCESS")
    return out
