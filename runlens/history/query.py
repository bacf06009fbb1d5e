"""Reading the store: runs, events and steps frames, with filters pushed into the Parquet scan.

Files are chosen from the manifest (by partition month and the jobs each file holds), then
scanned with a ``pyarrow.dataset`` filter on ``run_id``, ``job_name`` and time, so row
groups whose statistics rule them out are never read. Type and level filters are pushed
into the scan as well (a superset: the case-insensitive test), and :func:`filter_events`
then applies the exact ``--type``/``--step``/``--level`` semantics to what was read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ..errors import InvalidArgument, StoreError
from .store import REPAIR_HINT, Store
from .tables import EVENTS_SCHEMA, RUNS_SCHEMA, STEPS_SCHEMA, TS, events_frame_of, runs_frame_of, steps_frame_of


def _month(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def _files(store: Store, manifest: dict, kind: str, *, job: str | None, months: set[str] | None,
           until: datetime | None) -> list[str]:
    return [str(store.resolve(rel, manifest)) for rel in _listed(manifest, kind, job, months, until)]


def _listed(manifest: dict, kind: str, job: str | None, months: set[str] | None, until: datetime | None) -> list[str]:
    """The files of ``kind`` that can hold rows of ``job``, created in ``months`` and before ``until``."""
    chosen = []
    for entry in manifest["files"][kind]:
        if job is not None and job not in entry.get("jobs", []):
            continue
        if months is not None and entry["month"] not in months:
            continue
        # Runs created at or after `until` (exclusive) have no earlier rows.
        if until is not None and entry["month"] > _month(until - timedelta(milliseconds=1)):
            continue
        chosen.append(entry["path"])
    return chosen


def _scan(paths: list[str], schema: pa.Schema, expression: Any) -> pa.Table:
    if not paths:
        return schema.empty_table()
    try:
        dataset = ds.dataset(paths, format="parquet", schema=schema)
        return dataset.to_table(filter=expression)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StoreError(_corrupt_message(paths, exc)) from None


def _corrupt_message(paths: list[str], exc: Exception) -> str:
    # Name the broken file: arrow's message usually does; otherwise find it.
    import pyarrow.parquet as pq

    bad = next((p for p in paths if p in str(exc)), None)
    if bad is None:
        for path in paths:
            try:
                pq.ParquetFile(path).metadata  # noqa: B018
            except Exception:  # noqa: BLE001 - any failure means this is the file
                bad = path
                break
    where = bad or ", ".join(paths[:3])
    return (f"cannot read the History store file {where}: it is corrupt or truncated ({exc}); {REPAIR_HINT}")


def _and(parts: list[Any]) -> Any:
    expression = None
    for part in parts:
        expression = part if expression is None else expression & part
    return expression


def _run_ids(run_ids: Any) -> list[str] | None:
    if run_ids is None:
        return None
    if isinstance(run_ids, str):
        return [run_ids]
    if not isinstance(run_ids, Iterable):
        raise InvalidArgument(f"run_ids must be a run id or a list of them, not {run_ids!r}")
    return [str(r) for r in run_ids]


def read_runs(store: Store, manifest: dict, *, job: str | None = None, statuses: Any = None,
              since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    rel = manifest["files"].get("runs")
    paths = [str(store.resolve(rel, manifest))] if rel else []
    parts = []
    if job is not None:
        parts.append(pc.field("job_name") == job)
    if statuses:
        from ..client import _check_statuses

        parts.append(pc.field("status").isin(_check_statuses(statuses)))
    if since is not None:
        parts.append(pc.field("created") >= pa.scalar(since, type=TS))
    if until is not None:
        parts.append(pc.field("created") < pa.scalar(until, type=TS))
    return runs_frame_of(_scan(paths, RUNS_SCHEMA, _and(parts)))


def read_events(store: Store, manifest: dict, *, run_ids: Any = None, job: str | None = None, types: Any = None,
                step: Any = None, levels: Any = None, since: datetime | None = None,
                until: datetime | None = None) -> pd.DataFrame:
    from ..event_types import twins
    from ..filters import filter_events, parse_levels, parse_types

    ids = _run_ids(run_ids)
    type_names = parse_types(types)
    level_names = parse_levels(levels)
    months = _months_of(manifest, ids)
    paths = _files(store, manifest, "events", job=job, months=months, until=until)
    if ids is not None:
        # The manifest knows which files hold each run: a lookup by run opens only those.
        holding = {f for r in ids for f in manifest["runs"].get(r, {}).get("files", [])}
        paths = [p for p, rel in zip(paths, _listed(manifest, "events", job, months, until), strict=True)
                 if rel in holding]
    parts = _run_and_job(manifest, ids, job)
    if since is not None:
        parts.append(pc.field("timestamp") >= pa.scalar(since, type=TS))
    if until is not None:
        parts.append(pc.field("timestamp") < pa.scalar(until, type=TS))
    if type_names:
        wanted = sorted({t for name in type_names for t in twins(name)})
        parts.append(pc.utf8_upper(pc.field("event_type")).isin(wanted))
    if level_names:
        parts.append(pc.utf8_upper(pc.field("level")).isin(level_names))
    table = _scan(paths, EVENTS_SCHEMA, _and(parts))
    # Runs in creation order, each in storage order (a run topped up by a later sync spans files).
    table = table.sort_by([("run_created", "ascending"), ("run_id", "ascending"), ("seq", "ascending")])
    frame = events_frame_of(table)
    filtered = bool(type_names or step or level_names)
    if filtered:
        frame = filter_events(frame, types=types, step=step, levels=levels).reset_index(drop=True)
    frame.attrs.update(run_ids=list(frame["run_id"].cat.categories), endpoint=manifest.get("endpoint"),
                       filtered=filtered, complete=True, has_more=False, source="history")
    return frame


def read_steps(store: Store, manifest: dict, *, run_ids: Any = None, job: str | None = None,
               since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    ids = _run_ids(run_ids)
    months = _months_of(manifest, ids)
    if since is not None:
        # Steps are filtered by their run's creation, the partition key: whole months drop out.
        floor = _month(since)
        candidates = {e["month"] for e in manifest["files"]["steps"] if e["month"] >= floor}
        months = candidates if months is None else months & candidates
    paths = _files(store, manifest, "steps", job=job, months=months, until=until)
    parts = _run_and_job(manifest, ids, job)
    if since is not None:
        parts.append(pc.field("run_created") >= pa.scalar(since, type=TS))
    if until is not None:
        parts.append(pc.field("run_created") < pa.scalar(until, type=TS))
    table = _scan(paths, STEPS_SCHEMA, _and(parts))
    table = table.sort_by([("run_created", "ascending"), ("run_id", "ascending")])
    frame = steps_frame_of(table)
    # Runs whose rows are Dagster's stepStats (a light sync), not step_durations of their events.
    light = table.filter(pc.field("source") == "stepStats").column("run_id")
    frame.attrs["light_runs"] = pc.unique(light).to_pylist()
    return frame


def _created_range(manifest: dict, ids: list[str]) -> list[Any]:
    """Bounds on ``run_created`` for these runs: rows are sorted by it, so its row-group statistics are
    narrow and rule out the row groups of other runs (run ids, random, are not)."""
    created = [manifest["runs"][r].get("created_ms", 0) for r in ids if r in manifest["runs"]]
    if not created:
        return []
    low, high = (pa.scalar(min(created), type=pa.int64()).cast(pa.timestamp("ms")).cast(TS),
                 pa.scalar(max(created), type=pa.int64()).cast(pa.timestamp("ms")).cast(TS))
    return [pc.field("run_created") >= low, pc.field("run_created") <= high]


def _ms_month(ms: int) -> str:
    from datetime import UTC

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m")


def sql(store: Store, manifest: dict, query: str) -> pd.DataFrame:
    try:
        import duckdb
    except ImportError:
        raise StoreError("History.sql() needs DuckDB: pip install 'runlens[history]' (or pip install duckdb)") from None
    con = duckdb.connect()
    every: list[str] = []
    try:
        for name, kind, schema in (("events", "events", EVENTS_SCHEMA), ("steps", "steps", STEPS_SCHEMA)):
            paths = [str(store.resolve(e["path"], manifest)) for e in manifest["files"][kind]]
            every += paths
            _view(con, name, paths, schema)
        rel = manifest["files"].get("runs")
        if rel:
            every.append(str(store.resolve(rel, manifest)))
        _view(con, "runs", every[-1:] if rel else [], RUNS_SCHEMA)
        return con.execute(query).df()
    except duckdb.Error as exc:
        if any(path in str(exc) for path in every):  # a file of the store, not the query, is at fault
            raise StoreError(_corrupt_message(every, exc)) from None
        raise InvalidArgument(f"DuckDB could not run the query: {exc}") from None
    finally:
        con.close()


def _view(con: Any, name: str, paths: Sequence[str], schema: pa.Schema) -> None:
    if paths:
        listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")
    else:
        empty = schema.empty_table()
        con.register(f"_{name}_empty", empty)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_empty")


def _months_of(manifest: dict, ids: list[str] | None) -> set[str] | None:
    """The partitions (creation months) holding these runs; None for every month."""
    if ids is None:
        return None
    runs = manifest["runs"]
    return {_ms_month(runs[r].get("created_ms", 0)) for r in ids if r in runs}


def _run_and_job(manifest: dict, ids: list[str] | None, job: str | None) -> list:
    """Scan filters for these runs (with their creation range, the sort key) and this job."""
    parts = []
    if ids is not None:
        parts.append(pc.field("run_id").isin(ids))
        parts.extend(_created_range(manifest, ids))
    if job is not None:
        parts.append(pc.field("job_name") == job)
    return parts
