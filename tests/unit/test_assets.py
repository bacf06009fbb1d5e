"""Asset keys and asset events: metadata flattening, cursor paging, bounds, unknown keys.

The server is :class:`tests.unit.fake_dagster.FakeAssets` (``assetEventHistory`` as
Dagster 1.13 serves it); the live tests compare against the real demo Dagster.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest

import runlens
from runlens.assets import asset_key_path, flatten_metadata
from tests.unit.fake_dagster import FakeAssets, asset_event, int_entry

DAILY_DEF = {"groupName": "g", "isPartitioned": True}


def client_of(fake: FakeAssets, **options) -> runlens.Client:
    return runlens.Client(transport=fake.transport(**options))


def many(n: int, **kwargs) -> list[dict]:
    return [asset_event(i, partition=f"p{i % 5}", metadata=[int_entry("row_count", 100 + i)], **kwargs)
            for i in range(n)]


# ------------------------------------------------------------------ metadata types


def entry(typename: str, label: str, **fields) -> dict:
    return {"__typename": typename, "label": label, **fields}


def test_each_metadata_type_gets_its_dtype():
    events = [[
        entry("IntMetadataEntry", "rows", intRepr="12"),
        entry("IntMetadataEntry", "big", intRepr=str(2**40)),  # intValue would be null (32-bit GraphQL Int)
        entry("FloatMetadataEntry", "secs", floatRepr="1.5"),
        entry("FloatMetadataEntry", "ratio", floatRepr="nan"),
        entry("BoolMetadataEntry", "ok", boolValue=True),
        entry("TextMetadataEntry", "t", text="hello"),
        entry("MarkdownMetadataEntry", "md", mdStr="**x**"),
        entry("PathMetadataEntry", "path", path="/data/x.parquet"),
        entry("UrlMetadataEntry", "url", url="https://example.com"),
        entry("JsonMetadataEntry", "schema", jsonString='{"columns": ["a"], "version": 2}'),
        entry("TimestampMetadataEntry", "at", timestamp=1795000000.25),
        entry("AssetMetadataEntry", "upstream", assetKey={"path": ["a", "b"]}),
        entry("TableMetadataEntry", "sample", table={"records": ['{"a": 1}', '{"a": 2}']}),
    ], [
        entry("IntMetadataEntry", "rows", intRepr="13"),
        entry("FloatMetadataEntry", "secs", floatRepr="inf"),
    ]]
    meta, notes, kinds = flatten_metadata(events)
    assert notes == {}
    dtypes = {c: str(t) for c, t in meta.dtypes.items()}
    assert dtypes["meta.rows"] == "Int64" and meta["meta.rows"].tolist() == [12, 13]
    assert dtypes["meta.big"] == "Int64" and meta["meta.big"][0] == 2**40 and pd.isna(meta["meta.big"][1])
    assert dtypes["meta.secs"] == "Float64" and meta["meta.secs"][0] == 1.5 and math.isinf(meta["meta.secs"][1])
    assert pd.isna(meta["meta.ratio"][0])  # nan reads as missing in a Float64 column
    assert dtypes["meta.ok"] == "boolean"
    for name in ("meta.t", "meta.md", "meta.path", "meta.url", "meta.upstream"):
        assert dtypes[name] == "string", name
    assert meta["meta.upstream"][0] == "a/b"
    assert dtypes["meta.schema"] == "object" and meta["meta.schema"][0] == {"columns": ["a"], "version": 2}
    assert meta["meta.sample"][0] == [{"a": 1}, {"a": 2}]
    assert dtypes["meta.at"] == "datetime64[us, UTC]"
    assert meta["meta.at"][0] == pd.Timestamp(1795000000.25, unit="s", tz="UTC")
    assert kinds["meta.rows"] == "int" and kinds["meta.schema"] == "json"


def test_a_label_of_mixed_types_becomes_text_with_a_note():
    events = [[entry("IntMetadataEntry", "rows", intRepr="3")],
              [entry("TextMetadataEntry", "rows", text="unknown")],
              [entry("JsonMetadataEntry", "rows", jsonString='{"n": 4}')],
              []]
    meta, notes, kinds = flatten_metadata(events)
    assert str(meta["meta.rows"].dtype) == "string"
    assert meta["meta.rows"].tolist()[:3] == ["3", "unknown", '{"n": 4}'] and pd.isna(meta["meta.rows"][3])
    assert notes["meta.rows"] == "int in 1 event, text in 1 event, json in 1 event: kept as text"
    assert kinds["meta.rows"] == "text"


def test_ints_and_floats_of_one_label_are_floats_with_a_note():
    meta, notes, _ = flatten_metadata([[int_entry("n", 2)], [entry("FloatMetadataEntry", "n", floatRepr="2.5")]])
    assert str(meta["meta.n"].dtype) == "Float64" and meta["meta.n"].tolist() == [2.0, 2.5]
    assert "kept as float" in notes["meta.n"]


def test_an_unknown_entry_type_is_kept_as_text_with_a_note():
    meta, notes, _ = flatten_metadata([[{"__typename": "BrandNewMetadataEntry", "label": "x", "blob": 1}]])
    assert meta["meta.x"].tolist() == ['{"blob": 1}'] and "BrandNewMetadataEntry" in notes["meta.x"]


def test_asset_events_frame_carries_the_notes_and_keeps_rows_aligned():
    fake = FakeAssets([asset_event(1, metadata=[int_entry("rows", 5)]),
                       asset_event(2, metadata=[entry("TextMetadataEntry", "rows", text="n/a")]),
                       asset_event(3)], {"daily": DAILY_DEF})
    frame = client_of(fake).asset_events("daily")
    assert frame["meta.rows"].tolist()[:2] == ["5", "n/a"] and pd.isna(frame["meta.rows"][2])
    assert "kept as text" in frame.attrs["metadata_notes"]["meta.rows"]


# ---------------------------------------------------------------------- paging


def test_every_event_arrives_once_oldest_first_over_pages():
    fake = FakeAssets(many(2345), {"daily": DAILY_DEF})
    frame = client_of(fake).asset_events("daily")
    assert len(frame) == 2345 and frame["meta.row_count"].tolist() == [100 + i for i in range(2345)]
    assert frame["timestamp"].is_monotonic_increasing and str(frame["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert len(fake.requests) == 3  # 1000 + 1000 + 345: the short page ends the history
    assert frame.attrs["complete"] and not frame.attrs["has_more"] and frame.attrs["partitioned"] is True
    assert set(frame["status"]) == {"MATERIALIZED"} and frame["asset_key"].eq("daily").all()


def test_limit_keeps_the_newest_and_the_cursor_resumes_exactly():
    fake = FakeAssets(many(30), {"daily": DAILY_DEF})
    client = client_of(fake)
    newest = client.asset_events("daily", limit=7)
    assert newest["meta.row_count"].tolist() == [100 + i for i in range(23, 30)]
    assert newest.attrs["has_more"] and not newest.attrs["complete"]
    rest = client.asset_events("daily", cursor=newest.attrs["cursor"])
    assert rest["meta.row_count"].tolist() == [100 + i for i in range(23)]
    assert rest.attrs["complete"]


@pytest.mark.parametrize("page_size, limit", [(4, 10), (5, 10), (1000, 3), (3, 1)])
def test_chunks_of_any_size_reassemble_the_history(page_size, limit, monkeypatch):
    monkeypatch.setattr("runlens.assets.PAGE_SIZE", page_size)
    fake = FakeAssets(many(23), {"daily": DAILY_DEF})
    client = client_of(fake)
    seen: list[int] = []
    cursor = None
    while True:
        chunk = client.asset_events("daily", limit=limit, cursor=cursor)
        seen = chunk["meta.row_count"].tolist() + seen
        cursor = chunk.attrs["cursor"]
        if not chunk.attrs["has_more"]:
            break
    assert seen == [100 + i for i in range(23)]


def test_limit_equal_to_the_history_says_nothing_more():
    frame = client_of(FakeAssets(many(5), {"daily": DAILY_DEF})).asset_events("daily", limit=5)
    assert len(frame) == 5 and not frame.attrs["has_more"]


def test_failed_materializations_are_rows_and_observations_apart():
    events = [asset_event(1, partition="a"), asset_event(2, typename="FailedToMaterializeEvent", partition="b"),
              asset_event(3, typename="ObservationEvent", metadata=[int_entry("lag", 4)])]
    client = client_of(FakeAssets(events, {"daily": DAILY_DEF}))
    mats = client.asset_events("daily")
    assert mats["status"].astype(str).tolist() == ["MATERIALIZED", "FAILED"]
    assert mats["failure_reason"].tolist()[1] == "FAILED_TO_MATERIALIZE" and pd.isna(mats["failure_reason"][0])
    obs = client.asset_events("daily", kind="observation")
    assert obs["status"].astype(str).tolist() == ["OBSERVED"] and obs["meta.lag"].tolist() == [4]
    assert len(client.asset_events("daily", kind="all")) == 3


def test_partitions_are_sent_to_the_server():
    fake = FakeAssets(many(20), {"daily": DAILY_DEF})
    frame = client_of(fake).asset_events("daily", partitions=["p1", " p3 ", "p1"])
    assert fake.requests[0]["variables"]["partitions"] == ["p1", "p3"]
    assert set(frame["partition"]) == {"p1", "p3"} and len(frame) == 8


def test_since_and_before_are_exact_at_the_millisecond():
    base = 1_795_000_000_000
    fake = FakeAssets([asset_event(i, millis=base + i) for i in range(10)], {"daily": DAILY_DEF})
    since = datetime.fromtimestamp((base + 3) / 1000, tz=UTC)
    before = datetime.fromtimestamp((base + 7) / 1000, tz=UTC)
    frame = client_of(fake).asset_events("daily", since=since, before=before)
    assert [t.value // 1_000_000 - base for t in frame["timestamp"]] == [3, 4, 5, 6]
    assert client_of(fake).asset_events("daily", since="2026-01-01", before="2030-01-01").shape[0] == 10


def test_since_takes_the_timespec_forms():
    fake = FakeAssets([asset_event(1, millis=int(datetime.now(UTC).timestamp() * 1000) - 3_600_000),
                       asset_event(2, millis=int(datetime.now(UTC).timestamp() * 1000) - 60_000)],
                      {"daily": DAILY_DEF})
    assert len(client_of(fake).asset_events("daily", since="30m")) == 1
    with pytest.raises(runlens.InvalidArgument, match="since must be"):
        client_of(fake).asset_events("daily", since="yesterday")


# ------------------------------------------------------------- unknown and errors


def test_an_unknown_key_is_asset_not_found_though_dagster_answers_an_asset():
    fake = FakeAssets(many(3), {"daily": DAILY_DEF})
    with pytest.raises(runlens.AssetNotFound) as info:
        client_of(fake).asset_events("no/such")
    assert info.value.asset_key == "no/such" and info.value.exit_code == 3
    assert "not found" in str(info.value)


def test_an_asset_known_only_from_its_history_is_found():
    fake = FakeAssets(many(3, asset="old/table"))
    frame = client_of(fake).asset_events(["old", "table"])
    assert len(frame) == 3 and frame.attrs["partitioned"] is None


def test_a_defined_asset_never_materialized_has_an_empty_typed_frame():
    frame = client_of(FakeAssets([], {"fresh": DAILY_DEF})).asset_events("fresh")
    assert frame.empty and str(frame["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert list(frame.columns)[:4] == ["timestamp", "asset_key", "partition", "status"]


def test_a_failure_midway_says_how_far_it_got_and_resuming_completes(monkeypatch):
    monkeypatch.setattr("runlens.assets.PAGE_SIZE", 10)
    fake = FakeAssets(many(25), {"daily": DAILY_DEF})
    fake.fail_after = 2
    with pytest.raises(runlens.TransportError) as info:
        client_of(fake).asset_events("daily")
    err = info.value
    assert err.events_fetched == 20 and err.cursor
    assert f"cursor={err.cursor!r}" in str(err) and "asset_events('daily'" in str(err)
    assert err.partial["meta.row_count"].tolist() == [100 + i for i in range(5, 25)]
    fake.fail_after = None
    rest = client_of(fake).asset_events("daily", cursor=err.cursor)
    assert rest["meta.row_count"].tolist() == [100 + i for i in range(5)]
    assert pd.concat([rest, err.partial])["meta.row_count"].tolist() == [100 + i for i in range(25)]


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "materialisation"}, "kind must be"),
    ({"limit": 0}, "limit must be"),
    ({"partitions": [" "]}, "names no partition"),
    ({"partitions": 3}, "partitions must be"),
    ({"cursor": " "}, "cursor must be"),
    ({"since": "2026-11-02", "before": "2026-11-01"}, "must be before"),
])
def test_bad_arguments_fail_before_any_request(kwargs, match):
    fake = FakeAssets(many(3), {"daily": DAILY_DEF})
    with pytest.raises(runlens.InvalidArgument, match=match):
        client_of(fake).asset_events("daily", **kwargs)
    assert fake.requests == []


@pytest.mark.parametrize("key", ["", " / ", "a//b", 3, ["a", ""]])
def test_bad_keys_are_invalid_arguments(key):
    with pytest.raises(runlens.InvalidArgument):
        asset_key_path(key)


def test_key_forms():
    assert asset_key_path("a/b") == asset_key_path(["a", "b"]) == asset_key_path("/a/b/") == ["a", "b"]


# ------------------------------------------------------------------- asset list


def test_assets_lists_defined_and_history_only_keys_over_pages(monkeypatch):
    monkeypatch.setattr("runlens.assets.ASSETS_PAGE_SIZE", 2)
    events = many(3) + many(2, asset="warehouse/sales") + many(1, asset="warehouse/costs")
    fake = FakeAssets(events, {"daily": DAILY_DEF, "never": {"groupName": "h", "isPartitioned": False}})
    frame = client_of(fake).assets()
    assert frame["key"].tolist() == ["daily", "never", "warehouse/costs", "warehouse/sales"]
    assert frame["group"].tolist()[:2] == ["g", "h"] and pd.isna(frame["group"][2])
    assert frame["defined"].tolist() == [True, True, False, False]
    assert str(frame["last_materialization"].dtype) == "datetime64[ms, UTC]" and pd.isna(frame["last_materialization"][1])
    assert frame["last_materialization"][0] == pd.Timestamp(int(events[2]["timestamp"]), unit="ms", tz="UTC")
    assert len(fake.requests) == 3
    warehouse = client_of(fake).assets(prefix="warehouse")
    assert warehouse["key"].tolist() == ["warehouse/costs", "warehouse/sales"]
    assert fake.requests[-1]["variables"]["prefix"] == ["warehouse"]
