"""The History store's asset events: round trip, incrementality, dedupe, kills, migration, compaction, repair.

Against :func:`tests.unit.history_fake.asset_deployment`, whose assets are served by
:class:`tests.unit.fake_dagster.FakeAssets` (``assetEventHistory`` as Dagster 1.13 serves it:
newest first, strict whole-millisecond bounds). The reference is always ``Client.asset_events``
against the same fake: the store must return its frame.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import runlens
from runlens.history import asset_events as asset_events_module
from runlens.history import maintenance
from runlens.history import store as store_module
from tests.unit.fake_dagster import asset_event, int_entry
from tests.unit.history_fake import NOVEMBER_MS, FakeDeployment, add_asset_events, asset_deployment
from tests.unit.history_v2 import write_v2_store
from tests.unit.test_history_maintenance import _Crash, _crash_at, _migrate_killed

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("daily_orders", "warehouse/orders", "raw_orders")
KINDS = ("materialization", "observation", "all")
_REAL_CRASH_POINT = store_module.crash_point
POINTS = ["assets-before-temp-fsync", "assets-before-manifest", "assets-after-manifest", "assets-after-rename"]


@pytest.fixture
def fake() -> FakeDeployment:
    return asset_deployment()


def _asset_requests(fake: FakeDeployment, since: int = 0) -> list[dict]:
    return [r for r in fake.requests[since:] if "assetOrError" in r["query"]]


def _assert_same_as_client(h: runlens.History, client: runlens.Client, **options) -> None:
    for key in KEYS:
        for kind in KINDS:
            stored = h.asset_events(key, kind=kind, **options)
            served = client.asset_events(key, kind=kind, **options)
            pd.testing.assert_frame_equal(stored, served)
            for name in ("metadata_notes", "metadata_types"):
                assert stored.attrs[name] == served.attrs[name], (key, kind, name)


def _glob_rows(root: Path) -> pd.DataFrame:
    """What a reader of ``*.parquet`` globs (DuckDB alone) sees."""
    import duckdb

    files = sorted((root / "asset_events").glob("month=*/*.parquet"))
    if not files:
        return pd.DataFrame({"asset_key": [], "seq": []})
    return duckdb.sql(f"SELECT asset_key, seq FROM read_parquet('{root / 'asset_events'}/*/*.parquet')").df()


# -------------------------------------------------------------------------------- round trip


def test_a_sync_stores_every_assets_events_and_reads_them_back_as_the_client_frame(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    report = h.sync(client)
    served = sum(1 for e in fake.assets.events)
    assert report.asset_events_written == served and report.assets_synced == 3
    assert f"and {served} asset events of 3 assets written" in report.summary()
    _assert_same_as_client(h, client)
    frame = h.asset_events("daily_orders")
    # Metadata of every kind keeps its type; a label of mixed kinds is text, with the client's note.
    assert str(frame["meta.seconds"].dtype) == "Float64" and pd.isna(frame["meta.seconds"][6])
    assert str(frame["meta.big"].dtype) == "string" and frame["meta.big"][0] == str(2**70)  # beyond 64 bits
    assert frame["meta.schema"][7] == {"columns": ["a", "b"], "version": 7}
    assert str(frame["meta.as_of"].dtype) == "datetime64[us, UTC]"
    assert "text in 1" in frame.attrs["metadata_notes"]["meta.row_count"]
    assert frame.attrs["source"] == "history" and frame.attrs["partitioned"] is True
    assert "WeirdMetadataEntry" in h.asset_events("warehouse/orders").attrs["metadata_notes"]["meta.future"]


@pytest.mark.parametrize("options", [
    {"partitions": "2026-11-01"}, {"partitions": ["2026-11-02", "2026-11-03"]},
    {"since": pd.Timestamp(NOVEMBER_MS + 4 * 60_000, unit="ms", tz="UTC").to_pydatetime()},
    {"before": pd.Timestamp(NOVEMBER_MS + 4 * 60_000, unit="ms", tz="UTC").to_pydatetime()},
    {"limit": 2}, {"limit": 1, "partitions": "2026-11-01"},
])
def test_the_filters_mean_what_they_mean_for_the_client(tmp_path, fake, options):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    _assert_same_as_client(h, client, **options)


def test_bad_arguments_and_unknown_assets_are_clear_errors(tmp_path, fake):
    h = runlens.History(tmp_path / "store")
    h.sync(fake.client())
    with pytest.raises(runlens.AssetNotFound, match="not synced yet"):
        h.asset_events("no_such_asset")
    with pytest.raises(runlens.AssetNotFound):
        h.asset_events("never_run")  # defined, never materialized: no event to store
    with pytest.raises(runlens.InvalidArgument, match="kind must be one of"):
        h.asset_events("daily_orders", kind="materializations")
    with pytest.raises(runlens.InvalidArgument, match="limit"):
        h.asset_events("daily_orders", limit=0)
    with pytest.raises(runlens.InvalidArgument):
        h.asset_events("")


def test_duckdb_reads_the_table_and_its_metadata(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    counts = h.sql("SELECT asset_key, count(*) AS n FROM asset_events GROUP BY 1 ORDER BY 1")
    served = {k: len(client.asset_events(k, kind="all")) for k in KEYS}
    assert dict(zip(counts["asset_key"], counts["n"], strict=True)) == served
    # A metadata value over time: the README's drift query.
    drift = h.sql("""
        SELECT e.timestamp, e.partition, m.int_value AS row_count
        FROM asset_events e, unnest(e.metadata) AS t(m)
        WHERE e.asset_key = 'daily_orders' AND m.label = 'row_count' AND m.kind = 'int'
        ORDER BY e.seq""")
    served_ints = [int(m["intRepr"]) for e in sorted(fake.assets.events, key=lambda e: e["storage_id"])
                   if e["asset"] == "daily_orders" for m in e["metadataEntries"]
                   if m["label"] == "row_count" and m["__typename"] == "IntMetadataEntry"]
    assert drift["row_count"].tolist() == served_ints and len(served_ints) == 8
    # Partitioned by the event's month, sorted by asset then seq.
    months = sorted(p.name for p in (Path(h.path) / "asset_events").iterdir())
    assert months == ["month=2026-10", "month=2026-11"]
    import pyarrow.parquet as pq

    for path in (Path(h.path) / "asset_events").rglob("*.parquet"):
        table = pq.read_table(path)
        keys = list(zip(table.column("asset_key").to_pylist(), table.column("seq").to_pylist(), strict=True))
        assert keys == sorted(keys)
        assert pq.ParquetFile(path).metadata.row_group(0).column(0).statistics.has_min_max


# ------------------------------------------------------------------------------ incremental


def test_a_second_sync_with_nothing_new_asks_only_the_asset_list(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    sent = len(fake.requests)
    report = h.sync(client)
    new = fake.requests[sent:]
    assert len(new) == 2 and "runsOrError" in new[0]["query"] and "assetsOrError" in new[1]["query"]
    assert report.asset_events_written == 0 and report.files_written == 0 and report.batches == 0


def test_only_assets_that_moved_are_fetched_and_nothing_is_doubled_or_lost(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    last = max(int(e["timestamp"]) for e in fake.assets.events if e["asset"] == "daily_orders")
    add_asset_events(fake, [
        # Same millisecond as the last stored event, another run: not the same event.
        asset_event(20, asset="daily_orders", partition="2026-11-01", millis=last, run_id="run-20",
                    metadata=[int_entry("row_count", 2000)]),
        # Made before the last stored one but stored after it (inside the overlap).
        asset_event(21, asset="daily_orders", partition="2026-11-02", millis=last - 5_000, run_id="run-21"),
        asset_event(22, asset="daily_orders", partition="2026-11-03", millis=last + 60_000, run_id="run-22",
                    metadata=[int_entry("row_count", 2200)]),
    ])
    sent = len(fake.requests)
    report = h.sync(client)
    asked = _asset_requests(fake, sent)
    assert [r["variables"]["assetKey"]["path"] for r in asked] == [["daily_orders"]]  # the others did not move
    # From the last stored event minus the overlap (the client widens the strict bound by a second).
    assert int(asked[0]["variables"]["after"]) == last - asset_events_module.OVERLAP_MS - 1000
    assert report.asset_events_written == 3 and report.assets_synced == 1
    _assert_same_as_client(h, client)
    assert not _glob_rows(Path(h.path)).duplicated().any()


def test_events_that_share_an_identity_are_all_kept(tmp_path, fake):
    twin = dict(asset_event(30, asset="daily_orders", partition="2026-11-01", millis=NOVEMBER_MS + 30 * 60_000,
                            run_id="run-30"))
    fake.assets.events.append(twin)
    add_asset_events(fake, [{**twin, "storage_id": 31}])
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    add_asset_events(fake, [{**twin, "storage_id": 32}])  # a third, within the overlap of the first two
    h.sync(client)
    frame = h.asset_events("daily_orders")
    assert (frame["run_id"] == "run-30").sum() == 3
    _assert_same_as_client(h, client)


def test_every_asset_is_synced_whatever_the_job_and_since_fetches_the_older_part_later(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    since = pd.Timestamp(NOVEMBER_MS, unit="ms", tz="UTC").to_pydatetime()
    h.sync(client, job="slow_job", since=since)
    assert sorted(h.sql("SELECT DISTINCT asset_key FROM asset_events")["asset_key"]) == sorted(KEYS)
    _assert_same_as_client(h, client, since=since)
    assert h.sql("SELECT min(timestamp) AS t FROM asset_events")["t"][0] >= pd.Timestamp(since)
    sent = len(fake.requests)
    h.sync(client)  # no since: October's events too, exactly once
    older = [r for r in _asset_requests(fake, sent) if r["variables"].get("before")]
    assert older and all(r["variables"]["after"] is None for r in older)
    _assert_same_as_client(h, client)
    assert not _glob_rows(Path(h.path)).duplicated().any()


def test_a_light_sync_syncs_asset_events_too_and_assets_false_skips_them(tmp_path, fake):
    client = fake.client()
    light = runlens.History(tmp_path / "light")
    assert light.sync(client, events=False).asset_events_written == len(fake.assets.events)
    _assert_same_as_client(light, client)
    sent = len(fake.requests)
    none = runlens.History(tmp_path / "none")
    assert none.sync(client, assets=False).asset_events_written == 0
    assert not any("assetsOrError" in r["query"] or "assetOrError" in r["query"] for r in fake.requests[sent:])
    with pytest.raises(runlens.AssetNotFound):
        none.asset_events("daily_orders")
    assert len(none.sql("SELECT * FROM asset_events")) == 0


def test_cli_sync_reports_asset_events_and_can_skip_them(tmp_path, fake, monkeypatch):
    from runlens import cli

    monkeypatch.setattr(cli, "_client", lambda url: fake.client())
    store = str(tmp_path / "store")
    result = CliRunner().invoke(cli.main, ["sync", "--store", store, "--no-assets", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["asset_events_written"] == 0
    result = CliRunner().invoke(cli.main, ["sync", "--store", store])
    assert result.exit_code == 0, result.output
    assert f"and {len(fake.assets.events)} asset events of 3 assets written" in result.output


# ------------------------------------------------------------------------------------ kills


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("nth", [1, 2])
def test_a_sync_killed_at_an_asset_commit_point_is_completed_by_the_next_one(tmp_path, fake, monkeypatch, point,
                                                                               nth):
    monkeypatch.setattr(asset_events_module, "ASSETS_PER_COMMIT", 1)  # a commit per asset
    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())
    root = tmp_path / "store"
    h = runlens.History(root)
    _crash_at(monkeypatch, point, nth)
    with pytest.raises(_Crash):
        h.sync(fake.client())
    monkeypatch.setattr(store_module, "crash_point", _REAL_CRASH_POINT)
    # Readers see the last commit; a glob reader never sees a row twice, nor an unlisted file.
    manifest = json.loads((root / "manifest.json").read_text())
    listed = {e["path"] for e in manifest["files"].get("asset_events", [])}
    assert {str(p.relative_to(root)) for p in (root / "asset_events").rglob("*.parquet")} <= listed
    assert not _glob_rows(root).duplicated().any()
    for key in manifest.get("assets", {}):
        h.asset_events(key, kind="all")  # readable as it lies, pending renames included
    h.sync(fake.client())
    assert not list(root.rglob(".tmp-*"))
    _assert_same_as_client(h, fake.client())
    for key in KEYS:
        pd.testing.assert_frame_equal(h.asset_events(key, kind="all"), reference.asset_events(key, kind="all"))
    assert len(_glob_rows(root)) == len(fake.assets.events) and not _glob_rows(root).duplicated().any()

_KILLED_SYNC = """
import sys
import runlens
from runlens.history import asset_events
from tests.unit.history_fake import asset_deployment
asset_events.ASSETS_PER_COMMIT = 1
runlens.History(sys.argv[1]).sync(asset_deployment().client())
"""


@pytest.mark.parametrize("point", POINTS)
def test_a_sync_process_killed_by_sigkill_at_an_asset_commit_point_is_completed_by_the_next_one(tmp_path, fake,
                                                                                                 point):
    root = tmp_path / "store"
    env = {**os.environ, store_module.KILL_ENV: point,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _KILLED_SYNC, str(root)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    h = runlens.History(root)
    assert not _glob_rows(root).duplicated().any()
    h.sync(fake.client())  # the killed process's lock went with it
    assert not list(root.rglob(".tmp-*"))
    _assert_same_as_client(h, fake.client())
    assert len(_glob_rows(root)) == len(fake.assets.events)


# ------------------------------------------------------------------- migration, compaction, repair


def test_a_format_2_store_is_refused_by_readers_then_migrated_in_place_and_synced(tmp_path, fake):
    client = fake.client()
    root = write_v2_store(tmp_path / "old", client)
    files = sorted(p.relative_to(root) for p in root.rglob("*.parquet"))
    h = runlens.History(root)
    with pytest.raises(runlens.StoreError, match="format version 2, written by an older runlens"):
        h.runs()
    reference = runlens.History(tmp_path / "reference")
    reference.sync(client)
    assert h.migrate() == 2
    assert sorted(p.relative_to(root) for p in root.rglob("*.parquet")) == files  # in place, nothing rewritten
    assert json.loads((root / "manifest.json").read_text())["format_version"] == store_module.FORMAT_VERSION == 3
    for got, want in zip((h.runs(), h.events(), h.steps()), (reference.runs(), reference.events(),
                                                             reference.steps()), strict=True):
        pd.testing.assert_frame_equal(got, want)
    with pytest.raises(runlens.AssetNotFound):
        h.asset_events("daily_orders")  # format 2 had none: the next sync fetches them
    assert h.sync(client).asset_events_written == len(fake.assets.events)
    _assert_same_as_client(h, client)


@pytest.mark.parametrize("point", ["migrate-before-manifest", "migrate-after-manifest", "migrate-after-rename"])
def test_a_migration_from_format_2_killed_at_a_commit_point_is_completed_by_the_next_sync(tmp_path, fake,
                                                                                           monkeypatch, point):
    root = write_v2_store(tmp_path / "old", fake.client())
    h = runlens.History(root)
    version = _migrate_killed(monkeypatch, h, point)
    assert version == (2 if point == "migrate-before-manifest" else 3)
    h.sync(fake.client())
    assert not list(root.rglob(".tmp-*"))
    _assert_same_as_client(h, fake.client())


def _grow(fake: FakeDeployment, h: runlens.History, syncs: int) -> None:
    """``syncs`` more syncs, each after a new materialization of daily_orders: a new file in November's partition."""
    for i in range(syncs):
        add_asset_events(fake, [asset_event(40 + i, asset="daily_orders", partition="2026-11-01",
                                            millis=NOVEMBER_MS + (40 + i) * 60_000, run_id=f"run-{40 + i}",
                                            metadata=[int_entry("row_count", 4000 + i)])])
        h.sync(fake.client())


def _asset_files(h: runlens.History) -> dict[str, int]:
    manifest = json.loads((Path(h.path) / "manifest.json").read_text())
    counts: dict[str, int] = {}
    for entry in manifest["files"]["asset_events"]:
        counts[entry["month"]] = counts.get(entry["month"], 0) + 1
    return counts


def test_compaction_merges_the_asset_events_files_of_a_month(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(maintenance, "COMPACT_AT", 10_000)
    h = runlens.History(tmp_path / "store")
    h.sync(fake.client())
    _grow(fake, h, 3)
    assert _asset_files(h) == {"2026-10": 1, "2026-11": 4}
    before = {key: h.asset_events(key, kind="all") for key in KEYS}
    report = h.compact()
    assert report.files_merged >= 4 and _asset_files(h) == {"2026-10": 1, "2026-11": 1}
    for key in KEYS:
        pd.testing.assert_frame_equal(h.asset_events(key, kind="all"), before[key])
    assert not _glob_rows(Path(h.path)).duplicated().any()
    _assert_same_as_client(h, fake.client())


def test_a_sync_compacts_a_month_of_too_many_asset_events_files(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(maintenance, "COMPACT_AT", 2)
    h = runlens.History(tmp_path / "store")
    h.sync(fake.client())
    _grow(fake, h, 2)
    assert _asset_files(h)["2026-11"] <= 2
    _assert_same_as_client(h, fake.client())


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_repair_drops_a_broken_asset_events_file_and_refetches_its_assets(tmp_path, fake, damage):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    manifest = json.loads((Path(h.path) / "manifest.json").read_text())
    october = next(e for e in manifest["files"]["asset_events"] if e["month"] == "2026-10")
    path = Path(h.path) / october["path"]
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        path.unlink()
    with pytest.raises(runlens.StoreError, match="repair"):
        h.asset_events("daily_orders")
    result = h.repair(client)
    assert october["path"] in result.problems and result.assets_refetched == ["daily_orders"]
    assert "events of 1 assets refetched" in result.summary()
    assert result.sync.asset_events_written == len(client.asset_events("daily_orders", kind="all"))
    _assert_same_as_client(h, client)
    assert not _glob_rows(Path(h.path)).duplicated().any()


def test_a_repair_killed_while_dropping_asset_events_is_completed_by_the_next_one(tmp_path, fake, monkeypatch):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    _grow(fake, h, 1)  # daily_orders spans three files: the broken one's others are rewritten without it
    manifest = json.loads((Path(h.path) / "manifest.json").read_text())
    october = next(e for e in manifest["files"]["asset_events"] if e["month"] == "2026-10")
    (Path(h.path) / october["path"]).write_bytes(b"not parquet")
    _crash_at(monkeypatch, "assets-after-remove")
    with pytest.raises(_Crash):
        h.repair(client)
    monkeypatch.setattr(store_module, "crash_point", _REAL_CRASH_POINT)
    assert not _glob_rows(Path(h.path)).duplicated().any()
    h.repair(client)
    _assert_same_as_client(h, client)
    assert len(_glob_rows(Path(h.path))) == len(fake.assets.events)


def test_an_asset_gone_between_the_list_and_its_fetch_is_looked_at_again_by_the_next_sync(tmp_path, fake,
                                                                                          monkeypatch):
    client = fake.client()
    real = fake.assets._asset

    def gone(variables: dict) -> dict:  # raw_orders: listed, then answered as unknown
        if variables["assetKey"]["path"] == ["raw_orders"]:
            return {"__typename": "Asset", "latestEventSortKey": None, "definition": None,
                    "assetEventHistory": {"results": [], "cursor": None}}
        return real(variables)

    monkeypatch.setattr(fake.assets, "_asset", gone)
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    with pytest.raises(runlens.AssetNotFound):
        h.asset_events("raw_orders", kind="all")
    monkeypatch.setattr(fake.assets, "_asset", real)
    h.sync(client)
    _assert_same_as_client(h, client)
