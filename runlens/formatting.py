"""Text and JSON renderings of runs and events, as the CLI prints them.

The JSON shapes follow the seed spec: ``run get`` gives an object with ``id, status,
created_at, started_at, ended_at, pipeline_name, mode`` (and more); ``run-events get``
gives ``{"run_id", "events": [{runId, message, timestamp, level, stepKey, eventType}],
"count", "has_more"}``. Times are :func:`runlens.text.iso_utc` text, durations
:func:`runlens.text.duration_text`, never the raw epoch numbers Dagster sends.

Text tables fit their columns to the values shown. Given a terminal ``width``, a table
cuts messages to fit it and, when even the fixed columns leave too little room, puts
each message on a line of its own; with ``width=None`` (``--wide``, or stdout is not a
terminal) every message is shown whole, one event per line.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .models import Run
from .text import MISSING, duration_text, iso_utc, without_class_prefix

if TYPE_CHECKING:
    import pandas as pd

#: Below this many characters left for the message, a table row is split in two lines.
MIN_MESSAGE_WIDTH = 24
#: Indent of the second line of a split row.
INDENT = "  "


def run_to_dict(run: Run) -> dict[str, Any]:
    """The seed's JSON keys for a run, plus job name, tags and step counts."""
    out: dict[str, Any] = {
        "id": run.id,
        "status": str(run.status),
        "created_at": iso_utc(run.created_at, missing=None),
        "started_at": iso_utc(run.started_at, missing=None),
        "ended_at": iso_utc(run.ended_at, missing=None),
        "pipeline_name": run.pipeline_name,
        "mode": run.mode,
        "job_name": run.job_name,
        "updated_at": iso_utc(run.updated_at, missing=None),
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
    """Render a run as ``Key: value`` lines, or as JSON.

    The text names the job (``Job:``), not the legacy ``Pipeline:``/``Mode: default``
    of the seed: Dagster has had jobs, not pipelines and modes, since 0.13. The JSON
    keeps the seed's ``pipeline_name`` and ``mode`` for scripts written against it.
    """
    if as_json:
        return json.dumps(run_to_dict(run), indent=2, ensure_ascii=False)
    lines = [f"Run ID: {run.id}", f"Status: {run.status}"]
    if run.job_name or run.pipeline_name:
        lines.append(f"Job: {run.job_name or run.pipeline_name}")
    lines.append(f"Created: {iso_utc(run.created_at)}")
    if run.started_at:
        lines.append(f"Started: {iso_utc(run.started_at)}")
    if run.ended_at:
        lines.append(f"Ended: {iso_utc(run.ended_at)}")
    if run.duration is not None:
        lines.append(f"Duration: {duration_text(run.duration)}")
    if run.stats is not None:
        lines.append(f"Steps: {run.stats.steps_succeeded} succeeded, {run.stats.steps_failed} failed")
    if run.tags:
        lines.append("Tags: " + ", ".join(f"{k}={v}" for k, v in sorted(run.tags.items())))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- runs


def runs_to_records(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """A runs frame (:func:`runlens.frames.runs_frame`) as ``run list``'s JSON records."""
    import pandas as pd

    return [
        {
            "id": r.run_id,
            "job_name": None if pd.isna(r.job_name) else r.job_name,
            "status": str(r.status),
            "created_at": iso_utc(r.created, missing=None),
            "duration_seconds": None if pd.isna(r.duration) else r.duration.total_seconds(),
        }
        for r in runs.itertuples()
    ]


def format_runs_json(runs: pd.DataFrame, *, has_more: bool | None = None) -> str:
    """``{"runs": [...], "count": N}`` for ``run list --json``; with ``has_more``, also
    ``"has_more"`` and ``"cursor"`` (the last run's id, for ``--cursor``)."""
    records = runs_to_records(runs)
    doc: dict[str, Any] = {"runs": records, "count": len(records)}
    if has_more is not None:
        doc.update(has_more=has_more, cursor=records[-1]["id"] if records else None)
    return json.dumps(doc, indent=2, ensure_ascii=False)


def format_runs_table(runs: pd.DataFrame, *, width: int | None = None) -> str:
    """One line per run (RUN_ID, JOB, STATUS, CREATED, DURATION), columns fitted to the values.

    When a line would not fit in `width`, each run takes two: the id and status, then
    the job, creation time and duration indented below.
    """
    records = runs_to_records(runs)
    if not records:
        return "No runs found"
    rows = [
        (r["id"], r["job_name"] or "", r["status"], r["created_at"] or MISSING, duration_text(r["duration_seconds"]))
        for r in records
    ]
    header = ("RUN_ID", "JOB", "STATUS", "CREATED", "DURATION")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    if width is None or sum(widths) + len(widths) - 1 <= width:
        return "\n".join(_aligned(line, widths) for line in [header, *rows])
    # Too narrow: two lines per run. Run ids stay whole (they are what a user copies);
    # a long job name is what gets cut.
    lines = [_aligned(header[:3:2], widths[:3:2]), INDENT + " · ".join(header[1:4:2] + header[4:])]
    for run_id, job, status, created, duration in rows:
        lines.append(f"{run_id:<{widths[0]}} {status}")
        rest = f" · {created} · {duration}"
        lines.append(INDENT + _cut(job or MISSING, width - len(INDENT) - len(rest)) + rest)
    return "\n".join(lines)


def _aligned(values: tuple | list, widths: list[int]) -> str:
    return " ".join(f"{v:<{w}}" for v, w in zip(values, widths, strict=True)).rstrip()


# ---------------------------------------------------------------------------- events


def _one_line(text: str) -> str:
    # One event, one row: control characters would break the table.
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _cut(text: str, width: int) -> str:
    return text[: max(0, width - 3)] + "..." if len(text) > width else text


def _texts(events: pd.DataFrame, name: str) -> list[str]:
    series = events[name].astype(object)
    return series.where(series.notna(), "").tolist()


def format_events_table(events: pd.DataFrame, run_id: str, *, width: int | None = None) -> str:
    """One line per event: TIMESTAMP, LEVEL, TYPE, STEP_KEY, MESSAGE, then the errors.

    Parameters
    ----------
    events : pandas.DataFrame
        An events frame.
    run_id : str
    width : int, optional
        The terminal's width: messages are cut to fit it (``...``), and when the other
        columns leave fewer than :data:`MIN_MESSAGE_WIDTH` characters, each message goes
        on its own indented line after its step key. None (``--wide``, or output to a
        pipe or file): whole messages, one event per line.
    """
    if len(events) == 0:
        return f"No events found for run {run_id}"
    columns = _event_texts(events)
    widths = [max(len(h), *map(len, values)) for h, values in zip(EVENT_HEADER, columns[:4], strict=True)]
    lines = [f"Events for run {run_id}:", "", *_event_head(widths, width), *_event_rows(columns, widths, width)]
    lines.extend(["", f"Total events: {len(events)}"])
    lines.extend(_error_lines(events, width))
    return "\n".join(lines)


#: The columns of an events table before MESSAGE.
EVENT_HEADER = ("TIMESTAMP", "LEVEL", "TYPE", "STEP_KEY")


def _event_texts(events: pd.DataFrame) -> tuple[list[str], ...]:
    """The table's columns as text: times, levels, types, step keys, then messages on one line each."""
    times = [iso_utc(t) for t in events["timestamp"]]
    messages = [_one_line(m) for m in _texts(events, "message")]
    return times, _texts(events, "level"), _texts(events, "event_type"), _texts(events, "step_key"), messages


def _split_rows(widths: list[int], width: int | None) -> bool:
    """Whether the fixed columns leave too little room for a message column: two lines per event."""
    return width is not None and width - (sum(widths) + len(widths)) < MIN_MESSAGE_WIDTH


def _event_head(widths: list[int], width: int | None) -> list[str]:
    """The header lines of an events table with these column widths."""
    if not _split_rows(widths, width):
        fixed = sum(widths) + len(widths) - 1
        head = f"{_aligned(EVENT_HEADER, widths):<{fixed}} MESSAGE"
        return [head, "-" * min(len(head), width or len(head))]
    head = _aligned(EVENT_HEADER[:3], widths[:3])
    return [head, INDENT + "[STEP_KEY] MESSAGE", "-" * min(len(head), width or len(head))]


def _event_rows(columns: tuple[list[str], ...], widths: list[int], width: int | None) -> list[str]:
    """The rows of an events table: one line per event, or two when the terminal is narrow."""
    lines = []
    if not _split_rows(widths, width):
        fixed = sum(widths) + len(widths) - 1  # the columns before MESSAGE, with their spaces
        room = None if width is None else width - fixed - 1
        for *fields, message in zip(*columns, strict=True):
            text = message if room is None else _cut(message, room)
            lines.append(f"{_aligned(fields, widths):<{fixed}} {text}".rstrip())
        return lines
    # Too narrow for a message column: each event takes two lines.
    line_width = width - len(INDENT)
    for time, level, type_, step, message in zip(*columns, strict=True):
        lines.append(_aligned((time, level, type_), widths[:3]).rstrip())
        second = (f"[{step}] " if step else "") + message
        if second:  # RUN_ENQUEUED and RUN_STARTING have no message and no step: no blank line
            lines.append(INDENT + _cut(second, line_width))
    return lines


class EventLines:
    """``run-events tail``'s text: ``run-events get``'s table, a batch of events at a time.

    The header comes once (:meth:`head`); then :meth:`lines` gives each batch's rows,
    each error event followed by its error (class, message, cause) indented below it.
    Column widths start at what Dagster's common values need and only grow, so the
    columns stay aligned as events stream in.

    Parameters
    ----------
    width : int, optional
        The terminal's width (messages cut to fit), or None for whole messages.
    """

    #: Starting widths: an ISO time, CRITICAL, STEP_WORKER_STARTED, a short step key.
    START_WIDTHS = (24, 8, 19, 12)

    def __init__(self, width: int | None = None) -> None:
        self.width = width
        self.widths = list(self.START_WIDTHS)

    def head(self) -> list[str]:
        """The header lines."""
        return _event_head(self.widths, self.width)

    def lines(self, events: pd.DataFrame) -> list[str]:
        """The rows of a batch, each error right under its event's row."""
        columns = _event_texts(events)
        self.widths = [max([w, *map(len, values)]) for w, values in zip(self.widths, columns[:4], strict=True)]
        rows = _event_rows(columns, self.widths, self.width)
        if events["error_class"].notna().any() or events["error_message"].notna().any():
            # Rows are one line per event unless split: attach each error after its event's line(s).
            per = 1 if not _split_rows(self.widths, self.width) else None
            out: list[str] = []
            at = 0
            for i, row in enumerate(events.itertuples()):
                take = per if per is not None else (2 if (columns[3][i] or columns[4][i]) else 1)
                out.extend(rows[at:at + take])
                at += take
                out.extend(_error_text_lines(row, self.width))
            return out
        return rows


def _error_lines(events: pd.DataFrame, width: int | None = None) -> list[str]:
    """The errors carried by the listed events, with their cause chain, in full.

    In a terminal (`width`), long ones are wrapped under their indent, never cut.
    """
    with_error = events[events["error_class"].notna() | events["error_message"].notna()]
    if len(with_error) == 0:
        return []
    lines = ["", "Errors:"]
    for row in with_error.itertuples():
        lines.extend(_error_text_lines(row, width))
    return lines


def _error_text_lines(row: Any, width: int | None) -> list[str]:
    """One event's error (``[step] Class: message``, then its cause), indented; none if it has no error."""
    if not isinstance(row.error_class, str) and not isinstance(row.error_message, str):
        return []
    lines: list[str] = []

    def add(text: str, indent: str) -> None:
        if width is None or len(indent) + len(text) <= width:
            lines.append(indent + text)
        else:
            import textwrap

            lines.extend(textwrap.wrap(text, max(20, width), initial_indent=indent,
                                       subsequent_indent=indent + INDENT, break_on_hyphens=False))

    where = row.step_key if isinstance(row.step_key, str) else "run"
    message = _one_line(without_class_prefix(str(row.error_message or "").strip(), row.error_class))
    add(f"[{where}] {row.error_class}: {message}", INDENT)
    if isinstance(row.error_cause, str):
        add(f"caused by {_one_line(row.error_cause)}", INDENT * 2)
    return lines


def more_events_note(events: pd.DataFrame) -> str:
    """What ``run-events get`` says on stderr when ``--limit`` cut the result."""
    n = len(events)
    return f"Showing {n} event{'' if n == 1 else 's'}; more match — raise --limit"


def events_to_records(events: pd.DataFrame) -> list[dict[str, Any]]:
    """Events as the seed's JSON records (camelCase keys, ISO 8601 UTC timestamps)."""
    times = [iso_utc(t, missing=None) for t in events["timestamp"]]

    def column(name: str) -> list:
        series = events[name].astype(object)
        return series.where(series.notna(), None).tolist()

    return [
        {"runId": r, "message": m, "timestamp": t, "level": lv, "stepKey": s, "eventType": e}
        for r, m, t, lv, s, e in zip(
            column("run_id"), column("message"), times, column("level"), column("step_key"),
            column("event_type"), strict=True,
        )
    ]


def format_events_json(events: pd.DataFrame, run_id: str, *, has_more: bool = False,
                       cursor: str | None = None) -> str:
    """The seed's JSON document for a list of events, plus ``has_more`` and ``cursor``.

    ``has_more`` is true when the limit cut the result: more events match. ``cursor`` is
    the position after the last event returned (``--cursor`` resumes from it).
    """
    return json.dumps(
        {"run_id": run_id, "events": events_to_records(events), "count": len(events), "has_more": has_more,
         "cursor": cursor},
        indent=2,
        ensure_ascii=False,
    )


# ---------------------------------------------------------------------------- assets


def _json_value(value: Any) -> Any:
    """A frame cell as JSON: NA -> null, times ISO UTC, numpy scalars plain, inf/nan as text."""
    import math

    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (list, dict)):
        return value
    if isinstance(value, pd.Timestamp):
        return iso_utc(value, missing=None)
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def assets_to_records(assets: pd.DataFrame) -> list[dict[str, Any]]:
    """An assets frame (:meth:`runlens.Client.assets`) as ``asset list``'s JSON records."""
    return [{name: _json_value(row[name]) for name in ("key", "group", "partitioned", "defined",
                                                       "last_materialization")}
            for _, row in assets.iterrows()]


def format_assets_json(assets: pd.DataFrame) -> str:
    """``{"assets": [{key, group, partitioned, defined, last_materialization}], "count": N}``."""
    records = assets_to_records(assets)
    return json.dumps({"assets": records, "count": len(records)}, indent=2, ensure_ascii=False)


def format_assets_table(assets: pd.DataFrame, *, width: int | None = None) -> str:
    """One line per asset: KEY GROUP PARTITIONED LAST_MATERIALIZATION (keys are never cut)."""
    records = assets_to_records(assets)
    if not records:
        return "No assets found"
    rows = [(r["key"], r["group"] or MISSING, {True: "yes", False: "no"}.get(r["partitioned"], MISSING),
             r["last_materialization"] or "never") for r in records]
    header = ("KEY", "GROUP", "PARTITIONED", "LAST_MATERIALIZATION")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = [_aligned(line, widths) for line in [header, *rows]]
    return "\n".join(lines)


def _metadata_columns(events: pd.DataFrame) -> list[str]:
    return [c for c in events.columns if c.startswith("meta.")]


def asset_events_to_records(events: pd.DataFrame) -> list[dict[str, Any]]:
    """An asset events frame as ``asset events``' JSON records; metadata under ``metadata``."""
    meta = _metadata_columns(events)
    records = []
    for _, row in events.iterrows():
        record = {name: _json_value(row[name]) for name in ("timestamp", "partition", "status", "run_id",
                                                            "step_key", "event_type")}
        record["status"] = None if record["status"] is None else str(record["status"])
        record["metadata"] = {c[5:]: _json_value(row[c]) for c in meta if _json_value(row[c]) is not None}
        records.append(record)
    return records


def format_asset_events_json(events: pd.DataFrame) -> str:
    """``{"asset_key", "events": [...], "count", "has_more", "cursor", "metadata_notes"}``."""
    records = asset_events_to_records(events)
    return json.dumps({"asset_key": events.attrs.get("asset_key"), "events": records, "count": len(records),
                       "has_more": bool(events.attrs.get("has_more", False)), "cursor": events.attrs.get("cursor"),
                       "metadata_notes": events.attrs.get("metadata_notes") or {}}, indent=2, ensure_ascii=False)


def format_asset_events_table(events: pd.DataFrame, *, width: int | None = None) -> str:
    """TIMESTAMP PARTITION STATUS RUN_ID METADATA (``label=value`` pairs, cut to ``width``)."""
    records = asset_events_to_records(events)
    if not records:
        return f"No events found for asset {events.attrs.get('asset_key', '')}".rstrip()
    rows = []
    for r in records:
        metadata = " ".join(f"{k}={_one_line(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))}"
                            for k, v in r["metadata"].items())
        rows.append((r["timestamp"] or MISSING, r["partition"] or MISSING, r["status"] or MISSING,
                     r["run_id"] or MISSING, metadata))
    header = ("TIMESTAMP", "PARTITION", "STATUS", "RUN_ID", "METADATA")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header[:4])]
    fixed = sum(widths) + len(widths)
    lines = [_aligned(header, [*widths, 0])]
    for row in rows:
        metadata = row[4] if width is None else _cut(row[4], max(MIN_MESSAGE_WIDTH, width - fixed))
        lines.append(_aligned((*row[:4], metadata), [*widths, 0]))
    lines.append(f"Total events: {len(records)}")
    return "\n".join(lines)
