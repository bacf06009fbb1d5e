"""Compute logs of the demo's runs equal what the ops printed and what Dagster stored on disk.

The ops write fixed bytes (:mod:`runlens.demo.printed`): ``extract_orders`` (etl, multiprocess
executor, SUCCESS), ``parse_invoices`` (failing, multiprocess, FAILURE: prints, then raises),
``shout`` and ``flood`` (printing, in-process executor: one file for the run, 5 MB of stderr).
The truth for each file is Dagster's own: the file its LocalComputeLogManager wrote under
the demo's storage folder, read here straight from disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import runlens
from runlens.cli import main
from runlens.demo import printed
from runlens.logs import ComputeLogs, readable_lines, strip_ansi


def stored(demo, run_id: str, file_key: str, stream: str) -> bytes:
    """The compute log file as Dagster wrote it (local compute log manager: <storage>/<run>/compute_logs/)."""
    ext = {"stdout": "out", "stderr": "err"}[stream]
    return (Path(demo.dagster.home) / "storage" / run_id / "compute_logs" / f"{file_key}.{ext}").read_bytes()


def only_file(client, run_id: str, step: str):
    files = [f for f in ComputeLogs(client).files(run_id) if step in f.step_keys]
    assert len(files) == 1
    return files[0]


@pytest.mark.parametrize("kind, step", [("etl", "extract_orders"), ("failing", "parse_invoices")])
def test_multiprocess_step_stdout_is_what_the_op_printed(client, demo, kind, step):
    run_id = demo.runs[kind]
    text = client.logs(run_id, step, stream="stdout")
    assert text == printed.stdout_bytes(step).decode("utf-8", "replace")
    assert text.notes == []
    assert text == stored(demo, run_id, only_file(client, run_id, step).file_key, "stdout").decode("utf-8", "replace")


@pytest.mark.parametrize("kind, step", [("etl", "extract_orders"), ("failing", "parse_invoices")])
def test_multiprocess_step_stderr_holds_the_printed_block_and_equals_the_file(client, demo, kind, step):
    run_id = demo.runs[kind]
    text = client.logs(run_id, step)
    # Dagster's own log lines share stderr; the op's block is there whole, in one piece.
    assert printed.stderr_bytes(step).decode() in text
    assert text == stored(demo, run_id, only_file(client, run_id, step).file_key, "stderr").decode("utf-8", "replace")


def test_the_failed_steps_stderr_ends_with_its_traceback(client, demo):
    text = client.logs(demo.runs["failing"], "parse_invoices")
    assert "ValueError: invoice 2 has no currency" in text
    assert text.index(printed.stderr_bytes("parse_invoices").decode()) < text.index("ValueError: invoice 2")


def test_in_process_step_is_the_runs_one_file_and_says_so(client, demo):
    run_id = demo.runs["printing"]
    with pytest.warns(runlens.RunlensWarning, match="in-process executor"):
        text = client.logs(run_id, "shout", stream="stdout")
    assert text == printed.stdout_bytes("shout").decode("utf-8", "replace")  # only shout writes stdout
    assert "whole run's (shout, flood)" in text.notes[0]


def test_five_mb_log_arrives_whole_and_its_tail_with_max_bytes(client, demo):
    run_id = demo.runs["printing"]
    file_key = ComputeLogs(client).files(run_id)[0].file_key
    on_disk = stored(demo, run_id, file_key, "stderr")
    assert len(on_disk) > 5_000_000
    whole = client.logs(run_id)
    assert whole == on_disk.decode("utf-8", "replace")
    assert printed.flood_bytes().decode() in whole
    assert printed.stderr_bytes("shout").decode() in whole
    tail = client.logs(run_id, max_bytes=100_001)  # an odd count: the cut lands inside an "é"
    assert tail.truncated and whole.endswith(tail)
    assert 100_001 - 1 <= len(tail.encode()) <= 100_001 and "\ufffd" not in tail


def test_captured_logs_pages_give_the_same_text_as_the_download(client, demo):
    from runlens.logs import decode, read_captured_logs

    run_id = demo.runs["etl"]
    log_file = only_file(client, run_id, "extract_orders")
    # 7-byte pages cut many characters of the unicode line and the undecodable bytes.
    got = read_captured_logs(client.transport, run_id, [run_id, "compute_logs", log_file.file_key], page_bytes=7)
    assert decode(got["stdout"][0]) == client.logs(run_id, "extract_orders", stream="stdout")


def test_log_lines_are_readable(client, demo):
    lines = client.log_lines(demo.runs["etl"], "extract_orders")
    out = lines[lines["stream"] == "stdout"]["text"].tolist()
    assert out == ["extract_orders: stdout begins", printed.UNICODE_LINE, "OK checks passed, WARN 2 rows late",
                   "raw bytes: \ufffd\ufffd\ufffd end", "extract_orders: stdout ends"]
    err = lines[lines["stream"] == "stderr"]["text"].tolist()
    assert "progress 100%" in err and printed.LONG_LINE in err and printed.UNICODE_LINE in err
    assert not lines["text"].str.contains("\x1b", regex=False).any()
    assert set(lines["step_key"]) == {"extract_orders"}


def test_every_step_of_the_etl_run_has_logs_and_a_retried_step_one_file_per_attempt(client, demo):
    lines = client.log_lines(demo.runs["etl"], stream="stderr")
    steps = runlens.step_durations(client.events(demo.runs["etl"]))
    assert set(lines["step_key"].dropna()) == set(steps["step_key"])
    text = client.logs(demo.runs["etl"], "clean_orders")
    assert "==> clean_orders (attempt 1): stderr <==" in text and "==> clean_orders (attempt 2): stderr <==" in text


@pytest.mark.parametrize("kind, status", [("queued", "QUEUED"), ("not_started", "NOT_STARTED"),
                                          ("canceled_queued", "CANCELED")])
def test_runs_without_logs_say_why(client, demo, kind, status):
    with pytest.raises(runlens.LogsNotFound, match=f"\\({status}\\) has no captured compute logs"):
        client.logs(demo.runs[kind])


def test_a_skipped_step_and_an_unknown_run(client, demo):
    with pytest.raises(runlens.LogsNotFound, match="steps with logs: fetch_invoices, parse_invoices"):
        client.logs(demo.runs["failing"], "publish_invoices")
    with pytest.raises(runlens.RunNotFound):
        client.logs("no-such-run")


def invoke(demo, *args):
    return CliRunner().invoke(main, ["run", "logs", *args, "--url", demo.base_url])


def test_cli_prints_the_steps_stdout(demo):
    result = invoke(demo, demo.runs["failing"], "--step", "parse_invoices", "--stdout")
    assert result.exit_code == 0
    # Not a terminal: click strips the ANSI colour codes.
    assert result.stdout == strip_ansi(printed.stdout_bytes("parse_invoices").decode("utf-8", "replace"))


def test_cli_tail_json(client, demo):
    result = invoke(demo, demo.runs["failing"], "--step", "parse_invoices", "--tail", "12", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["parts"][0]["step_keys"] == ["parse_invoices"] and doc["parts"][0]["stream"] == "stderr"
    assert 'invoice["currency"]' in doc["parts"][0]["text"]  # the traceback's end
    whole = client.logs(demo.runs["failing"], "parse_invoices")
    assert doc["parts"][0]["text"].splitlines() == readable_lines(whole)[-12:]


@pytest.mark.parametrize("args, code, name", [
    (["no-such-run"], 3, "RUN_NOT_FOUND"),
    (["{queued}"], 3, "LOGS_NOT_FOUND"),
    (["{failing}", "--step", "publish_invoices"], 3, "LOGS_NOT_FOUND"),
    (["{failing}", "--tail", "0"], 2, "USAGE_ERROR"),
])
def test_cli_errors(demo, args, code, name):
    args = [a.format(**demo.runs) for a in args]
    result = invoke(demo, *args, "--json")
    assert result.exit_code == code, result.output
    assert json.loads(result.stderr)["code"] == name
