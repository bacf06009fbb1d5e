"""Dagster's own numbers for a run, read through Dagster's Python API (not GraphQL).

Tests compare what runlens fetched over GraphQL against these: the event count of the
run's event log, the event types in storage order, and ``stepStats``.
"""

from __future__ import annotations

import os
from pathlib import Path


def dagster_truth(home: Path | str, run_id: str) -> dict:
    """Event count, event types in storage order and step stats, straight from storage."""
    from dagster import DagsterInstance

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            records = instance.get_records_for_run(run_id, limit=1_000_000).records
            # The enum's *name* is what GraphQL serves (RUN_START); its value is the
            # legacy name stored on disk (PIPELINE_START).
            types = [r.event_log_entry.dagster_event.event_type.name if r.event_log_entry.is_dagster_event else None
                     for r in records]
            steps = {
                s.step_key: {
                    "status": s.status.value if s.status else None,
                    "start": s.start_time,
                    "end": s.end_time,
                    "attempts": len(s.attempts_list),
                }
                for s in instance.get_run_step_stats(run_id)
            }
            run = instance.get_run_by_id(run_id)
            return {"n_events": len(records), "event_types": types, "step_stats": steps,
                    "status": run.status.value, "job_name": run.job_name}
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
