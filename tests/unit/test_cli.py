"""The CLI over a fake server: output shapes, exit codes, and Dagster's own CLI bugs.

Each ``test_anchor_bug_*`` reproduces one bug listed in shared/docs/dg-cli-anchor.md
and shows runlens does not have it. The same commands run against the live demo
server in tests/live/test_cli_live.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import click
import pytest
import requests
import responses
from click.testing import CliRunner

import runlens.cli as cli
from runlens.cli import EXIT_CODES_HELP, main
from runlens.filters import UnknownEventTypeWarning, filter_events
from runlens.formatting import MIN_MESSAGE_WIDTH
from runlens.frames import events_frame, runs_frame
from tests.builders import log_line, make_events, record

from .fake_dagster import BASE_URL as URL
from .fake_dagster import FakeDagster


def invoke(*args):
    return CliRunner().invoke(main, [*args, "--url", URL])


def serve(events: list[dict]) -> FakeDagster:
    fake = FakeDagster(events)
    responses.add_callback(responses.POST, URL + "/graphql", callback=fake)
    return fake


@responses.activate
def test_run_get_prints_the_seed_lines_in_iso_utc():
    serve([])
    result = invoke("run", "get", "run-1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Run ID: run-1" and lines[1] == "Status: SUCCESS"
    assert "Created: 2026-11-26T04:26:30.500Z" in lines
    assert "Started: 2026-11-26T04:26:31.250Z" in lines
    assert "Job: j" in lines and "Duration: 8.750 s" in lines
    # Dagster has jobs, not pipelines and modes: the legacy lines are gone from the text.
    assert not any(line.startswith(("Pipeline:", "Mode:")) for line in lines)


@responses.activate
def test_run_get_json_has_the_seed_keys():
    serve([])
    doc = json.loads(invoke("run", "get", "run-1", "--json").output)
    for key in ("id", "status", "created_at", "started_at", "ended_at", "pipeline_name", "mode"):
        assert key in doc
    assert doc["ended_at"] == "2026-11-26T04:26:40.000Z" and doc["tags"] == {"team": "data"}


@responses.activate
def test_anchor_bug_1_table_renders_log_lines_with_null_type():
    serve([log_line(0, "a user log line"), record(1, "STEP_START", "extract")])
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
    events = make_events(3500) + [record(3500, "RUN_SUCCESS", message="Finished")]
    fake = serve(events)
    doc = json.loads(invoke("run-events", "get", "run-1", "--type", "RUN_SUCCESS", "--limit", "1", "--json").output)
    assert doc["count"] == 1 and doc["events"][0]["eventType"] == "RUN_SUCCESS"
    assert len(fake.requests) == 4  # pages of 1000, not pages of --limit


@responses.activate
def test_spaced_comma_tokens_all_count():
    serve([record(0, "STEP_START", "a"), record(1, "STEP_SUCCESS", "a"), record(2, "STEP_OUTPUT", "a")])
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
    serve([record(0, "STEP_SUCCESS", "a")])
    result = CliRunner().invoke(main, ["run-events", "get", "run-1", "--type", "STEP_SUCESS", "--json", "--url", URL])
    assert result.exit_code == 0
    assert "STEP_SUCESS" in result.stderr and "STEP_SUCCESS" in result.stderr
    assert json.loads(result.stdout)["count"] == 0  # stdout stays parseable JSON


def test_type_with_no_name_is_a_usage_error():
    result = invoke("run-events", "get", "run-1", "--type", " , ,")
    assert result.exit_code == 2


@responses.activate
def test_anchor_bug_7_pipeline_and_run_names_are_one_event():
    serve([record(0, "RUN_SUCCESS"), record(1, "PIPELINE_SUCCESS")])
    for name in ("RUN_SUCCESS", "PIPELINE_SUCCESS"):
        doc = json.loads(invoke("run-events", "get", "run-1", "--type", name, "--json").output)
        assert doc["count"] == 2


@responses.activate
def test_anchor_bug_8_table_and_json_times_are_iso_utc():
    serve([record(783, "STEP_START", "a")])
    table = invoke("run-events", "get", "run-1").output
    # text.iso_utc: milliseconds and the Z, as in the JSON
    assert "2026-11-26T04:26:30.783Z DEBUG" in table and "1795667190783" not in table
    doc = json.loads(invoke("run-events", "get", "run-1", "--json").output)
    assert doc["events"][0]["timestamp"] == "2026-11-26T04:26:30.783Z"


@responses.activate
def test_anchor_bug_9_json_shape_is_exactly_the_seeds():
    serve([log_line(0)])
    doc = json.loads(invoke("run-events", "get", "run-1", "--json").output)
    assert set(doc) == {"run_id", "events", "count", "has_more", "cursor"}  # the seed's keys, plus two
    assert set(doc["events"][0]) == {"runId", "message", "timestamp", "level", "stepKey", "eventType"}
    assert doc["events"][0]["eventType"] is None


@responses.activate
def test_anchor_bug_10_table_shows_the_error_and_its_cause_chain():
    failure = record(0, "STEP_FAILURE", "load", 'Execution of step "load" failed.', level="ERROR")
    failure["error"] = {"message": "bad row\n", "className": "ValueError", "stack": ["x"],
                        "cause": {"message": "'id'", "className": "KeyError", "stack": []}}
    serve([failure])
    out = invoke("run-events", "get", "run-1").output
    assert "[load] ValueError: bad row" in out and "caused by KeyError: 'id'" in out


@pytest.mark.parametrize("width", [None, 140])
@responses.activate
def test_anchor_bug_11_long_types_and_multiline_messages_keep_rows_aligned(monkeypatch, width):
    monkeypatch.setattr(cli, "_terminal_width", lambda: width)
    serve([record(0, "ASSET_MATERIALIZATION_PLANNED", "a_very_long_step_key_that_is_over_thirty_chars", "m"),
           log_line(1, "first line\nsecond line\tand tab"), record(2, "STEP_START", "b", "x" * 80)])
    lines = invoke("run-events", "get", "run-1").output.splitlines()
    header = next(line for line in lines if line.startswith("TIMESTAMP"))
    rows = lines[lines.index(header) + 2 : lines.index(header) + 5]
    message_col = header.index("MESSAGE")
    assert all(len(row) >= message_col for row in rows)
    assert rows[1][message_col:] == "first line\\nsecond line\\tand tab"
    assert rows[0].split()[2] == "ASSET_MATERIALIZATION_PLANNED"
    if width is None:  # not a terminal: the whole message
        assert rows[2][message_col:] == "x" * 80
    else:  # a terminal: cut to its width
        assert rows[2][message_col:] == "x" * (width - message_col - 3) + "..." and len(rows[2]) == width


@responses.activate
def test_anchor_bug_12_no_token_needed_and_transient_errors_are_retried():
    responses.post(URL + "/graphql", status=503, body="busy")
    serve([record(0, "STEP_START", "a")])
    result = invoke("run-events", "get", "run-1", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["count"] == 1
    assert "Dagster-Cloud-Api-Token" not in responses.calls[-1].request.headers


@responses.activate
def test_empty_result_says_so():
    serve([record(0, "STEP_START", "a")])
    out = invoke("run-events", "get", "run-1", "--step", "zzz").output
    assert "No events found for run run-1" in out


# ------------------------------------------------------------------ issue 12, defect 8


class FakeClient:
    """Stands in for runlens.Client behind the CLI: frames as the library builds them."""

    def __init__(self, records=(), *, has_more=None, runs=()):
        self.frame = events_frame(list(records), "run-1")
        self.has_more = has_more
        self.run_records = list(runs)
        self.calls = []

    def events(self, run_id, *, types=None, step=None, levels=None, limit=None, after_cursor=None):
        self.calls.append({"types": types, "step": step, "levels": levels, "limit": limit})
        frame = filter_events(self.frame, types=types, step=step, levels=levels, warn=False).iloc[:limit]
        if self.has_more is not None:
            frame.attrs["has_more"] = self.has_more
        return frame

    def runs(self, *, job=None, statuses=None, limit=None, **filters):
        self.calls.append({"job": job, "statuses": statuses, "limit": limit, **filters})
        return runs_frame(self.run_records)


@pytest.fixture
def fake(monkeypatch):
    """Install a FakeClient (set its records/has_more in the test); stdout not a terminal."""
    client = FakeClient()
    monkeypatch.setattr(cli, "_client", lambda url: client)
    monkeypatch.setattr(cli, "_terminal_width", lambda: None)
    return client


def run_cli(*args):
    return CliRunner().invoke(main, [*args, "--url", URL])


@pytest.mark.parametrize("has_more", [True, False])
def test_json_says_whether_the_limit_cut_the_result(fake, has_more):
    fake.__init__([record(i, "STEP_START", "a") for i in range(3)], has_more=has_more)
    result = run_cli("run-events", "get", "run-1", "--limit", "3", "--json")
    doc = json.loads(result.stdout)
    assert doc["has_more"] is has_more and doc["count"] == 3 and result.stderr == ""


def test_text_says_on_stderr_that_more_events_match(fake):
    fake.__init__([record(i, "STEP_START", "a") for i in range(3)], has_more=True)
    result = run_cli("run-events", "get", "run-1", "--limit", "2")
    assert result.stderr.strip() == "Showing 2 events; more match — raise --limit"
    assert "Total events: 2" in result.stdout and "raise --limit" not in result.stdout


def test_no_note_when_nothing_more_matches(fake):
    fake.__init__([record(0, "STEP_START", "a")], has_more=False)
    assert run_cli("run-events", "get", "run-1").stderr == ""


@responses.activate
def test_has_more_end_to_end_through_the_client():

    serve(make_events(50))
    cut = json.loads(invoke("run-events", "get", "run-1", "--limit", "10", "--json").output)
    whole = json.loads(invoke("run-events", "get", "run-1", "--limit", "50", "--json").output)
    assert cut["has_more"] is True and whole["has_more"] is False


@pytest.mark.parametrize(
    "repeated, joined, kept",
    [
        (["--type", "STEP_START", "--type", "step_success"], ["--type", "STEP_START,step_success"], [0, 2, 3, 5]),
        (["--level", "info", "--level", "ERROR"], ["--level", "INFO,ERROR"], [1, 4]),
        (["--step", "extract", "--step", "LOAD"], ["--step", "extract,load"], [0, 1, 2, 3, 4]),
        (["--type", "STEP_START", "--step", "extract", "--type", "STEP_FAILURE", "--step", "load"],
         ["--type", "STEP_START,STEP_FAILURE", "--step", "extract,load"], [0, 3, 4]),
    ],
)
@responses.activate
def test_repeated_options_add_up(repeated, joined, kept):
    records = [record(0, "STEP_START", "extract", "m0"), log_line(1, "m1", step="extract"),
               record(2, "STEP_SUCCESS", "extract", "m2"), record(3, "STEP_START", "load", "m3"),
               record(4, "STEP_FAILURE", "load", "m4", level="ERROR"), record(5, "STEP_START", "report", "m5")]
    serve(records)
    first = json.loads(invoke("run-events", "get", "run-1", "--json", *repeated).output)
    second = json.loads(invoke("run-events", "get", "run-1", "--json", *joined).output)
    assert first == second
    # Exactly the rows both options name, so the two spellings cannot agree on a wrong answer.
    assert [e["message"] for e in first["events"]] == [f"m{i}" for i in kept]


@responses.activate
def test_several_steps_match_any_of_them():
    serve([record(0, "STEP_START", "extract_a"), record(1, "STEP_START", "load"), record(2, "STEP_START", "report")])
    doc = json.loads(invoke("run-events", "get", "run-1", "--json", "--step", "extract", "--step", "LOAD").output)
    assert [e["stepKey"] for e in doc["events"]] == ["extract_a", "load"]


@responses.activate
def test_step_is_stripped_like_type():
    serve([record(0, "STEP_START", "flaky"), record(1, "STEP_START", "other")])
    doc = json.loads(invoke("run-events", "get", "run-1", "--json", "--step", " flaky ").output)
    assert [e["stepKey"] for e in doc["events"]] == ["flaky"]


@pytest.mark.parametrize("value", [" ", " , "])
def test_a_step_that_names_nothing_is_a_usage_error(value):
    result = CliRunner().invoke(main, ["run-events", "get", "run-1", "--step", value, "--url", URL])
    assert result.exit_code == 2 and "names no step" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["run-events", "get", "run-1", "--bogus"],
        ["run-events", "get"],
        ["run-events", "get", "run-1", "--limit", "0"],
        ["run-events", "get", "run-1", "--limit", "many"],
        ["run", "get"],
        ["run", "list", "--limit", "-3"],
        ["run", "nope"],
        ["run-events", "get", "run-1", "--type", " , "],
        ["run-events", "get", "run-1", "--level", "LOUD"],
    ],
)
def test_with_json_every_usage_error_is_the_json_error_object(args):
    result = CliRunner().invoke(main, [*args, "--json", "--url", URL])
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stderr)
    assert set(doc) == {"error", "code", "run_id"} and doc["error"]
    assert doc["code"] in ("USAGE_ERROR", "INVALID_FILTER") and result.stdout == ""


def test_usage_error_json_says_what_was_wrong():
    result = CliRunner().invoke(main, ["run-events", "get", "run-1", "--limit", "0", "--json"])
    doc = json.loads(result.stderr)
    # click stops before the command line is read whole: no run id to report
    assert doc == {"error": "Invalid value for '--limit': 0 is not in the range x>=1.", "code": "USAGE_ERROR",
                   "run_id": None}


def test_without_json_usage_errors_stay_clicks_text():
    result = CliRunner().invoke(main, ["run-events", "get", "run-1", "--bogus"])
    assert result.exit_code == 2 and "Usage:" in result.stderr and "No such option" in result.stderr


def test_json_after_double_dash_is_an_argument_not_the_option():
    result = CliRunner().invoke(main, ["run", "get", "--bogus", "--", "--json"])
    assert result.exit_code == 2 and "Usage:" in result.stderr


def test_help_with_json_still_prints_help_and_exits_0():
    result = CliRunner().invoke(main, ["run-events", "get", "--help", "--json"])
    assert result.exit_code == 0 and "--wide" in result.stdout


EVENTS = [
    record(0, "RUN_START", None, 'Started execution of run for "etl".'),
    record(1, "STEP_START", "extract", 'Started execution of step "extract".'),
    log_line(2, "fetched 1,204 rows from the orders table, 3 partitions in 0.4 s; " * 2 + "done", step="extract"),
    record(3, "ASSET_MATERIALIZATION_PLANNED", "process_region[emea]", "planned", level="DEBUG"),
    record(4, "STEP_FAILURE", "process_region[emea]", 'Execution of step "process_region[emea]" failed.',
          level="ERROR"),
]


def test_table_shows_the_level(fake):
    fake.__init__(EVENTS)
    lines = run_cli("run-events", "get", "run-1").stdout.splitlines()
    assert lines[2].split()[:5] == ["TIMESTAMP", "LEVEL", "TYPE", "STEP_KEY", "MESSAGE"]
    assert lines[4].split()[1] == "DEBUG" and lines[6].split()[1] == "INFO" and lines[8].split()[1] == "ERROR"
    # a log line has no type: its level still lines up under LEVEL
    assert lines[6].index("INFO") == lines[2].index("LEVEL")


def test_whole_messages_when_stdout_is_not_a_terminal_or_with_wide(fake, monkeypatch):
    fake.__init__(EVENTS)
    long_message = EVENTS[2]["message"]
    assert long_message in run_cli("run-events", "get", "run-1").stdout  # a pipe: whole
    monkeypatch.setattr(cli, "_terminal_width", lambda: 100)
    assert long_message not in run_cli("run-events", "get", "run-1").stdout  # a terminal: cut
    assert long_message in run_cli("run-events", "get", "run-1", "--wide").stdout


@pytest.mark.parametrize("width", [60, 80, 100, 120])
def test_no_table_line_overflows_a_narrow_terminal(fake, monkeypatch, width):
    # e.g. COLUMNS=60: rows are cut to the width, or split in two lines when the
    # columns before MESSAGE leave less than MIN_MESSAGE_WIDTH for it.
    fake.__init__(EVENTS)
    monkeypatch.setattr(cli, "_terminal_width", lambda: width)
    out = run_cli("run-events", "get", "run-1").stdout
    assert all(len(line) <= width for line in out.splitlines()), out
    assert "fetched 1,204 rows" in out and EVENTS[2]["message"] not in out and "Total events: 5" in out
    assert "[process_region[emea]] Execution of step" in out or width >= 100
    for e in EVENTS:  # every row still names its type
        assert e["eventType"] is None or e["eventType"] in out


def test_long_errors_wrap_in_a_narrow_terminal_and_stay_whole(fake, monkeypatch):
    failure = record(0, "STEP_FAILURE", "load", 'Execution of step "load" failed.', level="ERROR")
    words = " ".join(f"word{i}" for i in range(40))
    failure["error"] = {"message": f"ValueError: {words}", "className": "ValueError", "stack": [],
                        "cause": {"message": words, "className": "KeyError", "stack": []}}
    fake.__init__([failure])
    monkeypatch.setattr(cli, "_terminal_width", lambda: 60)
    out = run_cli("run-events", "get", "run-1").stdout
    errors = out[out.index("Errors:"):].splitlines()[1:]
    assert all(len(line) <= 60 for line in errors) and len(errors) > 4
    assert " ".join(" ".join(errors).split()).count(words) == 2  # every word, in order, twice
    assert errors[0].startswith("  [load] ValueError: word0") and errors[1].startswith("    word")


def test_terminal_width_follows_columns_and_is_none_for_a_pipe(monkeypatch):
    class Tty:
        def isatty(self):
            return True

    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setattr(sys, "stdout", Tty())
    assert cli._terminal_width() == 60
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert cli._terminal_width() is None


def test_min_message_width_is_what_a_split_row_saves():
    assert 10 < MIN_MESSAGE_WIDTH < 40


RUNS = [
    {"id": "0f3c2a1e-7a7b-4c55-9a4e-1d2f3a4b5c6d", "status": "NOT_STARTED", "jobName": "etl_job",
     "creationTime": 1795667190.5, "startTime": None, "endTime": None, "tags": []},
    {"id": "9b8e7d6c-5b4a-4321-8fed-cba987654321", "status": "SUCCESS", "jobName": "a_much_longer_job_name_here",
     "creationTime": 1795667100.25, "startTime": 1795667101.0, "endTime": 1795667176.5, "tags": []},
]


def test_run_list_columns_fit_not_started_and_long_job_names(fake):
    fake.__init__(runs=RUNS)
    lines = run_cli("run", "list").stdout.splitlines()
    header = lines[0]
    assert header.split() == ["RUN_ID", "JOB", "STATUS", "CREATED", "DURATION"]
    for line in lines[1:]:  # each value starts under its header: nothing pushed over
        assert line[header.index("STATUS"):].split()[0] in ("NOT_STARTED", "SUCCESS")
        assert line[header.index("CREATED"):].startswith("2026-11-26T04:2")
    assert "2026-11-26T04:26:30.500Z" in lines[1] and lines[1].endswith("—")
    assert lines[2].endswith("1 min 15.5 s")  # runlens.text.duration_text


def test_run_list_in_a_narrow_terminal(fake, monkeypatch):
    fake.__init__(runs=RUNS)
    monkeypatch.setattr(cli, "_terminal_width", lambda: 60)
    out = run_cli("run", "list").stdout
    assert all(len(line) <= 60 for line in out.splitlines()), out
    assert "0f3c2a1e-7a7b-4c55-9a4e-1d2f3a4b5c6d NOT_STARTED" in out  # whole ids, never cut
    assert "  JOB · CREATED · DURATION" in out and "  etl_job · 2026-11-26T04:26:30.500Z · —" in out


def test_run_list_json(fake):
    fake.__init__(runs=RUNS)
    doc = json.loads(run_cli("run", "list", "--json").stdout)
    assert doc["count"] == 2 and doc["runs"][0]["created_at"] == "2026-11-26T04:26:30.500Z"
    assert doc["runs"][0]["duration_seconds"] is None and doc["runs"][1]["duration_seconds"] == 75.5


@responses.activate
def test_a_typo_is_reported_once_even_with_warnings_always():
    serve(make_events(2500))  # three pages
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(main, ["run-events", "get", "run-1", "--type", "STEP_FAILUR", "--url", URL])
    assert result.exit_code == 0
    assert result.stderr.count("STEP_FAILUR'") == 1 and "did you mean STEP_FAILURE" in result.stderr
    assert not [w for w in caught if issubclass(w.category, UnknownEventTypeWarning)]


@responses.activate
def test_the_library_reports_a_typo_once_per_fetch_even_with_warnings_always():
    from runlens.client import Client

    serve(make_events(2500))  # three pages: the issue saw 1 + 3 warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Client(URL, progress=False).events("run-1", types="STEP_FAILUR")
    assert len([w for w in caught if issubclass(w.category, UnknownEventTypeWarning)]) == 1


def test_a_typo_is_reported_once_in_a_real_process_with_w_always(tmp_path):
    # -W always as the user typed it; the client is faked so no server is needed.
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "import runlens.cli as cli\n"
        "from runlens.frames import empty_events_frame\n"
        "from runlens.filters import filter_events\n"
        "class C:\n"
        "    def events(self, run_id, **kw):\n"
        "        for _ in range(3):\n"  # the library filters page by page
        "            filter_events(empty_events_frame(run_id), types=kw['types'])\n"
        "        return empty_events_frame(run_id)\n"
        "cli._client = lambda url: C()\n"
        "cli.main(['run-events', 'get', 'r', '--type', 'STEP_FAILUR'])\n"
    )
    result = subprocess.run([sys.executable, "-W", "always", str(script)], capture_output=True, text=True,
                            cwd=str(tmp_path), env={**__import__("os").environ})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("STEP_FAILUR'") == 1


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_command_has_help_and_documents_exit_codes():
    assert main.help and main.epilog == EXIT_CODES_HELP
    for path, command in _commands(main):
        assert command.help, path
        if not isinstance(command, click.Group) and path[-1] != "demo":
            # run-events tail adds the run's outcomes (6 failed, 7 canceled) to the common codes.
            assert command.epilog == EXIT_CODES_HELP or (
                path == ("run-events", "tail") and command.epilog.startswith(EXIT_CODES_HELP)
                and "6 it failed, 7 it was canceled" in command.epilog), path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, (path, param.name)


def test_a_narrow_table_leaves_no_blank_line_for_an_event_without_message_or_step(fake, monkeypatch):
    fake.__init__([record(0, "RUN_ENQUEUED", None, "", level="INFO"), *EVENTS[1:3]])
    monkeypatch.setattr(cli, "_terminal_width", lambda: 60)
    lines = run_cli("run-events", "get", "run-1").stdout.splitlines()
    enqueued = next(i for i, line in enumerate(lines) if "RUN_ENQUEUED" in line)
    assert lines[enqueued + 1].split()[2] == "STEP_START", lines
