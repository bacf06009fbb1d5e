"""A run's dependency graph as an edges frame.

* :func:`plan_frame` reads Dagster's ``Run.executionPlan`` into an *edges frame* (one row
  per step input and the step it depends on); :meth:`runlens.Client.execution_plan`
  returns it. Dynamic steps appear in the plan unresolved (``process[?]``) while the
  events carry resolved keys (``process[emea]``): :func:`resolve_plan` maps one onto the
  others.
* :func:`plan_from_events` infers the same edges from a run's LOADED_INPUT events
  (``Loaded input "x" ..., from output "result" of step "a"``) when no plan was fetched.

:func:`runlens.critical_path` (``critical.py``) walks these edges. Pure pandas.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from .errors import InvalidArgument
from .frames import require_kind

__all__ = ["PLAN_COLUMNS", "check_plan", "plan_frame", "plan_from_events", "resolve_plan"]

#: The edges frame's columns: a row per (step, input, upstream step); a step without
#: inputs has one row with ``input`` and ``upstream`` NA, so every step is listed.
PLAN_COLUMNS = ("step_key", "kind", "input", "upstream")

_LOADED = re.compile(r'^Loaded input "([^"]+)" using input manager "[^"]*", from output "[^"]*" of step "([^"]+)"')
_UNRESOLVED = "[?]"


def plan_frame(steps: list[dict] | None, run_id: str | None = None) -> pd.DataFrame:
    """The edges frame of ``executionPlan { steps { key kind inputs { name dependsOn { key } } } }``.

    Parameters
    ----------
    steps : list of dict
        The plan's ``steps`` records as Dagster answers them.
    run_id : str, optional
        Kept in ``attrs["run_id"]``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PLAN_COLUMNS` (strings; ``kind`` e.g. ``COMPUTE``,
        ``UNRESOLVED_MAPPED``). Keys are as Dagster has them (``process[?]``).
    """
    rows: list[tuple] = []
    for step in steps or []:
        key, kind = step.get("key"), step.get("kind")
        deps = [(i.get("name"), d.get("key")) for i in step.get("inputs") or [] for d in i.get("dependsOn") or []]
        rows += [(key, kind, name, up) for name, up in deps] or [(key, kind, None, None)]
    return _edges(rows, run_id)


def _edges(rows: list[tuple], run_id: str | None) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(PLAN_COLUMNS), dtype=object).astype(pd.StringDtype())
    frame = frame.drop_duplicates().reset_index(drop=True)
    frame.attrs["run_id"] = run_id
    return frame


def plan_from_events(events: pd.DataFrame) -> pd.DataFrame:
    """The dependency edges a run's events show: each LOADED_INPUT names its upstream step.

    A fallback for :meth:`runlens.Client.execution_plan`: inputs that load nothing
    (``Nothing`` dependencies) or come from an input manager leave no edge here.

    Returns
    -------
    pandas.DataFrame
        An edges frame (:data:`PLAN_COLUMNS`, ``kind`` NA), resolved keys, one run.
    """
    require_kind(events, "events", func="plan_from_events")
    events = _one_run_events(events, "plan_from_events")
    # No per-row string work: a 1M-event frame is scanned in milliseconds (run_summary calls this).
    steps = _present(events["step_key"])
    loaded = events[(events["event_type"] == "LOADED_INPUT").fillna(False).to_numpy(dtype=bool)]
    found: dict[str, list[tuple]] = {k: [] for k in steps}
    for key, message in zip(loaded["step_key"].astype(object), loaded["message"].astype(object), strict=True):
        match = _LOADED.match(str(message)) if isinstance(key, str) else None
        if match:
            found.setdefault(key, []).append((key, None, match.group(1), match.group(2)))
    rows = [row for key, edges in found.items() for row in (edges or [(key, None, None, None)])]
    run_ids = _present(events["run_id"])
    return _edges(rows, str(run_ids[0]) if len(run_ids) else None)


def _present(column: pd.Series) -> list[str]:
    """The distinct values of a column, from a categorical's codes when it is one (fast)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        return [str(c) for c in column.cat.categories[np.unique(codes[codes >= 0])]]
    return [str(v) for v in column.dropna().unique()]


def _one_run_events(events: pd.DataFrame, func: str) -> pd.DataFrame:
    if len(_present(events["run_id"])) > 1:
        raise InvalidArgument(f"{func}() takes one run; select it first: frame[frame.run_id == run_id]")
    return events


def _base(key: str) -> str:
    return key[: key.index("[")] if key.endswith("]") and "[" in key else key


def _mapping(key: str) -> str | None:
    return key[key.index("[") + 1: -1] if key.endswith("]") and "[" in key else None


def resolve_plan(plan: pd.DataFrame, step_keys: Any) -> pd.DataFrame:
    """Map a plan's dynamic ``name[?]`` steps onto the resolved keys that ran.

    ``b[?]`` depending on ``a`` becomes ``b[x]`` depending on ``a`` for every ``b[x]`` in
    ``step_keys``; ``c`` collecting ``b[?]`` depends on every ``b[x]``; ``c[?]`` mapped
    from ``b[?]`` pairs ``c[x]`` with ``b[x]``. An unresolved step that never ran keeps
    its ``[?]`` key.

    Parameters
    ----------
    plan : pandas.DataFrame
        An edges frame (:func:`plan_frame`).
    step_keys : iterable of str
        The run's step keys (e.g. ``step_durations(events).step_key``).
    """
    check_plan(plan, "resolve_plan")
    keys = [str(k) for k in pd.unique(pd.Series(list(step_keys), dtype=object).dropna())]
    by_base: dict[str, list[str]] = {}
    for k in keys:
        if _mapping(k) is not None:
            by_base.setdefault(_base(k), []).append(k)

    def expand(key: str) -> list[str]:
        if key.endswith(_UNRESOLVED):
            return by_base.get(_base(key)) or [key]
        return [key]

    rows: list[tuple] = []
    for step, kind, name, up in plan[list(PLAN_COLUMNS)].astype(object).itertuples(index=False):
        step = None if pd.isna(step) else str(step)
        up = None if pd.isna(up) else str(up)
        for resolved in expand(step):
            if up is None:
                rows.append((resolved, kind, name, None))
            elif up.endswith(_UNRESOLVED) and step.endswith(_UNRESOLVED) and _mapping(resolved) not in (None, "?"):
                rows.append((resolved, kind, name, f"{_base(up)}[{_mapping(resolved)}]"))
            else:
                rows += [(resolved, kind, name, u) for u in expand(up)]
    out = _edges([tuple(None if pd.isna(v) else v for v in r) for r in rows], plan.attrs.get("run_id"))
    return out


def check_plan(plan: Any, func: str) -> None:
    if not isinstance(plan, pd.DataFrame) or not {"step_key", "upstream"} <= set(plan.columns):
        raise InvalidArgument(f"{func}() expects an edges frame with step_key and upstream columns "
                              f"(Client.execution_plan(run_id) or runlens.plan_from_events(events)); "
                              f"got {type(plan).__name__}")
    for column in PLAN_COLUMNS:
        if column not in plan.columns:
            plan[column] = pd.array([None] * len(plan), dtype=pd.StringDtype())
