"""A History store as Dask DataFrames: history that one machine's pandas cannot hold.

>>> import runlens.dask as rd                                   # pip install 'runlens[dask]'
>>> client = rd.client()                                        # doctest: +SKIP
>>> events = rd.events("~/dagster-history", job="etl_job", types="STEP_FAILURE")   # doctest: +SKIP
>>> steps = rd.steps("s3://bucket/dagster-history", since="365d")                 # doctest: +SKIP

Each partition is what :meth:`runlens.History.events` (or ``.steps``) returns for a group of
whole runs: the same filter translation (:func:`runlens.history.query.events_plan`) chooses
the files from the manifest and gives the bounds and filter tests, the same streaming read
(``_scan_events``: row groups skipped by their statistics, the filters tested during the
scan) reads the partition's files, and the same code turns the rows into the typed frame. Groups are runs in creation order, cut at about
``rows_per_partition`` rows, so a run's events never split across partitions and the
partitions, in order, hold the rows of the pandas read in its order.

The store may be a local folder or any fsspec URL (``s3://``, ``gs://``, ``file://``; the
matching fsspec package, e.g. s3fs, must be installed where the tasks run). Syncs write to
local folders only: object stores have neither the atomic rename nor the lock a sync's
commit protocol relies on; sync locally and copy the folder.
"""

from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgument, RunlensError, StoreError
from .history.query import (
    _and,
    _run_and_job,
    _run_ids,
    _scan,
    _scan_events,
    events_of,
    events_plan,
    steps_of,
    steps_plan,
)
from .history.store import FORMAT_VERSION, MANIFEST, Store
from .history.tables import EVENTS_SCHEMA, STEPS_SCHEMA
from .timespec import parse_time


class DaskNotInstalled(RunlensError, ImportError):
    """``runlens.dask`` was imported without Dask: ``pip install 'runlens[dask]'``."""

    exit_code = 2


try:
    import dask.dataframe as dd
    import distributed  # noqa: F401 - part of the extra: the clusters runlens.dask runs on
except ImportError as exc:
    raise DaskNotInstalled(f"runlens.dask needs Dask and dask.distributed ({exc.name or exc} is missing): "
                           "pip install 'runlens[dask]'") from None

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DaskNotInstalled", "client", "events", "step_durations", "steps"]

#: Rows a partition is cut at (whole runs: a run bigger than this is a partition of its own).
#: A 500,000-row events partition is about 100–150 MB as a pandas frame.
ROWS_PER_PARTITION = 500_000

# Columns whose categories depend on the rows read: unknown to Dask until computed.
_EVENT_DATA_CATEGORIES = ["run_id", "event_type", "step_key", "kind", "error_class"]
_STEP_DATA_CATEGORIES = ["run_id", "step_key", "error_class"]


def client(address: str | None = None, **cluster_options: Any) -> distributed.Client:
    """The ``dask.distributed`` client to compute on: a given cluster, the current one, or a new local one.

    Parameters
    ----------
    address : str, optional
        A running scheduler, e.g. ``"tcp://scheduler:8786"``: connect to it.
    **cluster_options
        Without ``address`` and without a current client: options of the new
        ``distributed.LocalCluster`` (``n_workers``, ``threads_per_worker``, ``memory_limit``,
        ...). Its workers are processes, one thread each unless given: runlens's work is
        pandas code that holds the GIL.

    Returns
    -------
    distributed.Client
        Also the default client: ``.compute()`` of any Dask collection runs there.
    """
    from distributed import Client, LocalCluster

    if address is not None:
        return Client(address)
    if not cluster_options:
        try:
            return distributed.default_client()
        except ValueError:  # no client yet
            pass
    cluster_options.setdefault("processes", True)
    cluster_options.setdefault("threads_per_worker", 1)
    cluster_options.setdefault("dashboard_address", None)
    return Client(LocalCluster(**cluster_options))


def events(path: str | os.PathLike, run_ids: Any = None, *, job: str | None = None, types: Any = None,
           step: Any = None, levels: Any = None, since: Any = None, until: Any = None,
           rows_per_partition: int = ROWS_PER_PARTITION, storage_options: dict | None = None) -> dd.DataFrame:
    """A store's events as a Dask DataFrame, filtered as :meth:`runlens.History.events` filters.

    Parameters
    ----------
    path : str or path-like
        The store: a local folder or an fsspec URL (``s3://bucket/store``).
    run_ids, job, types, step, levels, since, until
        As for :meth:`runlens.History.events` (``since``/``until`` bound the events'
        timestamps). Files and row groups that cannot match are never read.
    rows_per_partition : int
        About how many stored rows a partition reads (whole runs; see :data:`ROWS_PER_PARTITION`).
    storage_options : dict, optional
        fsspec options for a URL (credentials, endpoint).

    Returns
    -------
    dask.dataframe.DataFrame
        Partitions are events frames of whole runs, with the dtypes of ``Client.events``
        (``run_id``, ``event_type``, ``step_key``, ``kind``, ``error_class`` categoricals whose
        categories Dask learns on compute; ordered ``level``; ``datetime64[ms, UTC]``), runs in
        creation order, each partition indexed from 0. ``.compute()`` holds the rows of
        ``History.events`` in its order; the categories of several partitions are their union
        in partition order (``runlens.concat_events([frame])`` sorts them as History does).
    """
    source = _Source.open(path, storage_options)
    manifest = source.manifest
    since_at, until_at = parse_time(since, what="since"), parse_time(until, what="until")
    rels, bounds, tests = events_plan(manifest, run_ids=run_ids, job=job, types=types, step=step, levels=levels,
                                      since=since_at, until=until_at)
    ids = _run_ids(run_ids)
    runs = _stored_runs(manifest, rels, job=job, ids=None if ids is None else set(ids))
    groups = _groups(runs, _positive(rows_per_partition))
    specs = [_events_part(source, group, bounds, tests) for group in groups]
    return _frame(_read_events, specs, _events_meta(), label="runlens-events", types=types, step=step, levels=levels)


def steps(path: str | os.PathLike, run_ids: Any = None, *, job: str | None = None, since: Any = None,
          until: Any = None, from_events: bool = False, rows_per_partition: int = ROWS_PER_PARTITION,
          storage_options: dict | None = None) -> dd.DataFrame:
    """A store's step rows as a Dask DataFrame: :meth:`runlens.History.steps`, or recomputed from the events.

    Parameters
    ----------
    path, run_ids, job, rows_per_partition, storage_options
        As for :func:`events`.
    since, until : optional
        Bound the runs' creation time, as for ``History.steps``.
    from_events : bool
        False (default): read the step rows the syncs stored (no event is read). True:
        recompute them from the stored events of the same runs (the final ones) with
        :func:`step_durations`, e.g. to check the stored ones or after changing the code.

    Returns
    -------
    dask.dataframe.DataFrame
        Partitions are :func:`runlens.step_durations` frames of whole runs, runs in creation
        order; ``.compute()`` holds the rows of ``History.steps`` in its order.
    """
    source = _Source.open(path, storage_options)
    manifest = source.manifest
    since_at, until_at = parse_time(since, what="since"), parse_time(until, what="until")
    ids = _run_ids(run_ids)
    wanted = None if ids is None else set(ids)
    target = _positive(rows_per_partition)
    low = None if since_at is None else since_at.timestamp() * 1000
    high = None if until_at is None else until_at.timestamp() * 1000

    def created_in_range(run: _Run) -> bool:
        return (low is None or run.created_ms >= low) and (high is None or run.created_ms < high)

    if from_events:
        rels, bounds, tests = events_plan(manifest, run_ids=run_ids, job=job)
        runs = [run for run in _stored_runs(manifest, rels, job=job, ids=wanted, final=True) if created_in_range(run)]
        specs = [_events_part(source, group, bounds, tests) for group in _groups(runs, target)]
        # Read and step_durations in one task: a partition's events are never kept as a task's result in a
        # worker's memory, only its step rows.
        return _frame(_read_steps_from_events, specs, _steps_meta(), label="runlens-steps-from-events")
    rels, parts = steps_plan(manifest, run_ids=run_ids, job=job, since=since_at, until=until_at)
    entries = [e for e in manifest["files"]["steps"] if e["path"] in set(rels)]
    # The runs with stored step rows: the final ones and the light ones (Dagster's stepStats rows).
    final = [run for run in _stored_runs(manifest, None, job=job, ids=wanted, final=True, light=True)
             if created_in_range(run)]
    # Steps files are not listed per run: estimate a run's rows from its month's, and read every file of
    # the group's months (their row-group statistics on run_created skip the rest).
    months = _months([run.created_ms for run in final])
    runs_in: collections.Counter = collections.Counter(months)
    rows_in: collections.Counter = collections.Counter()
    for entry in entries:
        rows_in[entry["month"]] += int(entry.get("rows", 0))
    month_of = dict(zip((run.run_id for run in final), months))
    sized = [_Run(r.created_ms, r.run_id, max(1, rows_in[month_of[r.run_id]] // runs_in[month_of[r.run_id]]), ())
             for r in final]
    specs = []
    for group in _groups(sized, target):
        spanned = {month_of[run.run_id] for run in group}
        paths = tuple(source.resolve(e["path"]) for e in entries if e["month"] in spanned)
        specs.append(_Part(paths, _and([*parts, *_run_and_job(manifest, [run.run_id for run in group], None)]),
                           source.filesystem))
    return _frame(_read_steps, specs, _steps_meta(), label="runlens-steps")


def step_durations(events: dd.DataFrame) -> dd.DataFrame:
    """:func:`runlens.step_durations` of a Dask events frame whose partitions hold whole runs.

    What ``events.groupby("run_id").apply(runlens.step_durations)`` computes, without its
    shuffle: a run's events never split across the partitions of :func:`events`, so each
    run's group lies in one partition, and the pandas ``step_durations`` (which groups by
    ``run_id`` itself) runs on each partition where it lies.
    """
    if not isinstance(events, dd.DataFrame):
        raise InvalidArgument(f"runlens.dask.step_durations takes a Dask events DataFrame (runlens.dask.events), "
                              f"not {type(events).__name__}; for a pandas frame use runlens.step_durations")
    return events.map_partitions(_partition_steps, meta=_unknown_categories(_steps_meta()))


# ------------------------------------------------------------------------------ the store


@dataclass(frozen=True)
class _Source:
    """A store to read: its committed manifest, where its files are, and the filesystem to read them with."""

    manifest: dict
    root: str
    filesystem: Any  # None: the local one
    store: Store | None

    @classmethod
    def open(cls, path: str | os.PathLike, storage_options: dict | None) -> _Source:
        text = os.fspath(path)
        if "://" not in text:
            if storage_options:
                raise InvalidArgument("storage_options are for a store at a URL (s3://..., gs://...), "
                                      f"not the local folder {text!r}")
            store = Store(text)
            return cls(store.manifest(), str(store.root), None, store)
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(text, **(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise StoreError(f"cannot open the History store {text!r}: {exc} (install the fsspec package of "
                             "that URL scheme, e.g. s3fs or gcsfs)") from None
        root = root.rstrip("/")
        return cls(_url_manifest(fs, root, text), root, fs, None)

    def resolve(self, rel: str) -> str:
        if self.store is not None:
            return str(self.store.resolve(rel, self.manifest))
        temp = self.manifest.get("pending", {}).get(rel)
        if temp is not None and self.filesystem.exists(f"{self.root}/{temp}"):
            return f"{self.root}/{temp}"
        return f"{self.root}/{rel}"  # a missing file is named by the read that fails on it


def _url_manifest(fs: Any, root: str, url: str) -> dict:
    from .history.store import empty_manifest

    where = f"{url.rstrip('/')}/{MANIFEST}"
    try:
        with fs.open(f"{root}/{MANIFEST}", "rb") as f:
            manifest = json.loads(f.read().decode("utf-8"))
        version = manifest["format_version"]
    except FileNotFoundError:
        return empty_manifest(None)
    except (ValueError, KeyError, TypeError):
        raise StoreError(f"{where} is not a runlens History manifest (unreadable JSON or no format_version)") \
            from None
    except OSError as exc:
        raise StoreError(f"cannot read {where}: {exc}") from None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StoreError(f"the History store {url!r} has format version {version}, written by a newer runlens; this "
                         f"one reads up to version {FORMAT_VERSION}: upgrade runlens (pip install -U runlens)")
    return manifest


# ------------------------------------------------------------------------------ partitions


@dataclass(frozen=True)
class _Run:
    created_ms: int
    run_id: str
    rows: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class _Part:
    """One partition's read: files, what to keep of them, filesystem. ``query`` is, for events, the
    ``(bounds, tests)`` of :func:`_scan_events` (the query's, bounded to the group's runs), for steps
    the scan filter (the query's and the group's runs)."""

    paths: tuple[str, ...]
    query: Any
    filesystem: Any


def _events_part(source: _Source, group: list[_Run], bounds: Any, tests: list) -> _Part:
    """The events read of a group: its runs' files, the query's bounds narrowed to its runs (their ids and
    creation range, the files' sort key: row groups outside it are skipped by their statistics)."""
    paths = tuple(source.resolve(rel) for rel in sorted({f for run in group for f in run.files}))
    mine = replace(bounds, ids=frozenset(run.run_id for run in group),
                   created=(group[0].created_ms, group[-1].created_ms))
    return _Part(paths, (mine, tests), source.filesystem)


def _stored_runs(manifest: dict, rels: list[str] | None, *, job: str | None, ids: set[str] | None,
                 final: bool = False, light: bool = False) -> list[_Run]:
    """The runs a query can return rows of, in creation order, with their stored event files among ``rels``;
    ``final``: only the final runs (with ``light``: and the light-synced ones)."""
    allowed = None if rels is None else set(rels)
    runs = []
    for run_id, st in manifest["runs"].items():
        if (ids is not None and run_id not in ids) or (job is not None and st.get("job") != job) \
                or (final and not (st.get("final") or (light and st.get("light")))):
            continue
        files = tuple(f for f in st.get("files", []) if allowed is None or f in allowed)
        if allowed is not None and not files:
            continue
        created = int(st.get("created_ms", 0))
        runs.append(_Run(created, run_id, int(st.get("events") or 0), files))
    runs.sort(key=lambda r: (r.created_ms, r.run_id))
    return runs


def _months(created_ms: list[int]) -> list[str]:
    """The partition (UTC creation month, ``2026-11``) of each creation time."""
    import numpy as np

    return np.array(created_ms, dtype="int64").astype("datetime64[ms]").astype("datetime64[M]").astype(str).tolist()


def _groups(runs: list[_Run], target: int) -> list[list[_Run]]:
    """Consecutive runs of about ``target`` rows each; a run is never split."""
    groups: list[list[_Run]] = []
    current: list[_Run] = []
    rows = 0
    for run in runs:
        if current and rows + run.rows > target:
            groups.append(current)
            current, rows = [], 0
        current.append(run)
        rows += run.rows
    if current:
        groups.append(current)
    return groups


def _positive(rows: Any) -> int:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise InvalidArgument(f"rows_per_partition must be a whole number of rows, at least 1, not {rows!r}")
    return rows


def _frame(read: Any, specs: list[_Part], empty: pd.DataFrame, *, label: str, **options: Any) -> dd.DataFrame:
    """The partitions ``read(spec)``; ``empty`` is the frame of no rows (its data-dependent categories become
    unknown to Dask)."""
    import dask

    # Dask would turn every object column into text: the step frames' span lists are objects, and the
    # frames' text columns are already typed.
    with dask.config.set({"dataframe.convert-string": False}):
        if not specs:
            return dd.from_pandas(empty, npartitions=1)
        return dd.from_map(read, specs, meta=_unknown_categories(empty), label=label, enforce_metadata=False,
                           **options)


def _read_events(part: _Part, types: Any = None, step: Any = None, levels: Any = None) -> pd.DataFrame:
    bounds, tests = part.query
    table = _scan_events(list(part.paths), bounds, tests, part.filesystem)
    return _text_categories(events_of(table, types=types, step=step, levels=levels), _EVENT_DATA_CATEGORIES)


def _read_steps(part: _Part) -> pd.DataFrame:
    frame = steps_of(_scan(list(part.paths), STEPS_SCHEMA, part.query, part.filesystem))
    return _text_categories(frame, _STEP_DATA_CATEGORIES)


def _read_steps_from_events(part: _Part) -> pd.DataFrame:
    return _partition_steps(_read_events(part))


def _partition_steps(frame: pd.DataFrame) -> pd.DataFrame:
    from .steps import step_durations as pandas_step_durations

    return _text_categories(pandas_step_durations(frame), _STEP_DATA_CATEGORIES)


def _text_categories(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Categories with no value (no error in the partition) typed as text, as the others are.

    pandas types an empty set of categories as ``object``, and Dask's concatenation of the
    partitions refuses categories of different types.
    """
    import pandas as pd

    for name in columns:
        column = frame[name]
        if len(column.cat.categories) == 0 and column.cat.categories.dtype != "str":
            frame[name] = column.cat.set_categories(pd.Index([], dtype="str"))
    return frame


def _unknown_categories(empty: pd.DataFrame) -> pd.DataFrame:
    """Dask's description of the partitions: the categories that depend on the rows are unknown until computed."""
    from dask.dataframe.utils import clear_known_categories

    columns = sorted({c for c in _EVENT_DATA_CATEGORIES + _STEP_DATA_CATEGORIES if c in empty.columns})
    return clear_known_categories(empty, cols=columns)


def _events_meta() -> pd.DataFrame:
    return events_of(EVENTS_SCHEMA.empty_table())


def _steps_meta() -> pd.DataFrame:
    return steps_of(STEPS_SCHEMA.empty_table())
