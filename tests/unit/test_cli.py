"""The CLI over a fake server: output shapes, exit codes, and Dagster's own CLI bugs.

Each ``test_anchor_bug_*`` reproduces one bug listed in shared/docs/dg-cli-anchor.md
and shows runlens does not have it. The same commands run against the live demo
server in tests/live/test_cli_live.py.
"""

from __future__ import annotations

import json

import pytest
import requests
import responses
from click.testing import CliRunner

from runlens.cli import main

from .fake_dagster import FakeDagster, make_events

URL = "http://dagster.test:3000"


def invoke(*args):
    return CliRunner().invoke(main, [*args, "--url", URL])


def serve(events: list[dict]) -> FakeDagster:
    fake = FakeDagster(events)
    responses.add_callback(responses.POST, URL + "/graphql", callback=fake)
    return fake


def log_line(i, message="hello", step="extract", level="INFO"):
    return {"__typename": "LogMessageEvent", "message": message, "timestamp": str(1795667190000 + i),
            "level": level, "stepKey": step, "eventType": None}


def event(i, event_type, step=None, message="m", level="DEBUG"):
    return {"__typename": "X", "message": message, "timestamp": str(1795667190000 + i), "level": level,
            "stepKey": step, "eventType": event_type}


@responses.activate
def test_run_get_prints_the_seed_lines_in_iso_utc():
    serve([])
    result = invoke("run", "get", "run-1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Run ID: run-1" and lines[1] == "Status: SUCCESS"
    assert "Created: 2026-11-26T04:26:30.500Z" in lines
    assert "Started: 2026-11-26T04:26:31.250Z" in lines
    assert "Pipeline: j" in lines and "Mode: default" in lines


@responses.activate
def test_run_get_json_has_the_seed_keys():
    serve([])
    doc = json.loads(invoke("run", "get", "run-1", "--json").output)
    for key in ("id", "status", "created_at", "started_at", "ended_at", "pipeline_name", "mode"):
        assert key in doc
    assert doc["ended_at"] == "2026-11-26T04:26:40.000Z" and doc["tags"] == {"team": "data"}


@responses.activate
def test_anchor_bug_1_table_renders_log_lines_with_null_type():
    serve([log_line(0, "a user log line"), event(1, "STEP_START", "extract")])
    result = invoke("run-events", "get", "run-1")
    assert result.exit_code == 0
    assert "a user log line" in result.output and "Total events: 2" in result.output


@pytest.mark.parametrize(
    "args, code",
    [
        (("run", "get", "missing"), 3),
        (("run-events", "get", "missing"), 3),
        (("run-events", "get", "missing", "--json"), 3),
    ],
)
@responses.activate
def test_anchor_bug_2_errors_exit_non_zero(args, code):
    serve([])
    result = invoke(*args)
    assert result.exit_code == code
    assert "not found" in result.output  # CliRunner mixes stderr into output


@responses.activate
def test_json_error_goes_to_stderr_as_json():
    serve([])
    result = CliRunner().invoke(main, ["run-events", "get", "missing", "--json", "--url", URL])
    doc = json.loads(result.stderr)
    assert doc["code"] == "RUN_NOT_FOUND" and doc["run_id"] == "missing" and result.stdout == ""


@responses.activate
def test_connection_refused_exits_5():
    responses.post(URL + "/graphql", body=requests.exceptions.ConnectionError("Connection refused"))
    result = CliRunner().invoke(main, ["run", "get", "r", "--url", URL])
    assert result.exit_code == 5 and "cannot reach" in result.stderr and "Traceback" not in result.output


@responses.activate
def test_anchor_bug_3_rare_event_with_limit_1_is_found_after_many_pages():
    events = make_events(3500) + [event(3500, "RUN_SUCCESS", message="Finished")]
    fake = serve(events)
    doc = json.loads(invoke("run-events", "get", "run-1", "--type", "RUN_SUCCESS", "--limit", "1", "--json").output)
    assert doc["count"] == 1 and doc["events"][0]["eventType"] == "RUN_SUCCESS"
    assert len(fake.requests) == 4  # pages of 1000, not pages of --limit


@responses.activate
def test_spaced_comma_tokens_all_count():
    serve([event(0, "STEP_START", "a"), event(1, "STEP_SUCCESS", "a"), event(2, "STEP_OUTPUT", "a")])
    doc = json.loads(invoke("run-events", "get", "run-1", "--type", "step_start, Step_Success", "--json").output)
    assert [e["eventType"] for e in doc["events"]] == ["STEP_START", "STEP_SUCCESS"]


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_anchor_bug_5_limit_below_one_is_a_usage_error(limit):
    result = invoke("run-events", "get", "run-1", "--limit", limit)
    assert result.exit_code == 2 and "--limit" in result.output


@responses.activate
def test_huge_limit_returns_everything():
    serve(make_events(1200))
    doc = json.loads(invoke("run-events", "get", "run-1", "--limit", "1000000000", "--json").output)
    assert doc["count"] == 1200


@responses.activate
def test_anchor_bug_6_unknown_type_warns_with_a_suggestion():
    serve([event(0, "STEP_SUCCESS", "a")])
    result = CliRunner().invoke(main, ["run-events", "get", "run-1", "--type", "STEP_SUCESS", "--json", "--url", URL])
    assert result.exit_code == 0
    assert "STEP_SUCESS" in result.stderr and "STEP_SUCCESS" in result.stderr
    assert json.loads(result.stdout)["count"] == 0  # stdout stays parseable JSON


def test_type_with_no_name_is_a_usage_error():
    result = invoke("run-events", "get", "run-1", "--type", " , ,")
    assert result.exit_code == 2


@responses.activate
def test_anchor_bug_7_pipeline_and_run_names_are_one_event():
    serve([event(0, "RUN_SUCCESS"), event(1, "PIPELINE_SUCCESS")])
    for name in ("RUN_SUCCESS", "PIPELINE_SUCCESS"):
        doc = json.loads(invoke("run-events", "get", "run-1", "--type", name, "--json").output)
        assert doc["count"] == 2


@responses.activate
def test_anchor_bug_8_table_and_json_times_are_iso_utc():
    serve([event(783, "STEP_START", "a")])
    table = invoke("run-events", "get", "run-1").output
    assert "2026-11-26T04:26:30 " in table and "1795667190783" not in table
    doc = json.loads(invoke("run-events", "get", "run-1", "--json").output)
    assert doc["events"][0]["timestamp"] == "2026-11-26T04:26:30.783Z"


@responses.activate
def test_anchor_bug_9_json_shape_is_exactly_the_seeds():
    serve([log_line(0)])
    doc = json.loads(invoke("run-events", "get", "run-1", "--json").output)
    assert set(doc) == {"run_id", "events", "count"}
    assert set(doc["events"][0]) == {"runId", "message", "timestamp", "level", "stepKey", "eventType"}
    assert doc["events"][0]["eventType"] is None


@responses.activate
def test_anchor_bug_10_table_shows_the_error_and_its_cause_chain():
    failure = event(0, "STEP_FAILURE", "load", 'Execution of step "load" failed.', level="ERROR")
    failure["error"] = {"message": "bad row\n", "className": "ValueError", "stack": ["x"],
                        "cause": {"message": "'id'", "className": "KeyError", "stack": []}}
    serve([failure])
    out = invoke("run-events", "get", "run-1").output
    assert "[load] ValueError: bad row" in out and "caused by KeyError: 'id'" in out


@responses.activate
def test_anchor_bug_11_long_types_and_multiline_messages_keep_rows_aligned():
    serve([event(0, "ASSET_MATERIALIZATION_PLANNED", "a_very_long_step_key_that_is_over_thirty_chars"),
           log_line(1, "first line\nsecond line\tand tab"), event(2, "STEP_START", "b", "x" * 80)])
    lines = invoke("run-events", "get", "run-1").output.splitlines()
    header = next(line for line in lines if line.startswith("TIMESTAMP"))
    rows = lines[lines.index(header) + 2 : lines.index(header) + 5]
    message_col = header.index("MESSAGE")
    assert all(len(row) >= message_col for row in rows)
    assert rows[1][message_col:] == "first line\\nsecond line\\tand tab"
    assert rows[2][message_col:] == "x" * 47 + "..."
    assert rows[0].split()[1] == "ASSET_MATERIALIZATION_PLANNED"


@responses.activate
def test_anchor_bug_12_no_token_needed_and_transient_errors_are_retried():
    responses.post(URL + "/graphql", status=503, body="busy")
    serve([event(0, "STEP_START", "a")])
    result = invoke("run-events", "get", "run-1", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["count"] == 1
    assert "Dagster-Cloud-Api-Token" not in responses.calls[-1].request.headers


@responses.activate
def test_empty_result_says_so():
    serve([event(0, "STEP_START", "a")])
    out = invoke("run-events", "get", "run-1", "--step", "zzz").output
    assert "No events found for run run-1" in out
