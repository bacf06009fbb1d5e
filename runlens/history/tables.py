"""runlens frames ↔ the Arrow tables stored in Parquet: one place for the stored schemas.

Stored files hold plain types every Parquet reader understands: strings (dictionary-encoded
by the writer) where frames have categoricals, ``timestamp[ms, UTC]`` times, and step
durations as float *seconds* (``SELECT median(duration) FROM steps`` reads naturally).
Reading turns them back into exactly the frames ``Client.events`` and ``step_durations``
return: same columns, dtypes and category order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..event_types import EVENT_TYPES
from ..frames import (
    _TEXT,
    EVENT_COLUMNS,
    RUN_STATUS_DTYPE,
    STEP_COLUMNS,
    STEP_STATUS_DTYPE,
    STRING,
    _categorical,
    _encoded,
    _string_array,
    runs_frame,
)
from ..vocabulary import LEVELS

TS = pa.timestamp("ms", tz="UTC")
_CATEGORY_COLUMNS = ("level", "event_type", "step_key", "kind", "error_class")
_TEXT_COLUMNS = ("message", "error_message", "error_cause", "error_stack", "error_cause_stack", "asset_key")

#: Columns the stored events and steps files add to the frames' own: what queries filter and sort on.
EXTRA = {"job_name": pa.string(), "run_created": TS}

EVENTS_SCHEMA = pa.schema(
    [("seq", pa.int64()), ("run_id", pa.string()), ("timestamp", TS)]
    + [(c, pa.string()) for c in ("level", "event_type", "step_key")]
    + [("message", pa.string()), ("kind", pa.string()), ("error_class", pa.string())]
    + [(c, pa.string()) for c in _TEXT_COLUMNS[1:]]
    + list(EXTRA.items())
)
assert [f.name for f in EVENTS_SCHEMA][: len(EVENT_COLUMNS)] == list(EVENT_COLUMNS)

_SPAN = pa.list_(pa.struct([("start", TS), ("end", TS)]))
_DURATIONS = [c for c, d in STEP_COLUMNS.items() if d == "timedelta64[ms]"]
STEPS_SCHEMA = pa.schema(
    [("run_id", pa.string()), ("step_key", pa.string()), ("status", pa.string()), ("start", TS), ("end", TS)]
    + [(c, pa.float64()) for c in _DURATIONS[:1]]
    + [("attempts", pa.int64())]
    + [(c, pa.float64()) for c in _DURATIONS[1:]]
    + [("error_class", pa.string()), ("error_message", pa.string()), ("last_event", TS),
       ("attempt_spans", _SPAN), ("worker_spans", _SPAN)]
    + list(EXTRA.items())
    # Where the row came from: "events" (step_durations of the run's events) or "stepStats"
    # (Dagster's own numbers, taken by a light sync: no IO/worker/retry split).
    + [("source", pa.string())]
)
assert [f.name for f in STEPS_SCHEMA][: len(STEP_COLUMNS)] == list(STEP_COLUMNS)

RUNS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("job_name", pa.string()), ("status", pa.string()),
    ("created", TS), ("started", TS), ("ended", TS), ("duration", pa.float64()),
    ("update_time", pa.float64()), ("tags", pa.map_(pa.string(), pa.string())),
    ("root_run_id", pa.string()), ("parent_run_id", pa.string()),
    ("final", pa.bool_()), ("events", pa.int64()),
])


def _column(values: Any, kind: pa.DataType) -> pa.Array:
    array = pa.array(values)
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    return array.cast(kind)


def _run_extras(n_rows: list[int], jobs: Sequence[str | None], created_ms: Sequence[int]) -> dict[str, pa.Array]:
    return {
        "job_name": pa.array(np.repeat(np.array(list(jobs), dtype=object), n_rows), type=pa.string()),
        "run_created": pa.array(np.repeat(np.array(list(created_ms), dtype="int64"), n_rows), type=pa.int64())
        .cast(pa.timestamp("ms")).cast(TS),
    }


def events_table(frame: pd.DataFrame, job: str | None, created_ms: int) -> pa.Table:
    """One run's events frame as the stored table."""
    columns = {name: _column(frame[name], EVENTS_SCHEMA.field(name).type) for name in EVENT_COLUMNS}
    columns.update(_run_extras([len(frame)], [job], [created_ms]))
    return pa.table(columns, schema=EVENTS_SCHEMA)


def events_frame_of(table: pa.Table, order: pa.Array | None = None) -> pd.DataFrame:
    """The stored rows as the typed events frame of :func:`runlens.frames.events_frame`.

    ``order``: row positions to take, in that order (sort indices), applied column by
    column so that no reordered copy of the whole table is made.
    """
    n = table.num_rows if order is None else len(order)

    def col(name: str) -> pa.Array:
        chunked = table.column(name)
        if order is not None:
            chunked = chunked.take(order)
        return chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)

    data: dict[str, Any] = {
        "seq": col("seq").to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
        "run_id": _in_appearance_order(col("run_id")),
        "timestamp": pd.DatetimeIndex(col("timestamp").cast(pa.timestamp("ms")).to_numpy(zero_copy_only=False))
        .tz_localize("UTC"),
        "level": _encoded(col("level"), LEVELS, ordered=True),
        "event_type": _encoded(col("event_type"), EVENT_TYPES),
        "step_key": _encoded(col("step_key")),
        "message": _string_array(col("message").cast(_TEXT)),
        "kind": _encoded(col("kind")),
        "error_class": _encoded(col("error_class")),
    }
    for name in _TEXT_COLUMNS[1:]:
        data[name] = _string_array(col(name).cast(_TEXT))
    frame = pd.DataFrame(data, index=pd.RangeIndex(n))
    return frame[list(EVENT_COLUMNS)]


def _in_appearance_order(column: pa.Array) -> pd.Categorical:
    """Run ids as a categorical whose categories are in order of appearance, as concat_events leaves them."""
    encoded = column.dictionary_encode()  # a dictionary array (a scan's) is taken as it is
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_dictionary(column.type):
        first = pd.unique(codes)  # the dictionary's entries in order of first use
        remap = np.full(len(encoded.dictionary), -1, dtype=np.int64)
        remap[first] = np.arange(len(first))
        return pd.Categorical.from_codes(remap[codes], dtype=pd.CategoricalDtype(
            encoded.dictionary.take(pa.array(first)).to_pylist()))
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(encoded.dictionary.to_pylist()))


def _seconds(values: pd.Series) -> pa.Array:
    millis = values.to_numpy(dtype="timedelta64[ms]").astype("int64")
    seconds = millis / 1000.0
    return pa.array(seconds, mask=np.isnat(values.to_numpy(dtype="timedelta64[ms]")), type=pa.float64())


def _spans(values: pd.Series) -> pa.Array:
    return pa.array([[{"start": s, "end": e} for s, e in spans] for spans in values], type=_SPAN)


def steps_table(steps: pd.DataFrame, jobs: dict[str, str | None], created_ms: dict[str, int],
                source: str = "events") -> pa.Table:
    """step_durations rows (any number of runs) as the stored table, their ``source`` column set to ``source``."""
    columns: dict[str, pa.Array] = {}
    for name, field_type in zip(STEPS_SCHEMA.names, STEPS_SCHEMA.types, strict=False):
        if name not in STEP_COLUMNS:
            break
        if name in _DURATIONS:
            columns[name] = _seconds(steps[name])
        elif name in ("attempt_spans", "worker_spans"):
            columns[name] = _spans(steps[name])
        else:
            columns[name] = _column(steps[name], field_type)
    run_ids = steps["run_id"].astype(str).tolist()
    columns["job_name"] = pa.array([jobs.get(r) for r in run_ids], type=pa.string())
    columns["run_created"] = pa.array([created_ms.get(r) for r in run_ids], type=pa.int64()) \
        .cast(pa.timestamp("ms")).cast(TS)
    columns["source"] = pa.array([source] * len(run_ids), type=pa.string())
    return pa.table(columns, schema=STEPS_SCHEMA)


def steps_frame_of(table: pa.Table) -> pd.DataFrame:
    """The stored rows as a :func:`runlens.step_durations` frame.

    Column by column in Arrow and numpy: ``h.steps()`` of thousands of runs returns tens
    of thousands of rows, and a Python object per cell (``to_pylist``) cost seconds.
    """
    out: dict[str, Any] = {}
    for name, dtype in STEP_COLUMNS.items():
        column = table.column(name)
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if name in _DURATIONS:
            seconds = column.to_numpy(zero_copy_only=False).astype("float64")
            millis = np.round(seconds * 1000.0)
            out[name] = _timedeltas(millis)
        elif name in ("attempt_spans", "worker_spans"):
            out[name] = _spans_of(column)
        elif dtype == "datetime64[ms, UTC]":
            out[name] = _times(column)
        elif name == "status":
            out[name] = _encoded(column, list(STEP_STATUS_DTYPE.categories))
        elif dtype == "category":
            out[name] = _encoded(column)
        elif name == "attempts":
            out[name] = column.to_numpy(zero_copy_only=False).astype("int64")
        else:
            out[name] = _string_array(column.cast(_TEXT))
    return pd.DataFrame(out, index=pd.RangeIndex(table.num_rows))


def _times(column: pa.Array) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(column.cast(pa.timestamp("ms")).to_numpy(zero_copy_only=False)).tz_localize("UTC")


def _spans_of(column: pa.Array) -> np.ndarray:
    """A stored list of ``{start, end}`` structs per row as step_durations has it: a list of
    ``(Timestamp, Timestamp)`` tuples (UTC, ms; None for a missing end) per row."""
    n = len(column)
    structs = column.values  # the child array: the offsets (of this slice) index into it
    starts, ends = (_objects(structs.field(name)) for name in ("start", "end"))
    pairs = list(zip(starts.tolist(), ends.tolist(), strict=True))
    offsets = column.offsets.to_numpy()
    valid = (np.ones(n, dtype=bool) if not column.null_count
             else ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool))
    cells = np.empty(n, dtype=object)
    cells[:] = [pairs[offsets[i]:offsets[i + 1]] if valid[i] else [] for i in range(n)]
    return cells


def _objects(column: pa.Array) -> np.ndarray:
    """Timestamps as an object array of ``pd.Timestamp`` (UTC, ms), None where missing."""
    values = _times(column).astype(object).to_numpy()  # Timestamps made in C (tolist: 2x the time)
    if column.null_count:
        values[np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = None
    return values


def _timedeltas(millis: np.ndarray) -> np.ndarray:
    values = np.full(len(millis), np.timedelta64("NaT"), dtype="timedelta64[ms]")
    ok = ~np.isnan(millis)
    values[ok] = millis[ok].astype("int64").astype("timedelta64[ms]")
    return values


def runs_table(records: Sequence[dict], state: dict[str, dict]) -> pa.Table:
    """Raw run records (``runsOrError`` results) as the stored runs table."""
    frame = runs_frame(records)
    ids = frame["run_id"].astype(str).tolist()

    def tags(record: dict) -> list[tuple[str, str]]:
        return [(str(t.get("key")), None if t.get("value") is None else str(t.get("value")))
                for t in record.get("tags") or [] if isinstance(t, dict) and t.get("key") is not None]

    return pa.table({
        "run_id": pa.array(ids, type=pa.string()),
        "job_name": _column(frame["job_name"], pa.string()),
        "status": _column(frame["status"], pa.string()),
        "created": pa.array(frame["created"]).cast(TS),
        "started": pa.array(frame["started"]).cast(TS),
        "ended": pa.array(frame["ended"]).cast(TS),
        "duration": _seconds(frame["duration"].astype("timedelta64[ms]")),
        "update_time": pa.array([_float(r.get("updateTime")) for r in records], type=pa.float64()),
        "tags": pa.array([tags(r) for r in records], type=RUNS_SCHEMA.field("tags").type),
        "root_run_id": pa.array([_str(r.get("rootRunId")) for r in records], type=pa.string()),
        "parent_run_id": pa.array([_str(r.get("parentRunId")) for r in records], type=pa.string()),
        "final": pa.array([bool(state.get(i, {}).get("final")) for i in ids], type=pa.bool_()),
        "events": pa.array([int(state.get(i, {}).get("events", 0)) for i in ids], type=pa.int64()),
    }, schema=RUNS_SCHEMA)


def runs_frame_of(table: pa.Table) -> pd.DataFrame:
    """Stored run rows as the runs frame of ``Client.runs`` (newest first), plus ``final`` and ``events``."""
    table = table.sort_by([("created", "descending"), ("run_id", "descending")])
    n = table.num_rows

    def times(name: str) -> pd.Series:
        return pd.Series(pd.DatetimeIndex(table.column(name).cast(pa.timestamp("ms")).to_numpy(zero_copy_only=False))
                         .tz_localize("UTC"))

    frame = pd.DataFrame({
        "run_id": pd.array(table.column("run_id").to_pylist(), dtype=STRING),
        "job_name": _categorical(table.column("job_name").to_pylist()),
        "status": _categorical(table.column("status").to_pylist(), list(RUN_STATUS_DTYPE.categories)),
        "created": times("created"),
        "started": times("started"),
        "ended": times("ended"),
    }, index=pd.RangeIndex(n))
    frame["duration"] = frame["ended"] - frame["started"]
    tag_rows = [dict(row or []) for row in table.column("tags").to_pylist()]
    for key in sorted({k for row in tag_rows for k in row}):
        frame[f"tags.{key}"] = pd.array([row.get(key) for row in tag_rows], dtype=STRING)
    frame["final"] = table.column("final").to_numpy(zero_copy_only=False).astype(bool)
    frame["events"] = table.column("events").to_numpy(zero_copy_only=False).astype("int64")
    return frame


def _float(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)




# ------------------------------------------------------------------------------ asset events

#: One metadata entry as stored: its label, GraphQL type, the kind runlens reads it as
#: (:func:`runlens.assets.entry_value`: int, float, bool, text, timestamp, json, unknown) and
#: its value in the one field of that kind (timestamps: epoch seconds in ``float_value``;
#: JSON, and ints beyond 64 bits, as text). A list per event, in the server's order.
METADATA_ENTRY = pa.struct([("label", pa.string()), ("type", pa.string()), ("kind", pa.string()),
                            ("text_value", pa.string()), ("int_value", pa.int64()), ("float_value", pa.float64()),
                            ("bool_value", pa.bool_())])

ASSET_EVENTS_SCHEMA = pa.schema([
    ("asset_key", pa.string()),
    # The event's place in the asset's history (storage order; ties of ``timestamp`` keep it).
    ("seq", pa.int64()),
    ("timestamp", TS), ("partition", pa.string()), ("status", pa.string()), ("run_id", pa.string()),
    ("step_key", pa.string()), ("event_type", pa.string()), ("description", pa.string()),
    ("failure_reason", pa.string()),
    ("metadata", pa.list_(METADATA_ENTRY)),
])

# assetEventHistory's GraphQL type of each stored status (runlens.assets maps them the other way).
_ASSET_TYPENAMES = {"MATERIALIZED": "MaterializationEvent", "FAILED": "FailedToMaterializeEvent",
                    "OBSERVED": "ObservationEvent"}
_RECORD_FIELDS = {"partition": "partition", "run_id": "runId", "step_key": "stepKey", "event_type": "eventType",
                  "description": "description", "failure_reason": "materializationFailureReason"}


def _stored_entry(entry: dict) -> dict | None:
    from ..assets import entry_value

    if not isinstance(entry, dict) or not isinstance(entry.get("label"), str):
        return None  # flatten_metadata skips it too
    kind, value = entry_value(entry)
    row = {"label": entry["label"], "type": entry.get("__typename"), "kind": kind, "text_value": None,
           "int_value": None, "float_value": None, "bool_value": None}
    if value is None:
        pass
    elif kind == "int":
        if -2**63 <= value < 2**63:
            row["int_value"] = value
        else:  # beyond 64 bits: exact as text
            row["text_value"] = str(value)
    elif kind in ("float", "timestamp"):
        row["float_value"] = value
    elif kind == "bool":
        row["bool_value"] = value
    elif kind == "json":
        row["text_value"] = json.dumps(value, ensure_ascii=False)
    else:  # text, unknown (its JSON text)
        row["text_value"] = value
    return row


def stored_entry_value(entry: dict) -> tuple[str, Any]:
    """``(kind, value)`` of a stored metadata entry: :func:`runlens.assets.entry_value` of the entry it was."""
    kind = entry["kind"]
    if kind == "int":
        value = entry["int_value"] if entry["int_value"] is not None else (
            None if entry["text_value"] is None else int(entry["text_value"]))
    elif kind in ("float", "timestamp"):
        value = entry["float_value"]
    elif kind == "bool":
        value = entry["bool_value"]
    elif kind == "json":
        value = None if entry["text_value"] is None else json.loads(entry["text_value"])
    else:
        value = entry["text_value"]
    return kind, value


def asset_events_table(asset_key: str, records: Sequence[dict], seqs: Sequence[int]) -> pa.Table:
    """``assetEventHistory`` records of one asset (with their ``seq``) as the stored table."""
    from ..assets import _STATUS

    def text(record: dict, name: str) -> str | None:
        value = record.get(name)
        return value if isinstance(value, str) else None

    columns: dict[str, Any] = {
        "asset_key": pa.array([asset_key] * len(records), type=pa.string()),
        "seq": pa.array(list(seqs), type=pa.int64()),
        "timestamp": pa.array([int(r["timestamp"]) for r in records], type=pa.int64())
        .cast(pa.timestamp("ms")).cast(TS),
        "status": pa.array([_STATUS.get(r.get("__typename")) for r in records], type=pa.string()),
    }
    for column, name in _RECORD_FIELDS.items():
        columns[column] = pa.array([text(r, name) for r in records], type=pa.string())
    columns["metadata"] = pa.array(
        [[e for e in map(_stored_entry, r.get("metadataEntries") or []) if e is not None] for r in records],
        type=ASSET_EVENTS_SCHEMA.field("metadata").type)
    return pa.table(columns, schema=ASSET_EVENTS_SCHEMA)


def asset_records_of(table: pa.Table) -> list[dict]:
    """Stored asset event rows (of one asset) as the ``assetEventHistory`` records they were, newest first
    (as the server pages them); their metadata entries decode with :func:`stored_entry_value`."""
    table = table.sort_by([("seq", "descending")])
    millis = table.column("timestamp").cast(pa.timestamp("ms")).cast(pa.int64()).to_pylist()
    rows = table.select([c for c in ASSET_EVENTS_SCHEMA.names if c not in ("asset_key", "seq", "timestamp")])
    records = []
    for ms, row in zip(millis, rows.to_pylist(), strict=True):
        record = {"__typename": _ASSET_TYPENAMES.get(row["status"]), "timestamp": str(ms)}
        for column, name in _RECORD_FIELDS.items():
            record[name] = row[column]
        record["metadataEntries"] = [{"__typename": e["type"], **e} for e in row["metadata"] or []]
        records.append(record)
    return records

