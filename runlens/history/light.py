"""The light sync: Dagster's own ``stepStats`` for many runs a request, instead of every event.

``History.sync(client, events=False)`` stores, for each finished run, the step rows Dagster
computes itself (``Run.stepStats``), asked for 100 runs at a time through ``runsOrError``
(``filter: {runIds: [...]}``): one request per 100 runs instead of one or more per run, and
tens of times less data. The rows land in the ``steps`` table with ``source = "stepStats"``;
what they lack against :func:`runlens.step_durations` of the events:

* no split of the time: ``retry_wait``, ``worker_startup``, ``resource_init``,
  ``input_loading`` and ``output_handling`` are NaT (``attempt_time`` is the sum of the
  attempts' spans), ``worker_spans`` is empty, ``last_event`` is NaT;
* no error: ``error_class`` and ``error_message`` are NA;
* no SKIPPED row for a step abandoned after an upstream failure (Dagster keeps no stats row
  for it);
* a step interrupted by its run's cancellation is FAILURE, as Dagster says (the events say
  CANCELED).

A run synced light is not *final* (its events are not stored): a later full sync fetches its
events, recomputes its steps from them and replaces the ``stepStats`` rows (``source``
becomes ``"events"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import queries

if TYPE_CHECKING:
    from ..client import Client

#: Runs whose stepStats one ``runsOrError`` request asks for (no server cap on ``limit`` was seen).
RUNS_PER_REQUEST = 100


def fetch_step_stats(client: Client, run_ids: list[str]) -> dict[str, list[dict]]:
    """``stepStats`` of each run, ``RUNS_PER_REQUEST`` runs a request; a run the server no longer has is absent."""
    found: dict[str, list[dict]] = {}
    for i in range(0, len(run_ids), RUNS_PER_REQUEST):
        chunk = run_ids[i:i + RUNS_PER_REQUEST]
        page, _count = client._runs_page(queries.RUNS_STEP_STATS, {"filter": {"runIds": chunk}, "limit": len(chunk)})
        for record in page:
            stats = record.get("stepStats")
            if isinstance(record.get("id"), str) and isinstance(stats, list):
                found[record["id"]] = [s for s in stats if isinstance(s, dict)]
    return found


def _ms(value: Any) -> int | None:
    """Float epoch seconds → milliseconds, truncated as Dagster truncates event timestamps."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value * 1000)


def _stamp(ms: int | None) -> pd.Timestamp | None:
    return None if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC")


def steps_of_step_stats(stats: dict[str, list[dict]]) -> pd.DataFrame:
    """``stepStats`` records of runs (run id → records) as a :func:`runlens.step_durations` frame.

    Rows: runs in the order given, each run's steps by start. The columns stepStats cannot
    fill are NaT/NA (see the module's notes).
    """
    from ..frames import STEP_STATUS_DTYPE, STRING, _categorical

    rows = []
    for run_id, records in stats.items():
        mine = []
        for s in records:
            start, end = _ms(s.get("startTime")), _ms(s.get("endTime"))
            spans = [(_ms(a.get("startTime")), _ms(a.get("endTime"))) for a in s.get("attempts") or []
                     if isinstance(a, dict)]
            mine.append((run_id, s.get("stepKey"), s.get("status"), start, end, spans))
        mine.sort(key=lambda r: (r[3] is None, r[3] or 0))
        rows.extend(mine)
    n = len(rows)

    def times(i: int) -> np.ndarray:
        return np.array([np.datetime64("NaT") if r[i] is None else np.datetime64(r[i], "ms") for r in rows],
                        dtype="datetime64[ms]")

    start, end = times(3), times(4)
    attempt_ms = [sum(b - a for a, b in r[5] if a is not None and b is not None) for r in rows]
    nat = np.full(n, np.timedelta64("NaT"), dtype="timedelta64[ms]")
    frame = pd.DataFrame({
        "run_id": _categorical([r[0] for r in rows]),
        "step_key": _categorical([r[1] for r in rows]),
        "status": pd.Categorical([r[2] for r in rows], dtype=STEP_STATUS_DTYPE),
        "start": pd.DatetimeIndex(start).tz_localize("UTC"),
        "end": pd.DatetimeIndex(end).tz_localize("UTC"),
        "duration": end - start,
        "attempts": np.array([len(r[5]) for r in rows], dtype="int64"),
        "attempt_time": np.array(attempt_ms, dtype="int64").astype("timedelta64[ms]"),
        "retry_wait": nat, "worker_startup": nat, "resource_init": nat,
        "input_loading": nat.copy(), "output_handling": nat.copy(),
        "error_class": pd.Categorical([None] * n),
        "error_message": pd.array([None] * n, dtype=STRING),
        "last_event": pd.DatetimeIndex(np.full(n, np.datetime64("NaT"), dtype="datetime64[ms]")).tz_localize("UTC"),
        "attempt_spans": pd.Series([[(_stamp(a), _stamp(b)) for a, b in r[5]] for r in rows], dtype=object),
        "worker_spans": pd.Series([[] for _ in rows], dtype=object),
    }, index=pd.RangeIndex(n))
    return frame
