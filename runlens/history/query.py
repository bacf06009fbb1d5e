"""Reading the store: runs, events and steps frames, with filters pushed into the Parquet scan.

Files are chosen from the manifest (by partition month and the jobs each file holds). Events
are streamed row group by row group (:func:`_scan_events`): row groups whose statistics rule
out the run, job and time bounds are never read, and the exact ``--type``/``--step``/``--level``
tests of :mod:`runlens.filters` run during the scan. Steps and runs are scanned with a
``pyarrow.dataset`` filter. The planning (:func:`events_plan`, :func:`steps_plan`) and the
frames (:func:`events_of`, :func:`steps_of`) are shared with ``runlens.dask``, whose
partitions make the same reads on their files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ..errors import InvalidArgument, StoreError
from .store import REPAIR_HINT, Store
from .tables import EVENTS_SCHEMA, RUNS_SCHEMA, STEPS_SCHEMA, TS, events_frame_of, runs_frame_of, steps_frame_of


def _month(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


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


def _scan(paths: list[str], schema: pa.Schema, expression: Any, filesystem: Any = None) -> pa.Table:
    """The rows of ``paths`` matching ``expression``; ``filesystem`` (pyarrow or fsspec) for a store at a URL."""
    if not paths:
        return schema.empty_table()
    try:
        dataset = ds.dataset(paths, format="parquet", schema=schema, filesystem=filesystem)
        return dataset.to_table(filter=expression)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StoreError(_corrupt_message(paths, exc, filesystem)) from None


@dataclass
class _Bounds:
    """What an events query keeps besides the filter tests: exact per row, and per row group
    by its statistics (rows are sorted by job, run creation, run id and seq)."""

    ids: frozenset[str] | None = None
    job: str | None = None
    created: tuple[int, int] | None = None  # ms, inclusive: the creation range of ``ids``
    since: int | None = None  # ms, timestamp >= since
    until: int | None = None  # ms, timestamp < until

    def columns(self) -> set[str]:
        return ({"run_id"} if self.ids is not None else set()) | ({"job_name"} if self.job is not None else set()) \
            | ({"timestamp"} if self.since is not None or self.until is not None else set())

    def excludes(self, group: Any, index: dict[str, int]) -> bool:
        """Whether a row group's statistics rule out every row."""
        def span(name: str) -> tuple[Any, Any] | None:
            stats = group.column(index[name]).statistics
            return (stats.min, stats.max) if stats is not None and stats.has_min_max else None

        if self.job is not None and (got := span("job_name")) and not got[0] <= self.job <= got[1]:
            return True
        if self.created is not None and (got := span("run_created")):
            low, high = _ms(got[0]), _ms(got[1])
            if high < self.created[0] or low > self.created[1]:
                return True
        if (self.since is not None or self.until is not None) and (got := span("timestamp")):
            low, high = _ms(got[0]), _ms(got[1])
            if (self.since is not None and high < self.since) or (self.until is not None and low >= self.until):
                return True
        return False

    def rows(self, head: pa.Table) -> np.ndarray:
        """A mask of the rows of ``head`` within the bounds."""
        mask = np.ones(head.num_rows, dtype=bool)
        if self.ids is not None:
            mask &= _label_mask(head.column("run_id"), lambda values: [v in self.ids for v in values])
        if self.job is not None:
            mask &= _label_mask(head.column("job_name"), lambda values: [v == self.job for v in values])
        if self.since is not None or self.until is not None:
            millis = head.column("timestamp").cast(pa.timestamp("ms")).cast(pa.int64()).fill_null(-2**62)
            millis = millis.to_numpy()
            if self.since is not None:
                mask &= millis >= self.since
            if self.until is not None:
                mask &= millis < self.until
        return mask


def _ms(value: Any) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            from datetime import UTC

            value = value.replace(tzinfo=UTC)
        return round(value.timestamp() * 1000)
    return int(value)


def _label_mask(column: pa.ChunkedArray, test: Any) -> np.ndarray:
    """``test`` (values -> list of bools) of each row of a label column, run once per distinct value."""
    out = np.empty(len(column), dtype=bool)
    start = 0
    for chunk in column.chunks:
        if not pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_encode()
        hits = np.append(np.asarray(test(chunk.dictionary.to_pylist()), dtype=bool), False)
        codes = chunk.indices.fill_null(len(chunk.dictionary)).to_numpy(zero_copy_only=False)
        out[start:start + len(chunk)] = hits[codes]
        start += len(chunk)
    return out


def _scan_events(paths: list[str], bounds: _Bounds, tests: list, filesystem: Any = None) -> pa.Table:
    """The events rows of ``paths`` within ``bounds`` that pass every ``(column, test)`` of
    :mod:`runlens.filters` (exactly as :func:`filter_events` tests them), in file order.

    Streams each file in two passes, :data:`_SCAN_GROUPS` row groups at a time: the few
    columns the filters read, then, only for the row groups with a match, every column, of
    which only the matching rows are kept. String columns are read as Arrow dictionaries
    (their Parquet encoding, so nothing is decoded per row): a label's distinct values are
    tested once, and strings are materialised for the kept rows only (4x cheaper than
    reading them as strings). Row groups whose statistics rule the bounds out are never
    read. Files are scanned by a few threads (Arrow's reads release the GIL); memory holds
    the result plus a few row groups' columns a thread. ``filesystem`` (pyarrow or fsspec)
    for a store at a URL.
    """
    from concurrent.futures import ThreadPoolExecutor

    needed = sorted({name for name, _ in tests} | bounds.columns(), key=EVENTS_SCHEMA.names.index)
    if not paths or not needed:
        return _scan(paths, EVENTS_SCHEMA, None, filesystem)
    workers = min(len(paths), _SCAN_THREADS)
    if workers <= 1:
        tables = [_scan_file(path, needed, bounds, tests, filesystem) for path in paths]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="runlens-scan") as pool:
            tables = list(pool.map(lambda path: _scan_file(path, needed, bounds, tests, filesystem), paths))
    tables = [t for t in tables if t.num_rows]
    return pa.concat_tables(tables) if tables else SCANNED_SCHEMA.empty_table()


def _scan_file(path: str, needed: list[str], bounds: _Bounds, tests: list, filesystem: Any) -> pa.Table:
    """One file's part of :func:`_scan_events`."""
    import pyarrow.parquet as pq

    from ..filters import _hits

    pieces: list[pa.Table] = []
    try:
        reader = pq.ParquetFile(path, read_dictionary=_STRINGS, filesystem=filesystem)
        metadata = reader.metadata
        index = {metadata.schema.column(j).name: j for j in range(metadata.num_columns)}
        groups = [i for i in range(metadata.num_row_groups) if not bounds.excludes(metadata.row_group(i), index)]
        for first in range(0, len(groups), _SCAN_GROUPS):
            batch = groups[first:first + _SCAN_GROUPS]
            head = reader.read_row_groups(batch, columns=needed)
            mask = bounds.rows(head)
            for name, test in tests:
                if mask.any():
                    mask &= _label_mask(head.column(name), lambda values, test=test: _hits(values, test))
            del head
            # Each row group holding a kept row, read whole and cut to those rows (a take
            # across row groups would unify their dictionaries); strings decoded after the cut.
            offset = 0
            for group in batch:
                size = metadata.row_group(group).num_rows
                rows = np.flatnonzero(mask[offset:offset + size])
                offset += size
                if len(rows):
                    full = reader.read_row_group(group)
                    pieces.append(_plain(full.take(rows)))
                    del full
    except (pa.ArrowInvalid, OSError) as exc:
        raise StoreError(_corrupt_message([path], exc, filesystem)) from None
    return pa.concat_tables(pieces) if pieces else SCANNED_SCHEMA.empty_table()


#: Row groups whose filter columns :func:`_scan_events` reads at once (each read has a fixed cost per column).
_SCAN_GROUPS = 8
#: Files :func:`_scan_events` reads at once.
_SCAN_THREADS = 4
#: The events columns stored as strings, read as dictionaries.
_STRINGS = [field.name for field in EVENTS_SCHEMA if pa.types.is_string(field.type)]
_LABEL_COLUMNS = ("run_id", "level", "event_type", "step_key", "kind", "error_class", "job_name")


#: What :func:`_scan_events` returns: :data:`EVENTS_SCHEMA` with the label columns (few distinct
#: values) as dictionaries and the text columns as large strings, the frame's own types: the
#: pieces of a dense query then take a few bytes a row beyond their text, and the frame is
#: built from them without another copy of the text.
SCANNED_SCHEMA = pa.schema([
    pa.field(f.name, pa.dictionary(pa.int32(), pa.string()) if f.name in _LABEL_COLUMNS
             else pa.large_string() if pa.types.is_string(f.type) else f.type) for f in EVENTS_SCHEMA])


def _plain(table: pa.Table) -> pa.Table:
    """A cut of a row group read with every string as a dictionary, as :data:`SCANNED_SCHEMA`.

    Text columns are decoded here, so a piece keeps only its rows' text, not its row
    group's dictionary of every message.
    """
    columns = [column.cast(field.type) if column.type != field.type else column
               for column, field in zip(table.columns, SCANNED_SCHEMA, strict=True)]
    return pa.Table.from_arrays(columns, schema=SCANNED_SCHEMA)


def _corrupt_message(paths: list[str], exc: Exception, filesystem: Any = None) -> str:
    # Name the broken file: arrow's message usually does; otherwise find it.
    import pyarrow.parquet as pq

    bad = next((p for p in paths if p in str(exc)), None)
    if bad is None:
        for path in paths:
            try:
                pq.ParquetFile(path, filesystem=filesystem).metadata  # noqa: B018
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
    rels, bounds, tests = events_plan(manifest, run_ids=run_ids, job=job, types=types, step=step, levels=levels,
                                      since=since, until=until)
    # One expression: no reference to the scanned table outlives its conversion.
    frame = events_of(_scan_events([str(store.resolve(rel, manifest)) for rel in rels], bounds, tests),
                      types=types, step=step, levels=levels)
    frame.attrs.update(run_ids=list(frame["run_id"].cat.categories), endpoint=manifest.get("endpoint"),
                       filtered=frame.attrs.pop("filtered"), complete=True, has_more=False, source="history")
    return frame


def events_plan(manifest: dict, *, run_ids: Any = None, job: str | None = None, types: Any = None,
                step: Any = None, levels: Any = None, since: datetime | None = None,
                until: datetime | None = None) -> tuple[list[str], _Bounds, list]:
    """The event files (paths relative to the store) a query can find rows in, its bounds and its filter tests.

    The one translation of :meth:`History.events`'s filters (``runlens.dask`` reads with it
    too): files chosen from the manifest by month, job and run; the run, job and time
    :class:`_Bounds`; and the ``(column, test)`` pairs of :mod:`runlens.filters`, all three for
    :func:`_scan_events`. :func:`events_of` makes the frame of what it read.
    """
    from ..filters import _filters, parse_levels, parse_types

    ids = _run_ids(run_ids)
    type_names = parse_types(types)
    level_names = parse_levels(levels)
    months = _months_of(manifest, ids)
    rels = _listed(manifest, "events", job, months, until)
    if ids is not None:
        # The manifest knows which files hold each run: a lookup by run opens only those.
        holding = {f for r in ids for f in manifest["runs"].get(r, {}).get("files", [])}
        rels = [rel for rel in rels if rel in holding]
    created = [manifest["runs"][r].get("created_ms", 0) for r in ids if r in manifest["runs"]] if ids else []
    bounds = _Bounds(ids=None if ids is None else frozenset(ids), job=job,
                     created=(min(created), max(created)) if created else None,
                     since=None if since is None else _ms(since), until=None if until is None else _ms(until))
    _unknown, tests = _filters(types, step, levels) if (type_names or step or level_names) else ([], [])
    return rels, bounds, tests


def events_of(table: pa.Table, *, types: Any = None, step: Any = None, levels: Any = None) -> pd.DataFrame:
    """Rows :func:`_scan_events` kept as the typed events frame: runs in creation order, each in ``seq`` order.

    The scan applied the filters' exact ``--type``/``--step``/``--level`` tests; here an
    unknown type name is warned about as :func:`filter_events` warns. The rows are put in
    order column by column as the frame is built (no sorted copy of the whole table).
    """
    from ..filters import _filters, _warn_unknown, parse_levels, parse_types

    # Runs in creation order, each in storage order (a run topped up by a later sync spans files).
    order = _creation_order(table)
    frame = events_frame_of(table, order=order)
    filtered = bool(parse_types(types) or step or parse_levels(levels))
    if filtered:
        unknown, _tests = _filters(types, step, levels)
        if unknown:
            _warn_unknown(unknown, frame)
    frame.attrs["filtered"] = filtered
    return frame


def _creation_order(table: pa.Table) -> pa.Array:
    """Sort indices of ``table`` by run creation, run id and ``seq`` (run ids as a dictionary or strings)."""
    run_ids = table.column("run_id")
    if pa.types.is_dictionary(run_ids.type):
        # Sort by each run id's rank among the distinct ones: the strings are never gathered.
        run_ids = run_ids.unify_dictionaries()
        dictionary = run_ids.chunk(0).dictionary if run_ids.num_chunks else pa.array([], pa.string())
        rank = pc.rank(dictionary, sort_keys="ascending", tiebreaker="first")
        run_ids = pa.chunked_array([rank.take(chunk.indices) for chunk in run_ids.chunks], type=rank.type)
    keys = pa.table({"created": table.column("run_created"), "run": run_ids, "seq": table.column("seq")})
    return pc.sort_indices(keys, sort_keys=[("created", "ascending"), ("run", "ascending"), ("seq", "ascending")])


def read_steps(store: Store, manifest: dict, *, run_ids: Any = None, job: str | None = None,
               since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    rels, parts = steps_plan(manifest, run_ids=run_ids, job=job, since=since, until=until)
    return steps_of(_scan([str(store.resolve(rel, manifest)) for rel in rels], STEPS_SCHEMA, _and(parts)))


def steps_plan(manifest: dict, *, run_ids: Any = None, job: str | None = None, since: datetime | None = None,
               until: datetime | None = None) -> tuple[list[str], list[Any]]:
    """The steps files a query can find rows in and its scan filters (``pyarrow.compute`` expressions, to be
    and-ed), as :func:`events_plan`."""
    ids = _run_ids(run_ids)
    months = _months_of(manifest, ids)
    if since is not None:
        # Steps are filtered by their run's creation, the partition key: whole months drop out.
        floor = _month(since)
        candidates = {e["month"] for e in manifest["files"]["steps"] if e["month"] >= floor}
        months = candidates if months is None else months & candidates
    rels = _listed(manifest, "steps", job, months, until)
    parts = _run_and_job(manifest, ids, job)
    if since is not None:
        parts.append(pc.field("run_created") >= pa.scalar(since, type=TS))
    if until is not None:
        parts.append(pc.field("run_created") < pa.scalar(until, type=TS))
    return rels, parts


def steps_of(table: pa.Table) -> pd.DataFrame:
    """Scanned step rows as the :func:`runlens.step_durations` frame, runs in creation order;
    ``attrs["light_runs"]``: the runs whose rows are Dagster's stepStats (a light sync), not
    step_durations of their events."""
    table = table.sort_by([("run_created", "ascending"), ("run_id", "ascending")])
    frame = steps_frame_of(table)
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
    from .tables import ASSET_EVENTS_SCHEMA

    con = duckdb.connect()
    every: list[str] = []
    try:
        for name, kind, schema in (("events", "events", EVENTS_SCHEMA), ("steps", "steps", STEPS_SCHEMA),
                                   ("asset_events", "asset_events", ASSET_EVENTS_SCHEMA)):
            paths = [str(store.resolve(e["path"], manifest)) for e in manifest["files"].get(kind, [])]
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
