"""Dagster's own numbers for a run, read through Dagster's Python API (not GraphQL).

Tests compare what runlens fetched over GraphQL against these: the event count of the
run's event log, the event types in storage order, and ``stepStats``; and an asset's
event records (:func:`dagster_asset_truth`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def _instance(home: Path | str) -> Iterator:
    """The instance of ``DAGSTER_HOME`` ``home``, the environment restored afterwards."""
    from dagster import DagsterInstance

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            yield instance
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def dagster_asset_truth(home: Path | str, key: str) -> list[dict]:
    """Every materialization, failed materialization and observation of an asset (``a/b``), oldest first.

    Each: ``storage_id``, ``status`` (``MATERIALIZED``, ``FAILED``, ``OBSERVED``),
    ``timestamp_ms`` (as GraphQL serves it: whole milliseconds), ``run_id``, ``step_key``,
    ``partition`` and ``metadata`` (``{label: the value as Python holds it}``).
    """
    from dagster import AssetKey
    from dagster._core.event_api import AssetRecordsFilter

    records_filter = AssetRecordsFilter(asset_key=AssetKey(key.split("/")))
    with _instance(home) as instance:
        fetched = [("MATERIALIZED", instance.fetch_materializations), ("FAILED", instance.fetch_failed_materializations),
                   ("OBSERVED", instance.fetch_observations)]
        rows = []
        for status, fetch in fetched:
            for record in fetch(records_filter, limit=10_000, ascending=True).records:
                entry = record.event_log_entry
                event = entry.dagster_event
                data = event.event_specific_data
                payload = getattr(data, "materialization", None) or getattr(data, "asset_observation", None) or \
                    getattr(data, "asset_materialization_failure", None)
                rows.append({"storage_id": record.storage_id, "status": status,
                             "timestamp_ms": int(entry.timestamp * 1000), "run_id": entry.run_id,
                             "step_key": entry.step_key, "partition": record.partition_key,
                             "metadata": {k: v.value for k, v in (payload.metadata if payload else {}).items()}})
    return sorted(rows, key=lambda r: r["storage_id"])


def dagster_truth(home: Path | str, run_id: str) -> dict:
    """Event count, event types in storage order and step stats, straight from storage."""
    with _instance(home) as instance:
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
