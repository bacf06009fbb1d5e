"""``runlens run explain``: why a run took as long as it did, in one short report.

:func:`explain_run` gathers the run's status, its wall time against the baseline, where
the time went (:func:`runlens.run_anatomy`), the critical path, the flagged steps
(:func:`runlens.compare_to_baseline`) and the first failure. From a History store
nothing is fetched; from the server: the run's events, its plan, and the baseline's
``stepStats`` in one request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .anatomy import RunAnatomy, run_anatomy
from .baseline import BaselineComparison, compare_to_baseline
from .errors import RunNotFound
from .summary import RunSummary, run_summary
from .text import duration_text

__all__ = ["RunExplanation", "explain_run"]


@dataclass(repr=False)
class RunExplanation:
    """What :func:`explain_run` found; ``str()`` is the CLI's report, :meth:`as_dict` its JSON."""

    run_id: str
    summary: RunSummary
    anatomy: RunAnatomy
    comparison: BaselineComparison

    def as_dict(self) -> dict[str, Any]:
        a, s, cp = self.anatomy, self.summary, self.anatomy.critical_path
        failure = s.first_failure
        return {
            **self.comparison.as_dict(),
            "wall_time": _sec(s.wall_time),
            "anatomy": {name: _sec(v) for name, v in a.parts.items()} | {
                "total": _sec(a.total), "peak_concurrency": a.peak_concurrency,
                "mean_concurrency": round(a.mean_concurrency, 3), "canceled": a.canceled},
            "critical_path": None if cp is None else {
                "steps": cp.keys, "duration": _sec(cp.chain["duration"].sum()), "wall_time": _sec(cp.wall_time)},
            "first_failure": None if failure is None else {
                "step_key": failure.step_key, "error_class": failure.error_class, "message": failure.message,
                "where": failure.where},
        }

    def __str__(self) -> str:
        s, a, c = self.summary, self.anatomy, self.comparison
        lines = [f"Run {self.run_id} · {c.job_name or s.job_name or '?'} · {s.status}"]
        wall = next((r for r in c.totals.itertuples(index=False) if r.step_key == "wall_time"), None)
        versus = ""
        if c.insufficient:
            versus = f" (insufficient baseline: {len(c.baseline_runs)} previous successful runs)"
        elif wall is not None and wall.baseline_median == wall.baseline_median:
            versus = (f" vs median {duration_text(wall.baseline_median)} of {len(c.baseline_runs)} previous runs"
                      f" ({wall.ratio:.2f}x{', FLAGGED' if wall.flagged else ''})")
        lines.append(f"Wall time   {duration_text(s.wall_time)}{versus}")
        lines.append(f"Where       {a.headline()}")
        if a.critical_path is not None and a.critical_path.keys:
            lines.append(f"Critical    {str(a.critical_path).removeprefix('critical path: ')}")
        lines.append(f"Concurrency peak {a.peak_concurrency}, mean {a.mean_concurrency:.2f}; "
                     f"{len(a.idle_gaps)} idle gap{'s' if len(a.idle_gaps) != 1 else ''}")
        if a.canceled:
            lines.append(f"Canceled    {a.canceled}")
        if c.insufficient:
            lines.append("Flagged     nothing: insufficient baseline (fewer than 3 previous successful runs)")
        elif len(c.flagged):
            lines.append(f"Flagged     {c.flagged_text()}")
        else:
            lines.append("Flagged     no step (each within the baseline's spread)")
        if c.new_steps:
            lines.append(f"New steps   {', '.join(c.new_steps)}")
        if c.missing_steps:
            lines.append(f"Missing     {', '.join(c.missing_steps)}")
        if s.first_failure:
            f = s.first_failure
            first = (f.message or "").strip().splitlines()
            lines.append(f"Failure     {f.step_key + ': ' if f.step_key else ''}{f.error_class or ''}"
                         f"{': ' + first[0] if first else ''}")
            if f.where:
                lines.append(f"            at {f.where}")
        return "\n".join(lines)

    __repr__ = __str__


def _sec(value: Any) -> float | None:
    if value is None:
        return None
    try:
        seconds = value.total_seconds()
    except AttributeError:
        seconds = float(value)
    return None if seconds != seconds else round(seconds, 3)


def explain_run(run_id: str, source: Any, baseline: int = 20) -> RunExplanation:
    """Why a run took as long as it did: anatomy, critical path, steps against a baseline, failure.

    Parameters
    ----------
    run_id : str
    source : runlens.Client or runlens.History
        A History store answers from its files (the run must be final in it); a client
        fetches the run's events and plan and the baseline's ``stepStats``.
    baseline : int, default 20
        Previous successful runs of the job to compare with.

    Returns
    -------
    RunExplanation

    Raises
    ------
    RunNotFound
        The run is not on the server (or not stored whole in the store).
    """
    comparison = compare_to_baseline(run_id, source, baseline=baseline)
    run_id = comparison.run_id
    from .history import History

    if isinstance(source, History):
        events = source.final_events(run_id)
        if events is None:
            raise RunNotFound(f"run {run_id!r} is not stored whole in {source.path}: sync it first", run_id=run_id)
        plan = None
    else:
        events = source.events(run_id)
        plan = source.execution_plan(run_id)
    summary = run_summary(events)
    if comparison.status and summary.status != comparison.status:
        summary.status = comparison.status
    summary.job_name = summary.job_name or comparison.job_name
    return RunExplanation(run_id, summary, run_anatomy(events, plan=plan), comparison)
