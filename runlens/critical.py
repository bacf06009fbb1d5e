"""Which steps decided when a run ended: :func:`critical_path` and every step's slack.

Walks back from the last step to finish, each time to the upstream (in the run's plan,
:mod:`runlens.plan`) that finished last. Pure pandas; no network, no matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .errors import InvalidArgument
from .frames import require_kind
from .plan import check_plan, plan_from_events, resolve_plan
from .steps import step_durations_unchecked, warn_if_partial
from .text import duration_text

__all__ = ["CriticalPath", "critical_path"]


@dataclass(repr=False)
class CriticalPath:
    """The chain of steps that decided a run's end (:func:`critical_path`).

    Attributes
    ----------
    keys : list of str
        The chain, first step first.
    chain : pandas.DataFrame
        One row per step of the chain: ``step_key``, ``start``, ``end``, ``duration``,
        ``wait`` (its start minus its upstream's end; for the first step, minus the run's
        start when known: worker start-up, executor slots).
    slack : pandas.DataFrame
        Every timed step: ``step_key``, ``start``, ``end``, ``duration``, ``slack`` (how
        much longer it could have taken without the run ending later; 0 on the chain),
        ``on_path``.
    length : pandas.Timedelta
        The chain's durations and waits: first start (or the run's start) → last end.
    wall_time : pandas.Timedelta or None
        The run's start → its last step's end (or the run's end, when known).
    source : str
        Where the edges came from: ``"execution plan"`` or ``"events"``.
    """

    run_id: str | None
    keys: list[str]
    chain: pd.DataFrame
    slack: pd.DataFrame
    length: pd.Timedelta | None
    wall_time: pd.Timedelta | None
    source: str = "execution plan"
    edges: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __str__(self) -> str:
        if not self.keys:
            return "critical path: none (no step finished)"
        busy = self.chain["duration"].sum()
        of = f" of {duration_text(self.wall_time)}" if self.wall_time is not None else ""
        return f"critical path: {' → '.join(self.keys)}, {duration_text(busy)}{of}"

    __repr__ = __str__

    def __len__(self) -> int:
        return len(self.keys)


def _steps_of(frame: pd.DataFrame, func: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    kind = require_kind(frame, "steps", "step_stats", "events", func=func)
    if kind != "events":
        return frame, None
    warn_if_partial(frame, func)
    return step_durations_unchecked(frame), frame


def critical_path(steps: pd.DataFrame, plan: pd.DataFrame | None = None) -> CriticalPath:
    """The chain of steps that decided when the run ended, and every step's slack.

    Starting from the step that finished last, repeatedly step to its upstream (in the
    plan) that finished last. Each link's ``wait`` is the time between the upstream's end
    and the step's start: worker start-up, waiting for an executor slot.

    Parameters
    ----------
    steps : pandas.DataFrame
        One run's :func:`runlens.step_durations` frame, its ``Client.step_stats`` frame
        (Dagster's numbers), or its events frame.
    plan : pandas.DataFrame, optional
        The run's edges frame (:meth:`runlens.Client.execution_plan`); dynamic ``[?]``
        keys are resolved against the steps. Without it, the edges are inferred from the
        events' LOADED_INPUT lines (:func:`plan_from_events`): ``steps`` must then be an
        events frame.

    Returns
    -------
    CriticalPath
        ``str()`` reads ``critical path: a → b → d, 2.1 s of 4.3 s``.

    Raises
    ------
    InvalidArgument
        A frame of another kind or of several runs; no plan and no events to infer it.

    Examples
    --------
    >>> cp = runlens.critical_path(client.events(run_id), client.execution_plan(run_id))  # doctest: +SKIP
    >>> cp.keys                                                                          # doctest: +SKIP
    ['a', 'b', 'd']
    """
    steps, events = _steps_of(steps, "critical_path")
    if steps["run_id"].dropna().astype(str).nunique() > 1:
        raise InvalidArgument("critical_path() takes one run; select it first: frame[frame.run_id == run_id]")
    source = "execution plan"
    if plan is None:
        if events is None:
            raise InvalidArgument("critical_path() needs the run's plan (Client.execution_plan(run_id)) "
                                  "or its events frame to infer the edges from")
        plan, source = plan_from_events(events), "events"
    check_plan(plan, "critical_path")
    keys = [str(k) for k in steps["step_key"].astype(object)]
    edges = resolve_plan(plan, keys)
    run_id = _run_id(steps)
    run_start, run_end = _run_bounds(steps, run_id)
    return _walk(steps, edges, run_id, run_start, run_end, source)


def _run_id(steps: pd.DataFrame) -> str | None:
    ids = steps["run_id"].dropna()
    return str(ids.iloc[0]) if len(ids) else None


def _run_bounds(steps: pd.DataFrame, run_id: str | None) -> tuple[Any, Any]:
    start = (steps.attrs.get("run_start") or {}).get(run_id)
    end = (steps.attrs.get("run_end") or {}).get(run_id)
    return (None if start is None or pd.isna(start) else pd.Timestamp(start),
            None if end is None or pd.isna(end) else pd.Timestamp(end))


def _upstreams(edges: pd.DataFrame) -> dict[str, set[str]]:
    ups: dict[str, set[str]] = {}
    for step, up in zip(edges["step_key"].astype(object), edges["upstream"].astype(object), strict=True):
        if isinstance(step, str) and isinstance(up, str) and up != step:
            ups.setdefault(step, set()).add(up)
    return ups


def _walk(steps: pd.DataFrame, edges: pd.DataFrame, run_id: str | None, run_start: Any, run_end: Any,
          source: str) -> CriticalPath:
    timed = pd.DataFrame({
        "step_key": [str(k) for k in steps["step_key"].astype(object)],
        "start": pd.to_datetime(steps["start"], utc=True).to_numpy(),
        "end": pd.to_datetime(steps["end"], utc=True).to_numpy(),
    })
    timed["start"] = pd.to_datetime(timed["start"], utc=True)
    timed["end"] = pd.to_datetime(timed["end"], utc=True)
    timed = timed.dropna(subset=["start", "end"]).drop_duplicates("step_key").reset_index(drop=True)
    timed["duration"] = timed["end"] - timed["start"]
    end_of = dict(zip(timed["step_key"], timed["end"], strict=True))
    start_of = dict(zip(timed["step_key"], timed["start"], strict=True))
    ups = {k: {u for u in v if u in end_of} for k, v in _upstreams(edges).items()}

    chain: list[str] = []
    if len(timed):
        last_end = timed["end"].max()
        # The last step to finish; ties go to the one that started last (storage order after).
        current: str | None = timed.loc[timed["end"] == last_end].sort_values("start").iloc[-1]["step_key"]
        while current is not None and current not in chain:
            chain.append(current)
            candidates = ups.get(current) or set()
            current = max(sorted(candidates), key=lambda k: end_of[k]) if candidates else None
        chain.reverse()
    waits = []
    for i, key in enumerate(chain):
        before = end_of[chain[i - 1]] if i else run_start
        waits.append(start_of[key] - before if before is not None else pd.NaT)
    chain_frame = timed.set_index("step_key").loc[chain].reset_index()
    chain_frame["wait"] = pd.to_timedelta(pd.Series(waits, dtype="timedelta64[ms]"))
    slack_frame = timed.copy()
    slack_frame["slack"] = _slack(timed, ups, end_of)
    slack_frame["on_path"] = slack_frame["step_key"].isin(chain)
    length = wall = None
    if chain:
        first = run_start if run_start is not None else start_of[chain[0]]
        length = end_of[chain[-1]] - first
        wall_end = run_end if run_end is not None else end_of[chain[-1]]
        wall = wall_end - run_start if run_start is not None else end_of[chain[-1]] - start_of[chain[0]]
    return CriticalPath(run_id, chain, chain_frame, slack_frame, length, wall, source, edges)


def _slack(timed: pd.DataFrame, ups: dict[str, set[str]], end_of: dict[str, pd.Timestamp]) -> pd.Series:
    """Total float: a step can grow until some downstream's latest upstream end moves, and
    that downstream's own slack is used up; a step nothing depends on, until the last end."""
    downs: dict[str, set[str]] = {}
    for step, us in ups.items():
        for u in us:
            downs.setdefault(u, set()).add(step)
    last_end = timed["end"].max() if len(timed) else None
    slack: dict[str, pd.Timedelta] = {}
    for key in timed.sort_values("end", ascending=False, kind="stable")["step_key"]:
        options = []
        for d in downs.get(key, ()):
            if d in slack:
                latest_up = max(end_of[u] for u in ups[d])
                options.append(latest_up - end_of[key] + slack[d])
        slack[key] = min(options) if options else last_end - end_of[key]
    return pd.Series([slack[k] for k in timed["step_key"]], dtype="timedelta64[ms]")
