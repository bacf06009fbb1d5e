"""History: an incremental local store of a Dagster deployment's runs, events and steps.

>>> h = runlens.History("~/dagster-history")                 # doctest: +SKIP
>>> h.sync(client, job="etl_job", since="90d")                # doctest: +SKIP
>>> h.steps(job="etl_job")                                    # doctest: +SKIP

Modules: :mod:`.store` (layout, manifest, lock, commit protocol), :mod:`.sync` (what a
sync fetches and when a run is final), :mod:`.light` (the light sync's stepStats rows),
:mod:`.maintenance` (compaction, repair, migration), :mod:`.query` (reads with filters
pushed into the Parquet scan, DuckDB views), :mod:`.tables` (frames ↔ stored tables).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..timespec import parse_time
from .store import Store
from .sync import GRACE, SyncReport

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client

__all__ = ["History", "SyncReport", "default_path"]


def default_path(client: Client) -> str:
    """Where :meth:`History.for_deployment` keeps ``client``'s deployment (see there)."""
    import hashlib
    import re
    from urllib.parse import urlsplit

    from ..errors import StoreError

    try:
        import platformdirs
    except ImportError:
        raise StoreError("a default History store location needs platformdirs: pip install 'runlens[history]', "
                         "or give the store's folder (--store PATH)") from None
    identity = client.deployment_identity
    parts = urlsplit(client.url)
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parts.hostname or 'dagster'}_{parts.port or ''}{parts.path}"
                      f"_{getattr(client.settings, 'deployment', None) or ''}").strip("_")[:60]
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return os.path.join(platformdirs.user_data_dir("runlens", appauthor=False), "history", f"{readable}-{digest}")


class History:
    """A folder holding runs, events and steps synced from one Dagster deployment.

    Parameters
    ----------
    path : str or path-like
        The store's folder; created by the first :meth:`sync`. ``~`` is expanded.

    Notes
    -----
    Readers never take the lock and see the last committed sync. Every ``since``/``until``
    takes a duration back from now (``90d``, ``12h``, ``30m``), an ISO date or datetime, or
    a ``datetime`` (UTC when naive): :func:`runlens.timespec.parse_time`.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        if "://" in os.fspath(path):
            from ..errors import StoreError

            # Path() would make "s3:/bucket" a local folder named "s3:".
            raise StoreError(f"the History store {os.fspath(path)!r} is a URL: History syncs into and reads local "
                             "folders only (an object store has neither the atomic rename nor the lock a sync commits "
                             "with); sync into a local folder and copy it there, and read it there with "
                             "runlens.dask.events/steps (pip install 'runlens[dask]') or DuckDB's read_parquet")
        self._store = Store(path)

    @classmethod
    def for_deployment(cls, client: Client) -> History:
        """The store of ``client``'s deployment in the platform's data directory.

        ``<user data dir>/runlens/history/<host and path>-<hash>`` (platformdirs: e.g.
        ``~/.local/share/runlens/history/...`` on Linux), keyed by the endpoint and, for
        Dagster+, the organization and deployment, which share one URL: two deployments never
        share a store. ``runlens sync`` without ``--store`` uses it.
        """
        return cls(default_path(client))

    @property
    def path(self) -> str:
        return str(self._store.root)

    def __repr__(self) -> str:
        if not self._store.exists():
            return f"runlens.History({self.path!r}, empty)"
        manifest = self._store.manifest(allow_old=True)
        runs = manifest["runs"]
        final = sum(1 for st in runs.values() if st.get("final"))
        return (f"runlens.History({self.path!r}, {len(runs)} runs, {final} final, "
                f"of {manifest.get('endpoint')}, synced {manifest.get('synced_at')})")

    def sync(self, client: Client, *, job: str | None = None, since: Any = None, until: Any = None,
             grace: float = GRACE, max_workers: int = 4, progress: bool | None = None,
             events: bool = True, assets: bool = True) -> SyncReport:
        """Bring the store up to date: new and changed runs, the events of finished runs, and asset events.

        Parameters
        ----------
        client : runlens.Client
            The deployment to read; a store holds one deployment (another's is refused).
        job : str, optional
            Only runs of this job.
        since, until : optional
            Only runs created in ``[since, until)``.
        grace : float
            Seconds a run must have ended before its events count as final (Dagster
            stores an ENGINE_EVENT after the run's last status event).
        max_workers : int
            Runs whose events are fetched at once.
        events : bool
            False for the *light* sync: instead of every event, Dagster's own ``stepStats``
            of each finished run, 100 runs a request, stored as its ``steps`` rows
            (``source = "stepStats"`` in the stored table, the runs in
            ``h.steps().attrs["light_runs"]``). They lack the IO/worker/retry split and
            the error, have no SKIPPED row for a step abandoned after an upstream failure,
            and call a step interrupted by a cancellation FAILURE. A later full sync fetches
            those runs' events and replaces their rows (see :mod:`runlens.history.light`).
            Asset events are synced either way.
        assets : bool
            False to skip the asset events. Otherwise every asset whose last event moved
            since the last sync gets its new materializations, failed materializations and
            observations with their metadata (:meth:`asset_events`), whatever ``job``
            and ``until`` (an asset's history is not one job's); ``since`` bounds an
            asset's first fetch, and an earlier one later fetches the older part. With nothing new this costs one request per 500 assets (the asset list).

        Returns
        -------
        SyncReport
            Runs discovered, updated and made final (or light), events and steps written,
            assets synced and asset events written, files compacted, seconds.

        Notes
        -----
        A store of an older format is migrated in place first; when a partition holds more
        than ``COMPACT_AT`` (8) files, its small files are merged at the end
        (:meth:`compact`).

        Raises
        ------
        StoreLocked
            Another sync is writing to this store.
        StoreError
            The store is a file, not writable, damaged or of a newer format.
        """
        from .sync import sync

        return sync(self._store, client, job=job, since=since, until=until, grace=grace,
                    max_workers=max_workers, progress=progress, events=events, assets=assets)

    def compact(self) -> Any:
        """Merge the small files many syncs leave: every partition with two or more under 1M rows.

        A sync does it by itself once a partition holds more than 8 files. Crash-safe (the
        commit protocol of every sync); readers never see a row twice.

        Returns
        -------
        runlens.history.maintenance.CompactReport
            Data files before and after, files merged, seconds.
        """
        from .maintenance import compact_store

        return compact_store(self._store)

    def repair(self, client: Client, *, events: bool = True, **sync_options: Any) -> Any:
        """Find missing, corrupt or truncated files, drop them and what they held, and refetch it.

        Every listed file is read whole (a file with another row count than the manifest's
        counts as broken). The runs whose events were in a broken file lose all their
        stored events and are fetched again by the sync that follows (``sync_options`` as
        for :meth:`sync`); steps lost with a broken steps file are recomputed from the
        stored events. A store whose manifest cannot be read is rebuilt from the server.

        Returns
        -------
        runlens.history.maintenance.RepairReport
            The problems found (file → what is wrong), the runs refetched, and the sync's report.
        """
        from .maintenance import repair

        return repair(self._store, client, events=events, **sync_options)

    def migrate(self) -> int | None:
        """Bring a store written by an older runlens to this one's format, in place (crash-safe).

        Any sync, compaction or repair does it first by itself; reading an older store fails
        with a message pointing here. Returns the format version the store had (None: no store yet).
        """
        from .maintenance import migrate_store

        return migrate_store(self._store)

    def runs(self, *, job: str | None = None, statuses: Any = None, since: Any = None,
             until: Any = None) -> pd.DataFrame:
        """Stored runs, newest first: the columns of ``Client.runs()``, plus ``final`` and ``events``
        (events stored). ``since``/``until`` bound the creation time."""
        from .query import read_runs

        since, until = parse_time(since, what="since"), parse_time(until, what="until")
        return self._read(lambda m: read_runs(self._store, m, job=job, statuses=statuses, since=since, until=until))

    def events(self, run_ids: Any = None, *, job: str | None = None, types: Any = None, step: Any = None,
               levels: Any = None, since: Any = None, until: Any = None) -> pd.DataFrame:
        """Stored events: the typed frame of ``Client.events``, runs in creation order, each in ``seq`` order.

        ``types``, ``step`` and ``levels`` mean what they mean for :func:`runlens.filter_events`
        (the CLI's ``--type``/``--step``/``--level``); ``since``/``until`` bound the events'
        timestamps. Only the files and row groups that can match are read.
        """
        from .query import read_events

        since, until = parse_time(since, what="since"), parse_time(until, what="until")
        return self._read(lambda m: read_events(self._store, m, run_ids=run_ids, job=job, types=types, step=step,
                                                levels=levels, since=since, until=until))

    def steps(self, run_ids: Any = None, *, job: str | None = None, since: Any = None,
              until: Any = None) -> pd.DataFrame:
        """Stored :func:`runlens.step_durations` rows of the final runs (computed at sync; no event is read).

        ``since``/``until`` bound the runs' creation time. Runs synced light (``events=False``)
        have Dagster's ``stepStats`` rows instead, without the IO/worker/retry split:
        ``attrs["light_runs"]`` lists them.
        """
        from .query import read_steps

        since, until = parse_time(since, what="since"), parse_time(until, what="until")
        return self._read(lambda m: read_steps(self._store, m, run_ids=run_ids, job=job, since=since, until=until))

    def asset_events(self, key: Any, *, kind: str = "materialization", partitions: Any = None, since: Any = None,
                     before: Any = None, limit: int | None = None) -> pd.DataFrame:
        """Stored events of an asset: the frame of ``Client.asset_events`` for the same events, read from the store.

        Parameters
        ----------
        key, kind, partitions, since, before, limit
            As for :meth:`runlens.Client.asset_events` (the store needs no ``cursor``):
            ``kind="materialization"`` keeps failed materializations too, ``since`` is
            inclusive and ``before`` exclusive, ``limit`` keeps the newest events.

        Returns
        -------
        pandas.DataFrame
            Oldest first, the columns and dtypes of ``Client.asset_events`` (typed
            ``meta.<label>`` columns, ``attrs["metadata_notes"]`` for a label of mixed
            types); ``attrs["source"]`` is ``"history"``.

        Raises
        ------
        AssetNotFound
            The store holds no events of this asset (not synced, or unknown).
        """
        from .asset_events import read_asset_events

        return self._read(lambda m: read_asset_events(self._store, m, key, kind=kind, partitions=partitions,
                                                      since=since, before=before, limit=limit))

    def sql(self, query: str) -> pd.DataFrame:
        """Run a DuckDB query over the views ``runs``, ``events``, ``steps`` and ``asset_events``; returns a DataFrame.

        Needs DuckDB (``pip install 'runlens[history]'``).
        """
        from .query import sql

        return self._read(lambda m: sql(self._store, m, query))

    def _read(self, read: Any) -> Any:
        """``read(manifest)``; once more with the new manifest if a commit (a compaction) removed a
        file under it while it read."""
        from ..errors import StoreError

        manifest = self._store.manifest()
        try:
            return read(manifest)
        except StoreError:
            again = self._store.manifest()
            if again is manifest:
                raise
            return read(again)

    def final_events(self, run_id: str) -> pd.DataFrame | None:
        """The stored events of a final run, or None when the run is not stored whole (read-through)."""
        manifest = self._store.manifest()
        st = manifest["runs"].get(run_id)
        if not st or not st.get("final"):
            return None
        from .query import read_events

        frame = read_events(self._store, manifest, run_ids=[run_id])
        frame.attrs["cursor"] = st.get("cursor")
        return frame

    def endpoint(self) -> str | None:
        """The deployment the store holds (its GraphQL URL), None before the first sync."""
        return self._store.manifest().get("endpoint")
