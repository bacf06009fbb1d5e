"""Text and JSON renderings of runs and events, as the CLI prints them.

The shapes follow the seed spec: ``run get`` prints ``Run ID:``/``Status:``/... lines or a
JSON object with ``id, status, created_at, started_at, ended_at, pipeline_name, mode``;
``run-events get`` prints a TIMESTAMP/TYPE/STEP_KEY/MESSAGE table or
``{"run_id", "events": [{runId, message, timestamp, level, stepKey, eventType}], "count"}``.
Times are ISO 8601 in UTC, never the raw epoch numbers Dagster sends.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .models import Run

if TYPE_CHECKING:
    import pandas as pd

MESSAGE_WIDTH = 50


def iso(value: datetime | None, *, timespec: str = "milliseconds") -> str | None:
    """An aware datetime as ISO 8601 UTC with a ``Z`` (``2026-11-26T04:26:30.783Z``)."""
    if value is None:
        return None
    return value.isoformat(timespec=timespec).replace("+00:00", "Z")


def run_to_dict(run: Run) -> dict[str, Any]:
    """The seed's JSON keys for a run, plus job name, tags and step counts."""
    out: dict[str, Any] = {
        "id": run.id,
        "status": str(run.status),
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "pipeline_name": run.pipeline_name,
        "mode": run.mode,
        "job_name": run.job_name,
        "updated_at": iso(run.updated_at),
        "duration_seconds": run.duration.total_seconds() if run.duration is not None else None,
        "root_run_id": run.root_run_id,
        "parent_run_id": run.parent_run_id,
        "tags": dict(run.tags),
    }
    if run.stats is not None:
        out["stats"] = {
            "steps_succeeded": run.stats.steps_succeeded,
            "steps_failed": run.stats.steps_failed,
            "materializations": run.stats.materializations,
            "expectations": run.stats.expectations,
        }
    return out


def format_run(run: Run, *, as_json: bool = False) -> str:
    """Render a run as the seed's lines, or as JSON."""
    if as_json:
        return json.dumps(run_to_dict(run), indent=2, ensure_ascii=False)
    lines = [f"Run ID: {run.id}", f"Status: {run.status}", f"Created: {iso(run.created_at)}"]
    if run.started_at:
        lines.append(f"Started: {iso(run.started_at)}")
    if run.ended_at:
        lines.append(f"Ended: {iso(run.ended_at)}")
    if run.duration is not None:
        lines.append(f"Duration: {run.duration.total_seconds():.3f} s")
    if run.pipeline_name:
        lines.append(f"Pipeline: {run.pipeline_name}")
    if run.mode:
        lines.append(f"Mode: {run.mode}")
    if run.stats is not None:
        lines.append(f"Steps: {run.stats.steps_succeeded} succeeded, {run.stats.steps_failed} failed")
    if run.tags:
        lines.append("Tags: " + ", ".join(f"{k}={v}" for k, v in sorted(run.tags.items())))
    return "\n".join(lines)


def _one_line(text: str) -> str:
    # One event, one row: control characters would break the table.
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _cut(text: str, width: int = MESSAGE_WIDTH) -> str:
    return text[: width - 3] + "..." if len(text) > width else text


def format_events_table(events: pd.DataFrame, run_id: str) -> str:
    """The seed's table, one line per event, columns widened to fit long values."""
    if len(events) == 0:
        return f"No events found for run {run_id}"
    times = events["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S").tolist()
    types = events["event_type"].astype(object).where(events["event_type"].notna(), "").tolist()
    steps = events["step_key"].astype(object).where(events["step_key"].notna(), "").tolist()
    messages = [_cut(_one_line(m)) for m in events["message"].fillna("").tolist()]
    type_w = max(20, max(map(len, types)))
    step_w = max(30, max(map(len, steps)))
    header = f"{'TIMESTAMP':<20} {'TYPE':<{type_w}} {'STEP_KEY':<{step_w}} {'MESSAGE':<{MESSAGE_WIDTH}}"
    lines = [f"Events for run {run_id}:", "", header, "-" * len(header)]
    lines.extend(
        f"{t:<20} {ty:<{type_w}} {s:<{step_w}} {m}".rstrip() for t, ty, s, m in zip(times, types, steps, messages)
    )
    lines.extend(["", f"Total events: {len(events)}"])
    lines.extend(_error_lines(events))
    return "\n".join(lines)


def _without_class_prefix(message: str, error_class: object) -> str:
    # Dagster's messages repeat the class, often fully qualified: "pkg.mod.Cls: text".
    head, sep, rest = message.partition(": ")
    if sep and isinstance(error_class, str) and head.rsplit(".", 1)[-1] == error_class:
        return rest
    return message


def _error_lines(events: pd.DataFrame) -> list[str]:
    """The errors carried by the listed events, with their cause chain, in full."""
    with_error = events[events["error_class"].notna() | events["error_message"].notna()]
    if len(with_error) == 0:
        return []
    lines = ["", "Errors:"]
    for row in with_error.itertuples():
        where = row.step_key if isinstance(row.step_key, str) else "run"
        message = _one_line(_without_class_prefix(str(row.error_message or "").strip(), row.error_class))
        lines.append(f"  [{where}] {row.error_class}: {message}")
        if isinstance(row.error_cause, str):
            lines.append(f"    caused by {_one_line(row.error_cause)}")
    return lines


def events_to_records(events: pd.DataFrame) -> list[dict[str, Any]]:
    """Events as the seed's JSON records (camelCase keys, ISO 8601 UTC timestamps)."""
    times = events["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"

    def column(name: str) -> list:
        series = events[name].astype(object)
        return series.where(series.notna(), None).tolist()

    return [
        {"runId": r, "message": m, "timestamp": t, "level": lv, "stepKey": s, "eventType": e}
        for r, m, t, lv, s, e in zip(
            column("run_id"), column("message"), times.tolist(), column("level"), column("step_key"),
            column("event_type"),
        )
    ]


def format_events_json(events: pd.DataFrame, run_id: str) -> str:
    """The seed's JSON document for a list of events."""
    return json.dumps(
        {"run_id": run_id, "events": events_to_records(events), "count": len(events)},
        indent=2,
        ensure_ascii=False,
    )
