"""Assets and the newest dg api run options, replayed from cassettes of the demo Dagster.

Expected values come from cassettes/manifest.json: ``assets`` holds Dagster's own
records of each demo asset (read through its Python API when recording), ``runs`` the
seeded run ids.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

import runlens
from runlens.cli import main
from runlens.demo.server import DAILY_RERUN_PARTITIONS


@pytest.fixture
def client(manifest):
    return runlens.Client(manifest["url"], progress=False, max_retries=0)


def invoke(manifest, *args):
    return CliRunner().invoke(main, [*args, "--url", manifest["url"]])


def rows(frame: pd.DataFrame) -> list[tuple]:
    meta = [c for c in frame.columns if c.startswith("meta.")]
    return [(r["partition"] if not pd.isna(r["partition"]) else None, r["run_id"], r["timestamp"].value // 1_000_000,
             {c[5:]: r[c] for c in meta if isinstance(r[c], (dict, list)) or not pd.isna(r[c])})
            for _, r in frame.iterrows()]


def truth_rows(records: list[dict]) -> list[tuple]:
    return [(r["partition"], r["run_id"], r["timestamp_ms"], r["metadata"]) for r in records]


def test_asset_events_equal_dagsters_records(client, manifest, cassette):
    truth = manifest["assets"]
    with cassette("assets"):
        listed = client.assets()
        daily = client.asset_events("daily_orders")
        newest = client.asset_events("daily_orders", limit=4)
        rest = client.asset_events("daily_orders", cursor=newest.attrs["cursor"])
        warehouse = client.asset_events("warehouse/sales_by_region")
        with pytest.raises(runlens.AssetNotFound):
            client.asset_events("no/such/asset")
    assert rows(daily) == truth_rows(truth["daily_orders"])
    assert str(daily["meta.row_count"].dtype) == "Int64" and str(daily["meta.duration_s"].dtype) == "Float64"
    assert rows(newest) == truth_rows(truth["daily_orders"][-4:]) and newest.attrs["has_more"]
    assert rows(rest) + rows(newest) == truth_rows(truth["daily_orders"]) and not rest.attrs["has_more"]
    assert rows(warehouse) == truth_rows(truth["warehouse/sales_by_region"])
    assert {"daily_orders", "warehouse/sales_by_region"} <= set(listed["key"])


def test_cli_assets(manifest, cassette):
    truth = manifest["assets"]["daily_orders"]
    with cassette("cli_assets"):
        listed = json.loads(invoke(manifest, "asset", "list", "--json").stdout)
        table = invoke(manifest, "asset", "list")
        events = json.loads(invoke(manifest, "asset", "events", "daily_orders", "--json", "--limit", "1000").stdout)
        partition = DAILY_RERUN_PARTITIONS[0]
        some = invoke(manifest, "asset", "events", "daily_orders", "--partition", partition)
        missing = invoke(manifest, "asset", "events", "no/such/asset", "--json")
    assert {a["key"] for a in listed["assets"]} >= {"daily_orders"} and table.exit_code == 0
    assert [(e["partition"], e["run_id"], e["metadata"]) for e in events["events"]] == [
        (r["partition"], r["run_id"], r["metadata"]) for r in truth]
    assert some.exit_code == 0 and f"Total events: {sum(r['partition'] == partition for r in truth)}" in some.stdout
    assert missing.exit_code == 3 and json.loads(missing.stderr)["asset_key"] == "no/such/asset"


def test_cli_run_cursors(manifest, cassette):
    runs, truth = manifest["runs"], manifest["truth"]
    with cassette("cli_run_cursors"):
        first = json.loads(invoke(manifest, "run-events", "get", runs["etl"], "--json", "--limit", "50").stdout)
        rest = json.loads(invoke(manifest, "run-events", "get", runs["etl"], "--json", "--limit", "100000",
                                 "--after-seq", "49").stdout)
        statuses = json.loads(invoke(manifest, "run", "list", "--status", "FAILURE", "--status", "CANCELED",
                                     "--json").stdout)
        tagged = json.loads(invoke(manifest, "run", "list", "--tag",
                                   f"dagster/asset_partition_range_start={DAILY_RERUN_PARTITIONS[0]}", "--json").stdout)
        two = json.loads(invoke(manifest, "run", "list", "--limit", "2", "--since", "2000-01-01", "--json").stdout)
    assert first["has_more"] and first["cursor"]
    assert [e["eventType"] for e in first["events"] + rest["events"]] == truth["etl"]["event_types"]
    expected = {runs[k] for k in runs if truth[k]["status"] in ("FAILURE", "CANCELED")}
    assert expected <= {r["id"] for r in statuses["runs"]}
    assert {r["status"] for r in statuses["runs"]} <= {"FAILURE", "CANCELED"}
    assert [r["id"] for r in tagged["runs"]] == [runs["daily_orders_rerun"]]
    assert two["count"] == 2 and two["has_more"] is True and two["cursor"] == two["runs"][-1]["id"]
