"""Asset events in the History store: every asset's materializations, failures and observations, with metadata.

Layout: ``asset_events/month=2026-11/part-000012.parquet``, partitioned by the month (UTC) of
the *event*: an asset's history is a time series with no unit that must stay whole (as a run's
events must), drift questions are bounded in time, and a sync appends to the current month
only. Inside a file rows are sorted by ``asset_key`` then ``seq`` (the event's place in the
asset's history, storage order), so one asset's rows are contiguous row groups whose
statistics let a reader skip the rest; the manifest lists the assets each file holds.

What a sync fetches (:func:`sync_asset_events`), after the runs:

* the asset list (``assetsOrError``, 500 assets a request) with each asset's
  ``latestEventSortKey``, the storage id of its last event;
* for each asset whose sort key moved since the last sync (or that is new), the events
  from its last stored event's timestamp minus :data:`OVERLAP_MS` on (the bound is on
  timestamps, which storage order does not quite follow), every kind (materializations,
  failed materializations, observations). Events already stored in that window (the
  manifest keeps their identities, ``tail``) are dropped; the identity is (timestamp,
  run, step, status, partition) counted as a multiset, so two events that share it are
  both kept.

Every asset, whatever the sync's ``job=``: an asset's history is not one job's (several
jobs, backfills and ad-hoc runs materialize the same asset), and a per-job mark could not
tell a later unfiltered sync what is missing. ``since=`` bounds an asset's first fetch; a
later sync with an earlier ``since`` fetches the missing older part (exactly
``[since, the earlier since)``). A second sync with nothing new costs the asset list only:
one request per 500 assets.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import AssetNotFound
from .store import Store
from .tables import ASSET_EVENTS_SCHEMA, TS, asset_events_table, asset_records_of, stored_entry_value

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client
    from .sync import SyncReport

KIND = "asset_events"
#: Milliseconds re-asked before an asset's last stored event (event timestamps are set when the
#: event is made, a little before it is stored).
OVERLAP_MS = 60_000
ORDER = [("asset_key", "ascending"), ("seq", "ascending")]
#: A commit once this many assets (or rows) are fetched: a sync that fails keeps what it committed.
ASSETS_PER_COMMIT = 100
ROWS_PER_COMMIT = 200_000
#: The statuses each ``kind=`` of ``asset_events`` keeps.
STATUSES = {"materialization": ("MATERIALIZED", "FAILED"), "observation": ("OBSERVED",),
            "all": ("MATERIALIZED", "FAILED", "OBSERVED")}


def _month(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m")


def _moment(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _identity(record: dict) -> list:
    from ..assets import _STATUS

    return [int(record["timestamp"]), record.get("runId"), record.get("stepKey"), _STATUS.get(record.get("__typename")),
            record.get("partition")]


# ----------------------------------------------------------------------------------- sync


def sync_asset_events(store: Store, client: Client, manifest: dict, report: SyncReport,
                      since_s: float | None) -> None:
    """Fetch the asset events the store lacks and commit them (see the module); ``manifest`` is the
    sync's working copy."""
    from ..assets import fetch_asset_nodes

    nodes = fetch_asset_nodes(client.transport, client.url)
    assets = manifest.setdefault("assets", {})
    manifest["files"].setdefault(KIND, [])
    since_ms = None if since_s is None else int(math.ceil(since_s * 1000))
    pending: list[pa.Table] = []
    touched = 0
    for key, node in nodes.items():
        sort_key = node.get("latestEventSortKey")
        if sort_key is None:
            continue  # no event ever
        st = assets.get(key)
        backfill = st is not None and st.get("since") is not None and (since_ms is None or since_ms < st["since"])
        if st is not None and st.get("sort_key") == str(sort_key) and not backfill:
            continue
        table = _fetch_asset(client, node, key, st, since_ms, assets, str(sort_key))
        touched += 1
        if table is not None:
            pending.append(table)
            report.assets_synced += 1
        if touched >= ASSETS_PER_COMMIT or sum(t.num_rows for t in pending) >= ROWS_PER_COMMIT:
            _commit(store, manifest, pending, report)
            pending, touched = [], 0
    if touched:
        _commit(store, manifest, pending, report)


def _fetch_asset(client: Client, node: dict, key: str, st: dict | None, since_ms: int | None,
                 assets: dict, sort_key: str) -> pa.Table | None:
    """The new events of one asset as a table (None: none), its state in ``assets`` moved on (to ``sort_key``,
    the asset list's, which the events fetched after it reach at least)."""
    from ..assets import fetch_asset_records

    path = node["key"]["path"]
    definition = node.get("definition")
    if st is None:
        st = {"since": since_ms, "rows": 0, "max_ts": None, "tail": [], "next_seq": 0, "first_seq": 0}
    backfill = st["since"] is not None and (since_ms is None or since_ms < st["since"])
    # Forward: from a little before the last stored event (everything from `since` the first time).
    low = st["max_ts"] - OVERLAP_MS if st["rows"] else st["since"]
    try:
        records, partitioned = fetch_asset_records(client.transport, client.url, path, kind="all", since=_moment(low))
    except AssetNotFound:
        return None  # gone between the list and the fetch: the next sync looks again
    seen = Counter(tuple(i) for i in st["tail"])
    fresh = []
    for record in reversed(records):  # oldest first: the ones stored already are the older of equals
        identity = tuple(_identity(record))
        if seen[identity]:
            seen[identity] -= 1
        else:
            fresh.append(record)
    seqs = list(range(st["next_seq"], st["next_seq"] + len(fresh)))
    # Backward: the part before the earlier `since`, exactly [since, earlier since).
    older: list[dict] = []
    if backfill:
        older, _ = fetch_asset_records(client.transport, client.url, path, kind="all", since=_moment(since_ms),
                                       before=_moment(st["since"]))
        older = older[::-1]
        st["since"] = since_ms
    older_seqs = list(range(st["first_seq"] - len(older), st["first_seq"]))
    new = older + fresh
    st["next_seq"] += len(fresh)
    st["first_seq"] -= len(older)
    st["rows"] += len(new)
    if isinstance(partitioned, bool) or isinstance(definition, dict):
        st["partitioned"] = partitioned if isinstance(partitioned, bool) else definition.get("isPartitioned")
    if new:
        st["max_ts"] = max([int(r["timestamp"]) for r in new] + ([st["max_ts"]] if st["max_ts"] is not None else []))
    if st["max_ts"] is not None:
        floor = st["max_ts"] - OVERLAP_MS
        st["tail"] = [i for i in st["tail"] if i[0] >= floor] + [_identity(r) for r in new
                                                                  if int(r["timestamp"]) >= floor]
    st["sort_key"] = sort_key
    assets[key] = st
    if not new:
        return None
    # Newest first, as the server pages them (asset_events_table keeps the order given).
    return asset_events_table(key, new, older_seqs + seqs)


def _commit(store: Store, manifest: dict, tables: list[pa.Table], report: SyncReport) -> None:
    """One commit of the store's protocol (crash points ``assets-*``): the new files, the assets' marks."""
    from .maintenance import table_writer

    manifest["batch"] = batch = int(manifest.get("batch", 0)) + 1
    renames: dict[str, str] = {}
    write = table_writer(store, batch, renames, report, stage="assets-")
    if tables:
        table = pa.concat_tables(tables)
        millis = table.column("timestamp").cast(pa.timestamp("ms")).cast(pa.int64()).to_pylist()
        months = [_month(ms) for ms in millis]
        for month in sorted(set(months)):
            part = table.filter(pa.array([m == month for m in months]))
            rel = f"{KIND}/month={month}/part-{batch:06d}.parquet"
            write(rel, part, ORDER)
            manifest["files"][KIND].append(file_entry(rel, month, part))
            report.asset_events_written += part.num_rows
    manifest["synced_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    store.commit(manifest, renames, stage="assets-")
    report.batches += 1


def file_entry(rel: str, month: str, table: pa.Table) -> dict[str, Any]:
    """The manifest's entry of an asset events file: where, which month, how many rows, which assets."""
    return {"path": rel, "month": month, "rows": table.num_rows,
            "assets": sorted(pc.unique(table.column("asset_key")).to_pylist())}


# ----------------------------------------------------------------------------------- read


def read_asset_events(store: Store, manifest: dict, key: Any, *, kind: str = "materialization",
                      partitions: Any = None, since: Any = None, before: Any = None,
                      limit: int | None = None) -> pd.DataFrame:
    """See :meth:`runlens.History.asset_events`."""
    from ..assets import asset_events_frame, asset_key_path, asset_key_text, check_query
    from .query import _and, _scan

    key_text = asset_key_text(asset_key_path(key))
    partitions, start, end = check_query(kind, partitions, since, before, limit)
    st = manifest.get("assets", {}).get(key_text)
    if st is None:
        raise AssetNotFound(f"asset {key_text!r} has no events in the History store {str(store.root)!r}: not synced "
                            "yet (h.sync(client) stores every asset's events) or unknown to the deployment; "
                            "h.sql(\"SELECT DISTINCT asset_key FROM asset_events\") lists the stored ones",
                            asset_key=key_text)
    # The client's exact bounds: [since, before) in whole milliseconds, rounded up.
    low = None if start is None else int(math.ceil(start.timestamp() * 1000))
    high = None if end is None else int(math.ceil(end.timestamp() * 1000))
    rels = [e["path"] for e in manifest["files"].get(KIND, []) if key_text in e["assets"]
            and (low is None or e["month"] >= _month(low)) and (high is None or e["month"] <= _month(high - 1))]
    parts = [pc.field("asset_key") == key_text, pc.field("status").isin(list(STATUSES[kind]))]
    if partitions is not None:
        parts.append(pc.field("partition").isin(partitions))
    if low is not None:
        parts.append(pc.field("timestamp") >= pa.scalar(low, type=pa.int64()).cast(pa.timestamp("ms")).cast(TS))
    if high is not None:
        parts.append(pc.field("timestamp") < pa.scalar(high, type=pa.int64()).cast(pa.timestamp("ms")).cast(TS))
    table = _scan([str(store.resolve(rel, manifest)) for rel in rels], ASSET_EVENTS_SCHEMA, _and(parts))
    has_more = limit is not None and table.num_rows > limit
    if has_more:  # the newest `limit`, as the client keeps them
        table = table.sort_by([("seq", "descending")]).slice(0, limit)
    frame = asset_events_frame(asset_records_of(table), key_text, decode=stored_entry_value)
    frame.attrs.update(asset_key=key_text, kind=kind, endpoint=manifest.get("endpoint"), source="history",
                       synced_at=manifest.get("synced_at"), cursor=None, has_more=has_more, complete=not has_more,
                       partitioned=st.get("partitioned"))
    return frame


# --------------------------------------------------------------------------------- repair


def drop_broken(store: Store, manifest: dict, problems: dict[str, str]) -> list[str]:
    """Drop the broken asset events files and every other row of the assets they held, in one commit
    (crash points ``assets-*``); those assets are fetched whole by the next sync. Returns them."""
    from .maintenance import _new_name, _read, table_writer

    files = manifest["files"].get(KIND, [])
    broken = [e for e in files if e["path"] in problems]
    if not broken:
        return []
    lost = sorted({key for e in broken for key in e["assets"]})
    manifest["files"][KIND] = files = [e for e in files if e["path"] not in problems]
    manifest["batch"] = batch = int(manifest.get("batch", 0)) + 1
    renames: dict[str, str] = {}
    removals = [e["path"] for e in broken]
    write = table_writer(store, batch, renames, stage="assets-")
    taken: set[str] = set()
    for entry in [e for e in files if set(e["assets"]) & set(lost)]:
        kept = _read(store, manifest, KIND, [entry["path"]])
        kept = kept.filter(pc.invert(pc.is_in(kept.column("asset_key"), value_set=pa.array(lost, pa.string()))))
        files.remove(entry)
        removals.append(entry["path"])
        if kept.num_rows:
            rel = _new_name(manifest, KIND, entry["month"], batch, taken)
            write(rel, kept, ORDER)
            files.append(file_entry(rel, entry["month"], kept))
    for key in lost:
        manifest.get("assets", {}).pop(key, None)
    store.commit(manifest, renames, removals, stage="assets-")
    return lost
