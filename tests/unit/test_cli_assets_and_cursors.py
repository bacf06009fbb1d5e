"""The CLI's asset commands and the newest ``dg api`` run options: ``--cursor``, ``--after-seq``,
repeatable ``--status``, ``--tag``, ``--since``/``--until``.

Over fake servers (``FakeAssets``, ``FakeDagster``, ``FakeDeployment``); the same
commands run against the live demo in tests/live/test_assets_live.py and from cassettes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import responses
from click.testing import CliRunner

import runlens
import runlens.cli as cli
from runlens.cli import main
from tests.builders import T0, make_events

from .fake_dagster import BASE_URL as URL
from .fake_dagster import FakeAssets, FakeDagster, asset_event, int_entry
from .history_fake import FakeDeployment

DEFS = {"daily": {"groupName": "g", "isPartitioned": True}}


def run_cli(*args):
    return CliRunner().invoke(main, [*args, "--url", URL])


def chunks(*args) -> list[dict]:
    """The JSON documents of a command run again with each answer's ``--cursor`` until ``has_more`` is false."""
    docs, cursor = [], None
    while True:
        docs.append(json.loads(run_cli(*args, "--json", *(["--cursor", cursor] if cursor else [])).stdout))
        cursor = docs[-1]["cursor"]
        if not docs[-1]["has_more"]:
            return docs


@pytest.fixture
def assets(monkeypatch):
    """A FakeAssets behind the CLI: 12 materializations of ``daily`` over 4 partitions, one failed."""
    events = [asset_event(i, partition=f"2026-11-0{1 + i % 4}", metadata=[int_entry("row_count", 100 + i)])
              for i in range(11)]
    events.append(asset_event(11, typename="FailedToMaterializeEvent", partition="2026-11-01"))
    events += [asset_event(20, asset="warehouse/sales", metadata=[
        {"__typename": "FloatMetadataEntry", "label": "total", "floatRepr": "186.5"},
        {"__typename": "JsonMetadataEntry", "label": "schema", "jsonString": '{"v": 2}'}])]
    fake = FakeAssets(events, DEFS)
    monkeypatch.setattr(cli, "_client", lambda url: runlens.Client(transport=fake.transport()))
    monkeypatch.setattr(cli, "_terminal_width", lambda: None)
    return fake


# ------------------------------------------------------------------------ asset list


def test_asset_list_table_and_json(assets):
    result = run_cli("asset", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KEY", "GROUP", "PARTITIONED", "LAST_MATERIALIZATION"]
    assert lines[1].split()[:3] == ["daily", "g", "yes"] and lines[2].split()[:3] == ["warehouse/sales", "—", "—"]
    doc = json.loads(run_cli("asset", "list", "--json").stdout)
    assert doc["count"] == 2 and doc["assets"][0]["key"] == "daily" and doc["assets"][0]["partitioned"] is True
    assert doc["assets"][1]["defined"] is False and doc["assets"][1]["last_materialization"].endswith("Z")
    assert [a["key"] for a in json.loads(run_cli("asset", "list", "--prefix", "warehouse", "--json").stdout)
            ["assets"]] == ["warehouse/sales"]


# ---------------------------------------------------------------------- asset events


def test_asset_events_json_is_typed_and_oldest_first(assets):
    doc = json.loads(run_cli("asset", "events", "daily", "--json").stdout)
    assert doc["asset_key"] == "daily" and doc["count"] == 12 and doc["has_more"] is False
    assert [e["metadata"].get("row_count") for e in doc["events"][:3]] == [100, 101, 102]  # ints, not text
    assert doc["events"][-1]["status"] == "FAILED" and doc["events"][-1]["metadata"] == {}
    assert doc["events"][0]["timestamp"].endswith("Z") and doc["events"][0]["partition"] == "2026-11-01"
    other = json.loads(run_cli("asset", "events", "warehouse/sales", "--json").stdout)
    assert other["events"][0]["metadata"] == {"total": 186.5, "schema": {"v": 2}}


def test_asset_events_table_and_the_limit_note(assets):
    result = run_cli("asset", "events", "daily", "--limit", "3")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TIMESTAMP", "PARTITION", "STATUS", "RUN_ID", "METADATA"]
    assert "row_count=109" in lines[1] and "row_count=110" in lines[2] and "FAILED" in lines[3] and lines[-1] == "Total events: 3"
    assert "more match" in result.stderr and "--cursor" in result.stderr


def test_asset_events_pages_by_cursor_without_loss(assets):
    # Each chunk goes further back in time; each is oldest first.
    seen = [e for doc in reversed(chunks("asset", "events", "daily", "--limit", "5")) for e in doc["events"]]
    whole = json.loads(run_cli("asset", "events", "daily", "--json").stdout)["events"]
    assert seen == whole and len(seen) == 12


def test_partitions_repeated_or_comma_separated(assets):
    a = json.loads(run_cli("asset", "events", "daily", "--partition", "2026-11-02", "--partition", "2026-11-03",
                           "--json").stdout)
    b = json.loads(run_cli("asset", "events", "daily", "--partition", "2026-11-02,2026-11-03", "--json").stdout)
    assert a == b and {e["partition"] for e in a["events"]} == {"2026-11-02", "2026-11-03"} and a["count"] == 6


def test_since_and_until_bound_the_events(assets):
    millis = [int(e["timestamp"]) for e in assets.events if e["asset"] == "daily"]
    since = datetime.fromtimestamp(sorted(millis)[4] / 1000, tz=UTC).isoformat()
    until = datetime.fromtimestamp(sorted(millis)[8] / 1000, tz=UTC).isoformat()
    doc = json.loads(run_cli("asset", "events", "daily", "--since", since, "--until", until, "--json").stdout)
    assert doc["count"] == 4


@pytest.mark.parametrize("as_json", [False, True])
def test_unknown_asset_exits_3_with_the_key(assets, as_json):
    result = run_cli("asset", "events", "no/such", *(["--json"] if as_json else []))
    assert result.exit_code == 3 and result.stdout == ""
    if as_json:
        error = json.loads(result.stderr)
        assert error["code"] == "ASSET_NOT_FOUND" and error["asset_key"] == "no/such"
        assert "not found" in error["error"]
    else:
        assert result.stderr.startswith("Error: asset 'no/such' not found") and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [
    ["asset", "events", "daily", "--limit", "0"],
    ["asset", "events", "a//b"],
    ["asset", "events", "daily", "--partition", " , "],
    ["asset", "events", "daily", "--since", "yesterday"],
    ["asset", "events", "daily", "--kind", "materialisation"],
])
def test_usage_errors_exit_2_as_json_with_the_key(assets, args):
    result = run_cli(*args, "--json")
    assert result.exit_code == 2, result.output
    error = json.loads(result.stderr)
    assert error["asset_key"] == args[2] and error["code"] in ("USAGE_ERROR", "INVALID_ARGUMENT")
    assert assets.requests == []


# ------------------------------------------------------------- run-events get cursor


@responses.activate
def test_run_events_cursor_pages_a_run_in_chunks():
    fake = FakeDagster(make_events(50))
    responses.add_callback(responses.POST, URL + "/graphql", callback=fake)
    whole = json.loads(run_cli("run-events", "get", "run-1", "--json", "--limit", "1000").stdout)
    assert whole["count"] == 50 and whole["has_more"] is False and whole["cursor"]
    docs = chunks("run-events", "get", "run-1", "--limit", "7")
    assert len(docs) == 8 and [e for doc in docs for e in doc["events"]] == whole["events"]


@responses.activate
def test_run_events_cursor_with_a_filter_loses_no_match():
    # dg api's --cursor paging of a filtered result lost matches (dg-cli-anchor bug 4).
    fake = FakeDagster(make_events(400))
    responses.add_callback(responses.POST, URL + "/graphql", callback=fake)
    whole = json.loads(run_cli("run-events", "get", "run-1", "--json", "--limit", "1000", "--type",
                               "STEP_START").stdout)
    assert whole["count"] > 10
    docs = chunks("run-events", "get", "run-1", "--limit", "3", "--type", "STEP_START")
    assert [e for doc in docs for e in doc["events"]] == whole["events"]


@responses.activate
def test_after_seq_starts_after_that_event():
    fake = FakeDagster(make_events(30))
    responses.add_callback(responses.POST, URL + "/graphql", callback=fake)
    whole = json.loads(run_cli("run-events", "get", "run-1", "--json").stdout)["events"]
    doc = json.loads(run_cli("run-events", "get", "run-1", "--json", "--after-seq", "9").stdout)
    assert doc["events"] == whole[10:]
    assert json.loads(run_cli("run-events", "get", "run-1", "--json", "--after-seq", "29").stdout)["count"] == 0


def test_cursor_and_after_seq_together_are_a_usage_error():
    result = run_cli("run-events", "get", "run-1", "--cursor", "abc", "--after-seq", "3", "--json")
    assert result.exit_code == 2 and json.loads(result.stderr)["code"] == "USAGE_ERROR"


# ------------------------------------------------------------------------- run list


@pytest.fixture
def deployment(monkeypatch):
    fake = FakeDeployment()
    for i, (status, tags) in enumerate([("SUCCESS", {"team": "data"}), ("FAILURE", {"team": "data"}),
                                        ("CANCELED", {"team": "ml"}), ("FAILURE", {}), ("SUCCESS", {"team": "ml"})]):
        fake.add(f"run-{i}", [], status=status, created=T0 / 1000 + i * 3600, tags=tags)
    monkeypatch.setattr(cli, "_client", lambda url: fake.client())
    monkeypatch.setattr(cli, "_terminal_width", lambda: None)
    return fake


def ids(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [r["id"] for r in json.loads(result.stdout)["runs"]]


def test_run_list_status_repeated_or_comma_separated(deployment):
    assert ids(run_cli("run", "list", "--status", "FAILURE", "--status", "canceled", "--json")) == \
        ids(run_cli("run", "list", "--status", "FAILURE,CANCELED", "--json")) == ["run-3", "run-2", "run-1"]


def test_run_list_tags_all_apply(deployment):
    assert ids(run_cli("run", "list", "--tag", "team=data", "--json")) == ["run-1", "run-0"]
    assert ids(run_cli("run", "list", "--tag", "team=data", "--status", "SUCCESS", "--json")) == ["run-0"]
    sent = deployment.requests[-1]["variables"]["filter"]
    assert sent["tags"] == [{"key": "team", "value": "data"}] and sent["statuses"] == ["SUCCESS"]


def test_run_list_since_and_until_bound_the_creation_time(deployment):
    since = datetime.fromtimestamp(T0 / 1000 + 3600 - 1, tz=UTC).isoformat()
    until = datetime.fromtimestamp(T0 / 1000 + 3 * 3600 + 1, tz=UTC).isoformat()
    assert ids(run_cli("run", "list", "--since", since, "--until", until, "--json")) == ["run-3", "run-2", "run-1"]
    sent = deployment.requests[-1]["variables"]["filter"]
    assert sent["createdAfter"] == T0 / 1000 + 3600 - 1


def test_run_list_cursor_pages_through_every_run(deployment):
    first = json.loads(run_cli("run", "list", "--limit", "2", "--json").stdout)
    assert first["has_more"] is True and first["cursor"] == "run-3"
    second = json.loads(run_cli("run", "list", "--limit", "2", "--cursor", first["cursor"], "--json").stdout)
    third = json.loads(run_cli("run", "list", "--limit", "2", "--cursor", second["cursor"], "--json").stdout)
    assert [r["id"] for d in (first, second, third) for r in d["runs"]] == [f"run-{i}" for i in range(4, -1, -1)]
    assert third["has_more"] is False


def test_run_list_text_says_how_to_continue(deployment):
    result = run_cli("run", "list", "--limit", "2")
    assert result.stderr.strip() == "More runs match: continue with --cursor run-3"


@pytest.mark.parametrize("args, match", [
    (["--tag", "team"], "KEY=VALUE"),
    (["--tag", "=x"], "KEY=VALUE"),
    (["--since", "last week"], "--since must be"),
    (["--status", "DONE"], "unknown run status"),
])
def test_run_list_bad_options_exit_2(deployment, args, match):
    result = run_cli("run", "list", *args, "--json")
    assert result.exit_code == 2 and match in json.loads(result.stderr)["error"]
    assert deployment.requests == []
