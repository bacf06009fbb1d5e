"""Bad input against a real Dagster: each case gets a clear message and the CLI exit code
of its class (0 ok, 1 server error, 2 usage/config, 3 not found, 4 auth,
5 unreachable/timeout/rate-limited), and odd but legitimate runs (in progress, queued,
without events) read correctly.

Faults that only a broken network or proxy produces go through
:mod:`tests.live.fault_proxy`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time

import pandas as pd
import pytest
import requests
from click.testing import CliRunner

import runlens
import runlens.cli
from runlens import errors
from runlens.frames import EVENT_COLUMNS
from runlens.models import TERMINAL_STATUSES
from tests.live.fault_proxy import FaultProxy, always, html, rewrite_request, rewrite_response, status
from tests.truth import dagster_truth

TOKEN = "user:fedcba9876543210fedcba9876543210"


def cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(runlens.cli.main, list(args), env=env)


def one_line_error(result, *fragments: str) -> str:
    """The CLI's error: one line on stderr starting with "Error: ", no traceback."""
    err = result.stderr
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.fixture(scope="module")
def truth(demo) -> dict:
    return dagster_truth(demo.dagster.home, demo.runs["etl"])


@pytest.fixture(scope="module")
def server_version(demo) -> str:
    return requests.get(f"{demo.base_url}/server_info", timeout=10).json()["dagster_version"]


@pytest.fixture
def proxy(demo):
    with FaultProxy(demo.base_url, lifetime=60) as p:
        yield p


@pytest.fixture
def quick_cli(monkeypatch):
    """The CLI's client with a short backoff, so retries cost a fraction of a second."""
    monkeypatch.setattr(runlens.cli, "_client", lambda url: runlens.Client(url, progress=False, backoff=0.05,
                                                                           timeout=5))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------- a run in progress

def test_a_run_fetched_while_it_executes_then_after_it_ends_is_complete(demo, client):
    seconds = {"config": {"seconds": 1.5}}
    run_id = demo.dagster.launch_in_background(
        "slow_job", run_config={"ops": {op: seconds for op in ("slow_start", "slow_middle", "slow_end")}})
    try:
        deadline = time.monotonic() + 60
        while not (client.run_status(run_id) == "STARTED" and len(client.events(run_id, limit=20)) >= 20):
            assert time.monotonic() < deadline, "slow_job did not start"
            time.sleep(0.2)
        # While it runs: a complete read of what is stored so far, and a cursor to poll from.
        first = client.events(run_id)
        assert first.attrs["complete"] is True and first.attrs["cursor"]
        during = cli("run", "get", run_id, "--url", demo.url)
        assert during.exit_code == 0 and "Status: STARTED" in during.stdout and "Ended:" not in during.stdout
        # Poll from the cursor until the run ends, then drain once more (the ENGINE_EVENT
        # "Process for run exited" is stored after RUN_SUCCESS).
        batches, cursor = [first], first.attrs["cursor"]
        page_cursors = []
        ended = False
        while True:
            ended = str(client.run_status(run_id)) in TERMINAL_STATUSES
            assert time.monotonic() < deadline + 60, "slow_job did not end"
            batch = client.events(run_id, after_cursor=cursor)
            batches.append(batch)
            cursor = batch.attrs["cursor"]
            if ended:
                break
            time.sleep(0.5)
        assert demo.dagster.wait(run_id, timeout=60) == "SUCCESS"
        batches.append(client.events(run_id, after_cursor=cursor))
        # The last page's cursor of iter_event_pages polls the same way.
        pages = list(client.iter_event_pages(run_id, page_size=7))
        page_cursors = [p.cursor for p in pages]
        assert list(client.iter_event_pages(run_id, after_cursor=page_cursors[-1]))[0].events == []
    finally:
        demo.dagster.wait(run_id, timeout=120)

    polled = pd.concat(batches, ignore_index=True)
    final = client.events(run_id)
    truth = dagster_truth(demo.dagster.home, run_id)
    assert len(final) == truth["n_events"] and len(polled) == len(final)
    assert sum(len(b) for b in batches[1:]) == len(final) - len(first) > 0  # only new events were added
    for column in ("message", "timestamp", "level", "step_key", "kind"):
        assert polled[column].astype(object).tolist() == final[column].astype(object).tolist(), column
    types = [None if pd.isna(t) else t for t in polled["event_type"].astype(object)]
    assert types == truth["event_types"]
    assert sum(len(p) for p in pages) == len(final)


# ----------------------------------------------------------------------------- run ids

@pytest.mark.parametrize("command", [("run", "get"), ("run-events", "get")])
def test_unknown_run_id_exits_3(demo, command):
    result = cli(*command, "no-such-run", "--url", demo.url)
    assert result.exit_code == 3
    one_line_error(result, "run 'no-such-run' not found on", demo.url)
    as_json = cli(*command, "no-such-run", "--url", demo.url, "--json")
    assert as_json.exit_code == 3
    assert json.loads(as_json.stderr) == {"error": json.loads(as_json.stderr)["error"], "code": "RUN_NOT_FOUND",
                                          "run_id": "no-such-run"}


@pytest.mark.parametrize("run_id", ["", "   ", "\t\n"], ids=["empty", "spaces", "whitespace"])
@pytest.mark.parametrize("command", [("run", "get"), ("run-events", "get")])
def test_empty_or_blank_run_id_exits_2_without_asking_the_server(proxy, command, run_id):
    result = cli(*command, run_id, "--url", proxy.url)
    assert result.exit_code == 2
    one_line_error(result, "a run id must be a non-empty string")
    assert proxy.seen == []


# --------------------------------------------------------------------------------- URLs

@pytest.mark.parametrize("url", ["127.0.0.1:3000", "localhost:3000", "dagster.example.com/graphql", "ftp://x/graphql"])
def test_a_url_without_http_scheme_exits_2(url):
    result = cli("run", "get", "r1", "--url", url)
    assert result.exit_code == 2
    one_line_error(result, "not a URL runlens can use", "http://localhost:3000")


def test_a_host_that_does_not_resolve_exits_5_at_once():
    # Not retried: the name does not exist (EAI_NONAME). Before, the CLI's default
    # backoff spent about 7 s retrying it.
    started = time.monotonic()
    result = cli("run", "get", "r1", "--url", "http://runlens-no-such-host.invalid:3000")
    assert result.exit_code == 5
    one_line_error(result, "cannot reach http://runlens-no-such-host.invalid:3000/graphql",
                   "'runlens-no-such-host.invalid' does not resolve")
    assert time.monotonic() - started < 3


def test_a_closed_port_exits_5(quick_cli):
    port = closed_port()
    result = cli("run-events", "get", "r1", "--url", f"http://127.0.0.1:{port}")
    assert result.exit_code == 5
    one_line_error(result, f"cannot reach http://127.0.0.1:{port}/graphql: connection refused", "RUNLENS_URL")


def test_the_ui_root_url_works_because_graphql_is_appended(demo):
    for url in (demo.base_url, demo.base_url + "/", demo.base_url + "/graphql/"):
        result = cli("run", "get", demo.runs["etl"], "--url", url)
        assert result.exit_code == 0, result.output
        assert f"Run ID: {demo.runs['etl']}" in result.stdout


@pytest.mark.parametrize("path", ["/runs", "/server_info", f"/runs/{'x' * 8}", "/locations/foo/jobs/etl_job"])
def test_a_ui_page_path_exits_2_saying_there_is_no_graphql_endpoint(demo, path):
    # dagster-webserver answers 405 Method Not Allowed to a POST on {path}/graphql.
    # Before: TransportError, exit 5, "answered HTTP 405 with a body that is not JSON".
    result = cli("run", "get", demo.runs["etl"], "--url", demo.base_url + path)
    assert result.exit_code == 2
    one_line_error(result, f"{demo.base_url}{path}/graphql answered HTTP 405", "no GraphQL endpoint there")


def test_a_path_that_answers_html_exits_2(proxy, demo):
    # A login page, a web UI or a single-page-app fallback in front of Dagster.
    proxy.set_schedule(always(html()))
    result = cli("run", "get", demo.runs["etl"], "--url", proxy.url)
    assert result.exit_code == 2
    one_line_error(result, "answered with an HTML page (HTTP 200)", "/graphql")
    assert len(proxy.graphql_requests()) == 1  # not retried


# -------------------------------------------------------------------------------- auth

@pytest.mark.parametrize("code, word", [(401, "unauthorized"), (403, "forbidden")])
def test_401_and_403_exit_4_and_never_show_the_token(proxy, demo, code, word):
    proxy.set_schedule(always(status(code, "denied")))
    result = cli("run", "get", demo.runs["etl"], "--url", proxy.url)
    assert result.exit_code == 4
    one_line_error(result, f"answered HTTP {code} ({word})", "no token is set", "DAGSTER_CLOUD_API_TOKEN")
    with_token = cli("run-events", "get", demo.runs["etl"], "--url", proxy.url,
                     env={"DAGSTER_CLOUD_API_TOKEN": TOKEN})
    assert with_token.exit_code == 4
    one_line_error(with_token, "the token in use comes from $DAGSTER_CLOUD_API_TOKEN")
    assert TOKEN not in with_token.output
    assert len(proxy.graphql_requests()) == 2  # not retried


def test_a_dagster_plus_token_sent_to_oss_works_and_is_not_leaked(proxy, demo, caplog):
    caplog.set_level(logging.DEBUG)
    client = runlens.Client(proxy.url, token=TOKEN, organization="acme", deployment="prod", progress=False)
    assert client.run(demo.runs["etl"]).id == demo.runs["etl"]
    assert len(client.events(demo.runs["etl"])) > 0
    sent = proxy.graphql_requests()
    assert sent and all(s.headers.get("Dagster-Cloud-Api-Token") == TOKEN for s in sent)  # as dg sends it
    assert all(TOKEN not in s.body.decode() and TOKEN not in s.path for s in sent)  # header only
    assert TOKEN not in caplog.text and TOKEN not in repr(client) and TOKEN not in repr(client.transport)
    result = cli("run", "get", demo.runs["etl"], "--url", proxy.url, env={"DAGSTER_CLOUD_API_TOKEN": TOKEN})
    assert result.exit_code == 0 and TOKEN not in result.output


# --------------------------------------------------------------- another Dagster version

def test_an_older_dagster_missing_a_field_names_the_field_and_version(proxy, demo, server_version):
    proxy.set_schedule(always(rewrite_request(lambda body: body.replace(b"runConfigYaml", b"runConfigYamlV2"))))
    result = cli("run", "get", demo.runs["etl"], "--url", proxy.url)
    assert result.exit_code == 1
    one_line_error(result, "the server rejected runlens's query", "Cannot query field 'runConfigYamlV2' on type 'Run'",
                   f"Dagster there is {server_version}")
    with pytest.raises(errors.GraphQLError, match=server_version) as info:
        runlens.Client(proxy.url, progress=False).run(demo.runs["etl"])
    assert info.value.errors and "runConfigYamlV2" in info.value.errors[0]["message"]


def test_a_newer_dagster_without_an_argument_names_it_and_the_version(proxy, demo, server_version):
    proxy.set_schedule(always(rewrite_request(lambda body: body.replace(b"afterCursor: $afterCursor",
                                                                        b"afterToken: $afterCursor"))))
    result = cli("run-events", "get", demo.runs["etl"], "--url", proxy.url)
    assert result.exit_code == 1
    one_line_error(result, "Unknown argument 'afterToken'", f"Dagster there is {server_version}")


# ------------------------------------------------------------------------------ cursors

@pytest.mark.parametrize("cursor", ["not-a-cursor", "abcd", "eyJ0eXBlIjogIlgiLCAidmFsdWUiOiAzfQ=="])
def test_an_invalid_cursor_is_a_server_error_naming_the_cursor(client, demo, cursor):
    with pytest.raises(errors.ServerError) as info:
        list(client.iter_event_pages(demo.runs["etl"], after_cursor=cursor))
    message = str(info.value)
    assert message.startswith("Dagster raised ") and f"could not read events after the cursor {cursor!r}" in message
    assert info.value.exit_code == 1 and info.value.events_fetched == 0
    with pytest.raises(errors.ServerError):
        client.events(demo.runs["etl"], after_cursor=cursor)


@pytest.mark.parametrize("cursor", ["", "  "])
def test_a_blank_cursor_is_an_invalid_argument(client, demo, cursor):
    # Before: sent to Dagster, which raised JSONDecodeError (HTTP 500).
    with pytest.raises(errors.InvalidArgument, match="after_cursor must be a cursor runlens returned"):
        list(client.iter_event_pages(demo.runs["etl"], after_cursor=cursor))


def test_a_cursor_past_the_end_gives_nothing(client, demo):
    last = list(client.iter_event_pages(demo.runs["etl"]))[-1].cursor
    frame = client.events(demo.runs["etl"], after_cursor=last)
    assert len(frame) == 0 and frame.attrs["cursor"] == last and list(frame.columns) == list(EVENT_COLUMNS)


# ------------------------------------------------------------------------------ options

@pytest.mark.parametrize("limit", ["0", "-1"])
def test_limit_below_one_exits_2(demo, limit):
    result = cli("run-events", "get", demo.runs["etl"], "--limit", limit, "--url", demo.url)
    assert result.exit_code == 2
    assert f"Invalid value for '--limit': {limit} is not in the range x>=1" in result.stderr
    assert cli("run", "list", "--limit", limit, "--url", demo.url).exit_code == 2


def test_a_huge_limit_returns_every_event(demo, truth):
    result = cli("run-events", "get", demo.runs["etl"], "--limit", str(10**30), "--json", "--url", demo.url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["count"] == truth["n_events"]
    listed = cli("run", "list", "--limit", str(10**18), "--json", "--url", demo.url)
    assert listed.exit_code == 0 and json.loads(listed.stdout)["count"] >= 2


def test_an_unknown_type_warns_with_a_suggestion_and_matches_nothing(demo):
    result = cli("run-events", "get", demo.runs["etl"], "--type", "STEP_STRAT", "--url", demo.url)
    assert result.exit_code == 0
    assert "Warning: 'STEP_STRAT' is not a Dagster event type" in result.stderr
    assert "did you mean STEP_START" in result.stderr and result.stderr.count("STEP_STRAT") == 1
    assert f"No events found for run {demo.runs['etl']}" in result.stdout
    mixed = cli("run-events", "get", demo.runs["etl"], "--type", "step_start, NOPE", "--json", "--url", demo.url)
    assert mixed.exit_code == 0 and "'NOPE' is not a Dagster event type" in mixed.stderr
    assert {e["eventType"] for e in json.loads(mixed.stdout)["events"]} == {"STEP_START"}
    empty = cli("run-events", "get", demo.runs["etl"], "--type", " , ", "--url", demo.url)
    assert empty.exit_code == 2 and "the type filter ' , ' names no type" in empty.stderr


# ---------------------------------------------------------------------- odd message text

def _first_message(body: bytes, new_value: bytes) -> bytes:
    """Replace the first event message's JSON string value with ``new_value`` (raw JSON text)."""
    start = body.index(b'"message":"') + len(b'"message":"')
    end = body.index(b'"', start)
    while body[end - 1:end] == b"\\":
        end = body.index(b'"', end + 1)
    return body[:start] + new_value + body[end:]


@pytest.mark.parametrize("raw, expected", [
    (rb"lone \ud800 high", "lone \ufffd high"),
    (rb"lone \udfff low, pair \ud83d\ude80", "lone \ufffd low, pair \U0001f680"),
    (b"bytes \xff\xfe not utf-8", "bytes \ufffd\ufffd not utf-8"),
], ids=["high-surrogate", "low-surrogate", "invalid-utf8"])
def test_invalid_unicode_in_a_message_becomes_replacement_characters(proxy, demo, raw, expected):
    proxy.set_schedule(always(rewrite_response(lambda body: _first_message(body, raw))))
    events = runlens.Client(proxy.url, progress=False).events(demo.runs["etl"], limit=3)
    assert events["message"].iloc[0] == expected
    for args in ([], ["--json"]):
        result = cli("run-events", "get", demo.runs["etl"], "--limit", "3", "--url", proxy.url, *args)
        assert result.exit_code == 0, result.output
        result.stdout.encode("utf-8")
    assert json.loads(result.stdout)["events"][0]["message"] == expected


def test_a_5_mb_message_arrives_whole_and_prints_cut_in_a_terminal(proxy, demo, monkeypatch):
    from runlens import cli as cli_module

    big = "x" * 5_000_000
    proxy.set_schedule(always(rewrite_response(lambda body: _first_message(body, big.encode()))))
    events = runlens.Client(proxy.url, progress=False).events(demo.runs["etl"], limit=5)
    assert len(events) == 5 and events["message"].iloc[0] == big
    piped = cli("run-events", "get", demo.runs["etl"], "--limit", "5", "--url", proxy.url)
    assert piped.exit_code == 0 and big in piped.stdout  # not a terminal: whole messages
    monkeypatch.setattr(cli_module, "_terminal_width", lambda: 100)
    table = cli("run-events", "get", demo.runs["etl"], "--limit", "5", "--url", proxy.url)
    assert table.exit_code == 0 and len(table.stdout) < 10_000 and "xxx..." in table.stdout
    as_json = cli("run-events", "get", demo.runs["etl"], "--limit", "5", "--json", "--url", proxy.url)
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["events"][0]["message"] == big


# ------------------------------------------------------------- runs without events, queued

@pytest.fixture(scope="module")
def created_runs(demo):
    """A QUEUED run and a NOT_STARTED run with zero events, made with Dagster's Python API.

    They use log_storm_job, which no other live test lists, and are deleted afterwards so
    tests that list etl_job or slow_job runs never see them.
    """
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteRepositoryOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    from runlens.demo.definitions import log_storm_job

    # A queued run needs the origin a run coordinator would launch it from.
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="runlens.demo.definitions"))
    origin = RemoteRepositoryOrigin(location, "__repository__").get_job_origin("log_storm_job")
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(demo.dagster.home)
    try:
        with DagsterInstance.get() as instance:
            queued = instance.create_run_for_job(job_def=log_storm_job, status=DagsterRunStatus.QUEUED,
                                                 remote_job_origin=origin, tags={"runlens/test": "queued"})
            empty = instance.create_run_for_job(job_def=log_storm_job, tags={"runlens/test": "no-events"})
            runs = {"queued": queued.run_id, "empty": empty.run_id}
            yield runs
            for run_id in runs.values():
                instance.delete_run(run_id)
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


@pytest.mark.parametrize("kind, status_name", [("queued", "QUEUED"), ("empty", "NOT_STARTED")])
def test_runs_without_events_read_as_empty_typed_frames(client, demo, created_runs, kind, status_name):
    run_id = created_runs[kind]
    assert dagster_truth(demo.dagster.home, run_id)["n_events"] == 0
    run = client.run(run_id)
    assert run.status == status_name and run.started_at is None and run.ended_at is None and not run.is_finished
    events = client.events(run_id)
    assert len(events) == 0 and list(events.columns) == list(EVENT_COLUMNS)
    assert str(events["timestamp"].dtype) == "datetime64[ms, UTC]" and events["message"].dtype == "string"
    assert events.attrs["complete"] is True and events.attrs["cursor"]
    assert [len(p) for p in client.iter_event_pages(run_id)] == [0]
    assert len(client.step_stats(run_id)) == 0
    shown = cli("run", "get", run_id, "--url", demo.url)
    assert shown.exit_code == 0 and f"Status: {status_name}" in shown.stdout and "Started:" not in shown.stdout
    table = cli("run-events", "get", run_id, "--url", demo.url)
    assert table.exit_code == 0 and f"No events found for run {run_id}" in table.stdout
    as_json = cli("run-events", "get", run_id, "--json", "--url", demo.url)
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["count"] == 0


def test_queued_runs_are_listed_by_status(client, created_runs):
    queued = client.runs(statuses=["QUEUED"])
    assert created_runs["queued"] in set(queued["run_id"])
    assert set(queued["status"].astype(str)) == {"QUEUED"}
    assert queued.loc[queued["run_id"] == created_runs["queued"], "started"].isna().all()
