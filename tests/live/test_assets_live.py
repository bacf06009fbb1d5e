"""Assets against the live demo Dagster, compared with Dagster's own records (tests/truth.py).

The demo's ``daily_orders`` asset is materialized over seven daily partitions by one run
and three of them again by a second run (:func:`runlens.demo.seed_runs`);
``warehouse/sales_by_region`` is a materialization logged by an op, with one metadata
entry of each common kind and no definition.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

import runlens
from runlens.cli import main
from runlens.demo.server import DAILY_PARTITIONS, DAILY_RERUN_PARTITIONS
from tests.truth import dagster_asset_truth

DAILY = "daily_orders"
WAREHOUSE = "warehouse/sales_by_region"


@pytest.fixture(scope="module")
def truth(demo):
    return {key: dagster_asset_truth(demo.dagster.home, key) for key in (DAILY, WAREHOUSE)}


def as_rows(frame: pd.DataFrame) -> list[dict]:
    """The frame's rows in the truth's shape: status, ms, run, step, partition, metadata."""
    meta = [c for c in frame.columns if c.startswith("meta.")]
    rows = []
    for _, row in frame.iterrows():
        values = {c[5:]: row[c] for c in meta if not (not isinstance(row[c], (dict, list)) and pd.isna(row[c]))}
        rows.append({"status": str(row["status"]), "timestamp_ms": row["timestamp"].value // 1_000_000,
                     "run_id": row["run_id"], "step_key": row["step_key"],
                     "partition": None if pd.isna(row["partition"]) else row["partition"], "metadata": values})
    return rows


def without_storage_ids(truth: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "storage_id"} for r in truth]


def test_the_partitioned_assets_events_equal_dagsters_records(client, demo, truth):
    frame = client.asset_events(DAILY)
    expected = without_storage_ids(truth[DAILY])
    assert as_rows(frame) == expected
    first, last = DAILY_PARTITIONS
    rerun_first, _ = DAILY_RERUN_PARTITIONS
    days = pd.date_range(first, last).strftime("%Y-%m-%d").tolist()
    again = pd.date_range(rerun_first, last).strftime("%Y-%m-%d").tolist()
    assert len(frame) == len(days) + len(again)
    assert frame["partition"].tolist() == days + again  # one run's order, then the rerun's
    assert set(frame["run_id"]) == {demo.runs["daily_orders"], demo.runs["daily_orders_rerun"]}
    assert str(frame["meta.row_count"].dtype) == "Int64" and str(frame["meta.duration_s"].dtype) == "Float64"
    assert str(frame["meta.source"].dtype) == "string" and str(frame["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert frame.attrs["partitioned"] is True and frame.attrs["metadata_notes"] == {}
    assert frame["timestamp"].is_monotonic_increasing


def test_every_metadata_kind_of_an_op_logged_materialization(client, truth):
    frame = client.asset_events(WAREHOUSE)
    assert as_rows(frame) == without_storage_ids(truth[WAREHOUSE])
    kinds = frame.attrs["metadata_types"]
    assert kinds == {"meta.row_count": "int", "meta.grand_total": "float", "meta.table": "text", "meta.path": "text",
                     "meta.dashboard": "text", "meta.summary": "text", "meta.schema": "json"}
    assert frame["meta.schema"][0] == {"columns": ["region", "total"], "version": 2}
    assert frame.attrs["partitioned"] is None  # no definition: known from its history only


def test_partitions_since_before_and_limit_match_the_records(client, truth):
    records = truth[DAILY]
    rerun = DAILY_RERUN_PARTITIONS[0]
    only = client.asset_events(DAILY, partitions=[rerun])
    assert as_rows(only) == without_storage_ids([r for r in records if r["partition"] == rerun])
    low, high = records[3]["timestamp_ms"], records[7]["timestamp_ms"]
    bounded = client.asset_events(DAILY, since=pd.Timestamp(low, unit="ms", tz="UTC"),
                                  before=pd.Timestamp(high, unit="ms", tz="UTC"))
    assert as_rows(bounded) == without_storage_ids([r for r in records if low <= r["timestamp_ms"] < high])
    newest = client.asset_events(DAILY, limit=4)
    assert as_rows(newest) == without_storage_ids(records[-4:]) and newest.attrs["has_more"]


def test_chunks_by_cursor_reassemble_the_history(client, truth):
    chunks, cursor = [], None
    while True:
        chunk = client.asset_events(DAILY, limit=3, cursor=cursor)
        chunks.insert(0, chunk)
        cursor = chunk.attrs["cursor"]
        if not chunk.attrs["has_more"]:
            break
    assert len(chunks) == 4
    assert [r for c in chunks for r in as_rows(c)] == without_storage_ids(truth[DAILY])


def test_observations_of_an_asset_never_observed_are_an_empty_typed_frame(client):
    frame = client.asset_events(DAILY, kind="observation")
    assert frame.empty and str(frame["timestamp"].dtype) == "datetime64[ms, UTC]"


def test_assets_lists_both_keys_with_their_last_materialization(client, truth):
    frame = client.assets()
    rows = {r.key: r for r in frame.itertuples()}
    assert {DAILY, WAREHOUSE} <= set(rows)
    daily = rows[DAILY]
    assert daily.group == "demo_daily" and daily.partitioned and daily.defined
    assert daily.last_materialization.value // 1_000_000 == truth[DAILY][-1]["timestamp_ms"]
    assert not rows[WAREHOUSE].defined and pd.isna(rows[WAREHOUSE].partitioned)
    assert rows[WAREHOUSE].last_materialization.value // 1_000_000 == truth[WAREHOUSE][-1]["timestamp_ms"]
    assert client.assets(prefix="warehouse")["key"].tolist() == [WAREHOUSE]


def test_an_unknown_key_is_asset_not_found(client):
    # Dagster 1.13 answers an empty Asset for it.
    with pytest.raises(runlens.AssetNotFound) as info:
        client.asset_events("no/such/asset")
    assert info.value.asset_key == "no/such/asset"


# ---------------------------------------------------------------------------- CLI


def cli(demo, *args):
    return CliRunner().invoke(main, [*args, "--url", demo.base_url])


def test_cli_asset_events_json_equals_the_records(demo, truth):
    result = cli(demo, "asset", "events", DAILY, "--json", "--limit", "1000")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["count"] == len(truth[DAILY]) and doc["has_more"] is False
    assert [(e["partition"], e["run_id"], e["metadata"]) for e in doc["events"]] == [
        (r["partition"], r["run_id"], r["metadata"]) for r in truth[DAILY]]


def test_cli_asset_list_and_exit_codes(demo):
    listed = cli(demo, "asset", "list", "--json")
    assert listed.exit_code == 0 and {DAILY, WAREHOUSE} <= {a["key"] for a in json.loads(listed.stdout)["assets"]}
    missing = cli(demo, "asset", "events", "no/such", "--json")
    assert missing.exit_code == 3 and json.loads(missing.stderr)["asset_key"] == "no/such"
    assert cli(demo, "asset", "events", DAILY, "--limit", "0").exit_code == 2


def test_cli_run_list_tag_status_and_cursor(demo, client):
    start = DAILY_RERUN_PARTITIONS[0]
    tagged = cli(demo, "run", "list", "--tag", f"dagster/asset_partition_range_start={start}", "--json")
    assert [r["id"] for r in json.loads(tagged.stdout)["runs"]] == [demo.runs["daily_orders_rerun"]]
    both = json.loads(cli(demo, "run", "list", "--status", "FAILURE", "--status", "CANCELED", "--limit", "1000",
                          "--json").stdout)
    expected = client.runs(statuses=["FAILURE", "CANCELED"])
    assert [r["id"] for r in both["runs"]] == expected["run_id"].tolist()
    first = json.loads(cli(demo, "run", "list", "--limit", "2", "--json").stdout)
    rest = json.loads(cli(demo, "run", "list", "--limit", "1000", "--cursor", first["cursor"], "--json").stdout)
    assert [r["id"] for r in first["runs"] + rest["runs"]] == client.runs()["run_id"].tolist()


def test_cli_run_events_cursor_chunks_equal_the_whole_run(demo):
    run_id = demo.runs["etl"]
    whole = json.loads(cli(demo, "run-events", "get", run_id, "--json", "--limit", "100000").stdout)
    seen, cursor = [], None
    while True:
        args = ["run-events", "get", run_id, "--json", "--limit", "40", "--type", "STEP_START,STEP_SUCCESS"]
        doc = json.loads(cli(demo, *args, *(["--cursor", cursor] if cursor else [])).stdout)
        seen += doc["events"]
        cursor = doc["cursor"]
        if not doc["has_more"]:
            break
    assert seen == [e for e in whole["events"] if e["eventType"] in ("STEP_START", "STEP_SUCCESS")]
    after = json.loads(cli(demo, "run-events", "get", run_id, "--json", "--limit", "100000", "--after-seq",
                           "9").stdout)
    assert after["events"] == whole["events"][10:]
