"""Is this run unusual? Each step against the same step in the job's previous runs.

:func:`compare_to_baseline` takes a run and the previous ``baseline`` successful runs of
its job, from a :class:`runlens.History` store (nothing refetched) or from the server
(Dagster's ``stepStats`` of all of them in one ``runsOrError`` request), and compares
each step's duration, the run's wall time and its queue time to the baseline's median.

The flag rule is robust: alike runs have a spread near zero, so the spread gets a floor.
A value is *flagged* when ``ratio >= 1.5`` and
``|x - median| > 3.5 * 1.4826 * max(MAD, 5 % of the median, 50 ms)``. With fewer than 3
baseline runs nothing is flagged: the baseline is *insufficient*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import InvalidArgument, RunNotFound
from .text import duration_text

__all__ = ["BaselineComparison", "MIN_BASELINE", "compare_durations", "compare_to_baseline"]

#: Fewer baseline runs than this: "insufficient baseline", nothing flagged.
MIN_BASELINE = 3
RATIO = 1.5
SCORE = 3.5
MAD_SCALE = 1.4826
REL_FLOOR = 0.05
ABS_FLOOR = 0.05  # seconds

#: The comparison table's columns.
COMPARISON_COLUMNS = ("step_key", "status", "duration", "baseline_median", "baseline_mad", "baseline_n", "ratio",
                      "score", "flagged")


@dataclass(repr=False)
class BaselineComparison:
    """A run against its job's previous runs (:func:`compare_to_baseline`).

    Attributes
    ----------
    steps : pandas.DataFrame
        One row per step of the run: ``step_key``, ``status``, ``duration`` (float
        seconds), ``baseline_median``, ``baseline_mad``, ``baseline_n`` (baseline runs
        with that step), ``ratio`` (duration / median), ``score`` (robust z-score, the
        spread floored) and ``flagged``.
    totals : pandas.DataFrame
        The same columns for ``wall_time`` (RUN_START → end) and ``queue`` (created →
        started), ``step_key`` holding those names.
    new_steps, missing_steps : list of str
        Steps of the run no baseline run had; steps every baseline run... had and this
        run lacks (in at least half of the baseline runs).
    baseline_runs : list of str
        The baseline's run ids, newest first.
    insufficient : bool
        Fewer than :data:`MIN_BASELINE` baseline runs: nothing is flagged.
    """

    run_id: str
    job_name: str | None
    status: str | None
    steps: pd.DataFrame
    totals: pd.DataFrame
    new_steps: list[str]
    missing_steps: list[str]
    baseline_runs: list[str]
    insufficient: bool
    source: str = "server"
    extra: dict = field(default_factory=dict)

    @property
    def flagged(self) -> pd.DataFrame:
        """The flagged steps, slowest ratio first."""
        rows = self.steps[self.steps["flagged"]]
        return rows.sort_values("ratio", ascending=False, kind="stable").reset_index(drop=True)

    def flagged_text(self) -> str:
        """``b 1.500 s (5.0x median 0.300 s), ...``: the flagged steps in words."""
        return ", ".join(f"{r.step_key} {_seconds(r.duration)} ({r.ratio:.1f}x median {_seconds(r.baseline_median)})"
                         for r in self.flagged.itertuples(index=False))

    def records(self) -> list[dict]:
        """One JSON-ready dict per step (NaN → None)."""
        return _records(self.steps)

    def as_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values."""
        return {"run_id": self.run_id, "job_name": self.job_name, "status": self.status,
                "baseline_runs": self.baseline_runs, "insufficient_baseline": self.insufficient,
                "source": self.source, "totals": _records(self.totals), "steps": self.records(),
                "new_steps": self.new_steps, "missing_steps": self.missing_steps}

    def __str__(self) -> str:
        head = f"Run {self.run_id} of {self.job_name or '?'} vs {len(self.baseline_runs)} previous successful runs"
        if self.insufficient:
            return f"{head}: insufficient baseline (fewer than {MIN_BASELINE} runs), nothing flagged"
        lines = [head]
        for row in self.totals.itertuples(index=False):
            lines.append(f"  {row.step_key}: {_seconds(row.duration)} vs median {_seconds(row.baseline_median)}"
                         f"{_ratio_text(row.ratio)}{'  FLAGGED' if row.flagged else ''}")
        if len(self.flagged):
            lines.append(f"  flagged steps: {self.flagged_text()}")
        else:
            lines.append("  no step flagged")
        if self.new_steps:
            lines.append("  new steps: " + ", ".join(self.new_steps))
        if self.missing_steps:
            lines.append("  missing steps: " + ", ".join(self.missing_steps))
        return "\n".join(lines)

    __repr__ = __str__


def _seconds(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else duration_text(pd.Timedelta(seconds=float(value)))


def _ratio_text(ratio: Any) -> str:
    return "" if ratio is None or pd.isna(ratio) else f" ({ratio:.2f}x)"


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for row in frame.to_dict("records"):
        clean = {}
        for k, v in row.items():
            if isinstance(v, (np.bool_, bool)):
                clean[k] = bool(v)
            elif isinstance(v, (np.integer,)):
                clean[k] = int(v)
            elif v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
                clean[k] = None
            elif isinstance(v, (np.floating, float)):
                clean[k] = round(float(v), 6)
            else:
                clean[k] = str(v)
        out.append(clean)
    return out


# --------------------------------------------------------------------------- the rule


def compare_durations(values: pd.Series, baseline: pd.DataFrame, *, n_runs: int) -> pd.DataFrame:
    """The flag rule, vectorized: each key's value against its baseline values.

    Parameters
    ----------
    values : pandas.Series
        Float seconds indexed by key (step key, or ``wall_time``/``queue``).
    baseline : pandas.DataFrame
        Columns ``key`` and ``value`` (float seconds): one row per baseline run and key.
    n_runs : int
        Baseline runs in all; fewer than :data:`MIN_BASELINE` flags nothing.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``values``: ``baseline_median``, ``baseline_mad``, ``baseline_n``,
        ``ratio``, ``score``, ``flagged``.
    """
    clean = pd.DataFrame({"key": baseline["key"].astype(object).to_numpy(),
                          "value": pd.to_numeric(baseline["value"]).astype("float64").to_numpy()}).dropna()
    grouped = clean.groupby("key")["value"]
    median = grouped.median()
    dev = (clean["value"] - clean["key"].map(median).astype("float64")).abs()
    mad = dev.groupby(clean["key"]).median()
    count = grouped.size()
    out = pd.DataFrame(index=values.index)
    out["baseline_median"] = median.reindex(values.index).astype("float64")
    out["baseline_mad"] = mad.reindex(values.index).astype("float64")
    out["baseline_n"] = count.reindex(values.index).fillna(0).astype("int64")
    x = values.astype("float64")
    med = out["baseline_median"]
    out["ratio"] = np.where(med > 0, x / med.where(med > 0), np.nan)
    spread = np.maximum.reduce([out["baseline_mad"].fillna(0).to_numpy(), (REL_FLOOR * med).fillna(0).to_numpy(),
                                np.full(len(out), ABS_FLOOR)])
    out["score"] = (x - med) / (MAD_SCALE * spread)
    enough = (out["baseline_n"] >= MIN_BASELINE) & (n_runs >= MIN_BASELINE)
    out["flagged"] = (enough & (out["ratio"] >= RATIO) & (out["score"].abs() > SCORE)).fillna(False).astype(bool)
    return out


def _table(run_id: str, job: str | None, status: str | None, target_steps: pd.DataFrame,
           target_totals: dict[str, float], base_steps: pd.DataFrame, base_totals: pd.DataFrame,
           baseline_ids: list[str], source: str) -> BaselineComparison:
    """Build the comparison from plain frames: steps ``run_id, step_key, status, duration``
    (float s), totals ``run_id, wall_time, queue`` (float s)."""
    n = len(baseline_ids)
    base_ok = base_steps[base_steps["status"].astype(str) == "SUCCESS"]
    values = pd.Series(target_steps["duration"].to_numpy("float64"),
                       index=pd.Index(target_steps["step_key"].astype(str), name="key"))
    values = values[~values.index.duplicated()]
    cmp = compare_durations(values, pd.DataFrame({"key": base_ok["step_key"].astype(str),
                                                  "value": base_ok["duration"].astype("float64")}), n_runs=n)
    steps = pd.DataFrame({
        "step_key": pd.array(values.index, dtype=pd.StringDtype()),
        "status": pd.array([str(s) for s in target_steps.drop_duplicates("step_key")["status"]],
                           dtype=pd.StringDtype()),
        "duration": values.to_numpy(),
    })
    steps = pd.concat([steps, cmp.reset_index(drop=True)], axis=1)
    tot_values = pd.Series(target_totals, dtype="float64")
    tot_values.index.name = "key"
    long = base_totals.melt(id_vars="run_id", value_vars=["wall_time", "queue"], var_name="key", value_name="value")
    tcmp = compare_durations(tot_values, long, n_runs=n)
    totals = pd.concat([pd.DataFrame({"step_key": pd.array(tot_values.index, dtype=pd.StringDtype()),
                                      "status": pd.array([status] * len(tot_values), dtype=pd.StringDtype()),
                                      "duration": tot_values.to_numpy()}),
                        tcmp.reset_index(drop=True)], axis=1)
    seen = set(base_steps["step_key"].astype(str))
    per_key = base_steps.drop_duplicates(["run_id", "step_key"])["step_key"].astype(str).value_counts()
    new = [k for k in values.index if k not in seen]
    missing = sorted(k for k, c in per_key.items() if k not in set(values.index) and n and c >= n / 2)
    return BaselineComparison(run_id, job, status, steps, totals, new, missing, baseline_ids,
                              n < MIN_BASELINE, source)


# --------------------------------------------------------------------------- sources


def compare_to_baseline(run_id: str, source: Any, baseline: int = 20) -> BaselineComparison:
    """Compare each step of a run with the same step in its job's previous successful runs.

    Parameters
    ----------
    run_id : str
    source : runlens.Client or runlens.History
        A History store answers from its files (the run must be stored, with its steps:
        a final run); a client asks the server, the run and its baseline's ``stepStats``
        in two ``runsOrError`` requests.
    baseline : int, default 20
        How many previous successful runs of the job (created before this run) to compare with.

    Returns
    -------
    BaselineComparison
        ``steps`` (per step: duration, baseline median and MAD, ratio, robust score,
        flagged), ``totals`` (wall time and queue time), new and missing steps, and
        ``insufficient`` with fewer than 3 baseline runs.

    Raises
    ------
    RunNotFound
        The run is not on the server, or not in the store.
    InvalidArgument
        ``source`` is neither a Client nor a History; ``baseline`` not a positive int.

    Examples
    --------
    >>> cmp = runlens.compare_to_baseline(run_id, client, baseline=20)   # doctest: +SKIP
    >>> cmp.flagged[["step_key", "duration", "baseline_median", "ratio"]]  # doctest: +SKIP
    """
    if not isinstance(run_id, str) or not run_id.strip():
        raise InvalidArgument(f"a run id must be a non-empty string, not {run_id!r}")
    if isinstance(baseline, bool) or not isinstance(baseline, int) or baseline < 1:
        raise InvalidArgument(f"baseline must be a whole number of runs, at least 1, not {baseline!r}")
    run_id = run_id.strip()
    from .history import History

    if isinstance(source, History):
        return _from_history(run_id, source, baseline)
    from .client import Client

    if isinstance(source, Client):
        return _from_server(run_id, source, baseline)
    raise InvalidArgument(f"compare_to_baseline() takes a runlens.Client or a runlens.History as source, "
                          f"not {type(source).__name__}")


def _seconds_between(a: Any, b: Any) -> float:
    if a is None or b is None or pd.isna(a) or pd.isna(b):
        return float("nan")
    return (pd.Timestamp(b) - pd.Timestamp(a)).total_seconds()


def _from_history(run_id: str, history: Any, n: int) -> BaselineComparison:
    runs = history.runs()
    mine = runs[runs["run_id"].astype(str) == run_id]
    if mine.empty:
        raise RunNotFound(f"run {run_id!r} is not in the History store at {history.path}: sync it first "
                          "(runlens sync) or compare from the server", run_id=run_id)
    row = mine.iloc[0]
    job = str(row["job_name"]) if pd.notna(row["job_name"]) else None
    runs = runs[(runs["job_name"].astype(object) == job) & (runs["status"].astype(str) == "SUCCESS")
                & (runs["created"] < row["created"])]
    runs = runs.sort_values("created", ascending=False, kind="stable").head(n)
    ids = [str(r) for r in runs["run_id"]]
    steps = history.steps(run_ids=[run_id, *ids])
    target = steps[steps["run_id"].astype(str) == run_id]
    if target.empty and not bool(row.get("final", True)):
        raise RunNotFound(f"run {run_id!r} has no stored steps yet (not final in the store): sync again later",
                          run_id=run_id)
    base = steps[steps["run_id"].astype(str).isin(ids)]
    return _table(run_id, job, str(row["status"]), _plain_steps(target), _totals_of(row),
                  _plain_steps(base), _totals_frame(runs), ids, "history")


def _plain_steps(steps: pd.DataFrame) -> pd.DataFrame:
    duration = steps["duration"]
    if not pd.api.types.is_float_dtype(duration):
        duration = pd.to_timedelta(duration).dt.total_seconds()
    return pd.DataFrame({"run_id": steps["run_id"].astype(str).to_numpy(),
                         "step_key": steps["step_key"].astype(str).to_numpy(),
                         "status": steps["status"].astype(str).to_numpy(),
                         "duration": duration.astype("float64").to_numpy()})


def _totals_of(row: Any) -> dict[str, float]:
    return {"wall_time": _seconds_between(row["started"], row["ended"]),
            "queue": _seconds_between(row["created"], row["started"])}


def _totals_frame(runs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"run_id": runs["run_id"].astype(str).to_numpy(),
                         "wall_time": [_seconds_between(s, e) for s, e in zip(runs["started"], runs["ended"],
                                                                                strict=True)],
                         "queue": [_seconds_between(c, s) for c, s in zip(runs["created"], runs["started"],
                                                                           strict=True)]})


def _from_server(run_id: str, client: Any, n: int) -> BaselineComparison:
    from .frames import runs_frame, step_stats_frame

    mine = runs_with_step_stats(client, {"runIds": [run_id]}, 1)
    if not mine:
        raise RunNotFound(f"run {run_id!r} not found on {client.url}: check the id, and that the URL points "
                          "at the deployment that ran it", run_id=run_id)
    record = mine[0]
    job = record.get("jobName")
    created = record.get("creationTime")
    run_filter = {"pipelineName": job, "statuses": ["SUCCESS"]}
    if created is not None:
        run_filter["createdBefore"] = float(created)
    base = [r for r in runs_with_step_stats(client, run_filter, n) if r.get("id") != run_id][:n]
    ids = [r["id"] for r in base]

    def steps_of(records: list[dict]) -> pd.DataFrame:
        frame = step_stats_frame([(r["id"], s) for r in records for s in r.get("stepStats") or []])
        return _plain_steps(frame) if len(frame) else pd.DataFrame(columns=["run_id", "step_key", "status",
                                                                            "duration"])

    runs = runs_frame(mine + base)
    row = runs.iloc[0]
    return _table(run_id, job, record.get("status"), steps_of(mine), _totals_of(row), steps_of(base),
                  _totals_frame(runs.iloc[1:]), ids, "server")


def runs_with_step_stats(client: Any, run_filter: dict, limit: int) -> list[dict]:
    """``runsOrError`` records with their ``stepStats``, newest first: one request per
    page of up to ``limit`` runs (Dagster computes every run's stats in one answer)."""
    from . import queries

    records: list[dict] = []
    cursor = None
    while len(records) < limit:
        size = min(limit - len(records), 100)
        result = client.transport.execute(queries.RUNS_STEP_STATS,
                                          {"filter": run_filter, "cursor": cursor, "limit": size}).get("runsOrError")
        if isinstance(result, dict) and result.get("__typename") == "InvalidPipelineRunsFilterError":
            raise InvalidArgument(f"the server rejected the run filter: {result.get('message')}")
        client._raise_for_result(result, None)
        page = result.get("results") or []
        records += page
        if len(page) < size or not page:
            break
        cursor = page[-1].get("id")
    return records
