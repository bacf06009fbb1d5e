"""The CLI against the live server equals the seed's filter loops over every event of a run."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

import runlens.cli as cli
from runlens.cli import main
from tests.seed_reference import _filter_events_by_step, seed_filter

from .raw_graphql import all_events

RAW_QUERY = """
query($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 1000) {
    ... on EventConnection {
      events { ... on MessageEvent { runId message timestamp level stepKey eventType } }
      cursor hasMore
    }
  }
}
"""


def iso_ms(millis: str) -> str:
    return datetime.fromtimestamp(int(millis) / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def raw(demo):
    return {name: all_events(demo.url, run_id, RAW_QUERY) for name, run_id in demo.runs.items()}


@pytest.mark.parametrize(
    "name, types, step, limit",
    [
        ("etl", None, None, 100),
        ("etl", None, None, 100000),
        ("etl", "STEP_START,STEP_SUCCESS", None, 100),
        ("etl", " step_start , Step_Success ,", None, 100),
        ("etl", None, "CLEAN_", 100),
        ("etl", None, "process_region[", 1000),
        ("etl", "STEP_OUTPUT,HANDLED_OUTPUT", "region", 3),
        ("etl", "RUN_SUCCESS", None, 1),
        ("etl", "ENGINE_EVENT", None, 1),
        ("etl", "STEP_UP_FOR_RETRY,STEP_RESTARTED", "orders", 100),
        ("failing", "STEP_FAILURE,RUN_FAILURE", None, 100),
        ("failing", None, "invoices", 2),
    ],
)
def test_cli_equals_the_seed_loops(demo, raw, name, types, step, limit):
    run_id = demo.runs[name]
    expected = seed_filter(raw[name], types, step)[:limit]
    args = ["run-events", "get", run_id, "--json", "--limit", str(limit), "--url", demo.base_url]
    if types:
        args += ["--type", types]
    if step:
        args += ["--step", step]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["count"] == len(expected) and doc["run_id"] == run_id
    assert doc["events"] == [{**e, "timestamp": iso_ms(e["timestamp"])} for e in expected]


def test_table_shows_log_lines_and_every_row(demo, raw):
    run_id = demo.runs["etl"]
    result = CliRunner().invoke(main, ["run-events", "get", run_id, "--step", "join_sales", "--url", demo.base_url])
    assert result.exit_code == 0
    expected = _filter_events_by_step(raw["etl"], "join_sales")
    assert f"Total events: {len(expected)}" in result.stdout
    assert any(e["eventType"] is None for e in expected)
    for event in expected:
        first_line = event["message"].replace("\\", "\\\\").split("\n")[0]
        assert first_line[:30] in result.stdout


def test_run_get_live(demo):
    result = CliRunner().invoke(main, ["run", "get", demo.runs["failing"], "--json", "--url", demo.base_url])
    doc = json.loads(result.stdout)
    assert doc["status"] == "FAILURE" and doc["pipeline_name"] == "failing_job" and doc["mode"] == "default"
    text = CliRunner().invoke(main, ["run", "get", demo.runs["failing"], "--url", demo.base_url]).stdout
    assert "Job: failing_job" in text and "Pipeline:" not in text and "Mode:" not in text
    assert doc["created_at"] in text and doc["created_at"].endswith("Z")


def test_repeated_steps_and_types_equal_the_seed_loops_ored(demo, raw):
    # --step A --step B: an event matches if its key contains A or B (the seed's test, per value).
    run_id = demo.runs["etl"]
    types, steps = ["STEP_START", "step_success"], ["clean_", " JOIN_SALES "]
    args = ["run-events", "get", run_id, "--json", "--limit", "100000", "--url", demo.base_url]
    for t in types:
        args += ["--type", t]
    for st in steps:
        args += ["--step", st]
    doc = json.loads(CliRunner().invoke(main, args).stdout)
    wanted = {id(e) for st in steps for e in seed_filter(raw["etl"], ",".join(types), st.strip())}
    expected = [e for e in raw["etl"] if id(e) in wanted]
    assert len(expected) > 2 and doc["events"] == [{**e, "timestamp": iso_ms(e["timestamp"])} for e in expected]
    assert doc["has_more"] is False


def test_has_more_says_whether_the_limit_cut_the_result(demo, raw):
    run_id = demo.runs["etl"]
    base = ["run-events", "get", run_id, "--url", demo.base_url]
    doc = json.loads(CliRunner().invoke(main, [*base, "--limit", "5", "--json"]).stdout)
    assert doc["has_more"] is True and doc["count"] == 5 and len(raw["etl"]) > 5
    text = CliRunner().invoke(main, [*base, "--limit", "5"])
    assert text.stderr.strip() == "Showing 5 events; more match — raise --limit"
    last = json.loads(CliRunner().invoke(main, [*base, "--type", "RUN_SUCCESS", "--limit", "1", "--json"]).stdout)
    assert last["count"] == 1 and last["has_more"] is False


def test_a_narrow_terminal_gets_no_overflowing_line(demo, monkeypatch):
    monkeypatch.setattr(cli, "_terminal_width", lambda: 60)
    for name in ("etl", "failing"):
        out = CliRunner().invoke(main, ["run-events", "get", demo.runs[name], "--limit", "1000",
                                        "--url", demo.base_url]).stdout
        assert all(len(line) <= 60 for line in out.splitlines()), out
    out = CliRunner().invoke(main, ["run", "list", "--url", demo.base_url]).stdout
    assert all(len(line) <= 60 for line in out.splitlines()), out


def test_json_usage_error_live(demo):
    result = CliRunner().invoke(main, ["run-events", "get", demo.runs["etl"], "--limit", "0", "--json",
                                       "--url", demo.base_url])
    assert result.exit_code == 2 and json.loads(result.stderr)["code"] == "USAGE_ERROR"


@pytest.mark.parametrize("args, code", [(["run", "get", "nope"], 3), (["run-events", "get", "nope"], 3),
                                        (["run-events", "get", "x", "--limit", "0"], 2)])
def test_exit_codes_live(demo, args, code):
    assert CliRunner().invoke(main, [*args, "--url", demo.base_url]).exit_code == code
