"""The demo Dagster, checked over plain HTTP: the runs it seeds and the processes it owns."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from runlens.demo import server
from runlens.demo.server import DemoDagster, DemoNotInstalled

from .processes import group_alive
from .raw_graphql import all_events, graphql

LOGS_QUERY = """
query Logs($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 1000) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message level stepKey eventType }
        ... on MaterializationEvent { assetKey { path } metadataEntries { __typename label } }
        ... on ExecutionStepFailureEvent {
          error { className cause { className message cause { className } } }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

STATUS_QUERY = """
query Status($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status jobName } }
}
"""

ETL_STEP_KEYS = {
    "extract_orders",
    "extract_customers",
    "extract_products",
    "clean_orders",
    "clean_customers",
    "join_sales",
    "process_region[emea]",
    "process_region[amer]",
    "process_region[apac]",
    "load_warehouse",
}


def fetch_events(url: str, run_id: str) -> list[dict]:
    """All events of a run, page by page (the server caps a page at 1000 events)."""
    return all_events(url, run_id, LOGS_QUERY)


def run_status(url: str, run_id: str) -> str:
    run = graphql(url, STATUS_QUERY, runId=run_id)["runOrError"]
    assert run["__typename"] == "Run", run
    return run["status"]


@pytest.fixture(scope="module")
def etl_events(demo) -> list[dict]:
    return fetch_events(demo.url, demo.runs["etl"])


@pytest.fixture(scope="module")
def failing_events(demo) -> list[dict]:
    return fetch_events(demo.url, demo.runs["failing"])


def test_server_info_reports_the_dagster_version(demo):
    import dagster

    response = requests.get(f"{demo.base_url}/server_info", timeout=10)
    assert response.status_code == 200
    assert response.json()["dagster_version"] == dagster.__version__
    assert demo.url == f"{demo.base_url}/graphql"


def test_seeded_runs_end_in_success_and_failure(demo):
    assert run_status(demo.url, demo.runs["etl"]) == "SUCCESS"
    assert run_status(demo.url, demo.runs["failing"]) == "FAILURE"


def test_seed_holds_a_run_of_every_kind_a_real_dagster_holds(demo):
    assert tuple(demo.runs) == server.SEED_KEYS
    assert len(set(demo.runs.values())) == len(demo.runs)
    statuses = {kind: run_status(demo.url, run_id) for kind, run_id in demo.runs.items()}
    assert statuses == {"etl": "SUCCESS", "failing": "FAILURE", "queued": "QUEUED", "canceled_queued": "CANCELED",
                        "canceled_running": "CANCELED", "not_started": "NOT_STARTED", "printing": "SUCCESS",
                        "daily_orders": "SUCCESS", "daily_orders_rerun": "SUCCESS",
                        **{kind: "SUCCESS" for kind in server.SEED_KEYS if kind.startswith("diamond_")}}


def event_types(url: str, run_id: str) -> list[str | None]:
    return [e["eventType"] for e in fetch_events(url, run_id)]


def test_launched_runs_went_through_the_queue(demo, etl_events, failing_events):
    for events in (etl_events, failing_events):
        types = [e["eventType"] for e in events]
        assert types[:2] == ["RUN_ENQUEUED", "RUN_STARTING"]
        assert types.index("RUN_START") > 1
    # Held by the tag limit of 0: enqueued, never dequeued.
    assert event_types(demo.url, demo.runs["queued"]) == ["RUN_ENQUEUED"]
    assert event_types(demo.url, demo.runs["not_started"]) == []


def test_canceled_runs_were_canceled_while_queued_and_while_a_step_ran(demo):
    assert event_types(demo.url, demo.runs["canceled_queued"]) == ["RUN_ENQUEUED", "RUN_CANCELING", "RUN_CANCELED"]
    events = fetch_events(demo.url, demo.runs["canceled_running"])
    types = [e["eventType"] for e in events]
    assert types[:2] == ["RUN_ENQUEUED", "RUN_STARTING"] and "RUN_START" in types
    started = [e["stepKey"] for e in events if e["eventType"] == "STEP_START"]
    assert started == ["slow_start"]  # interrupted: the steps after it never started
    assert types.index("RUN_CANCELING") > types.index("STEP_START")
    assert "RUN_CANCELED" in types and "RUN_SUCCESS" not in types
    # The run worker's exit is stored too: wait() returned only once it was.
    assert types[-1] == "ENGINE_EVENT"


def test_wait_refuses_runs_that_can_never_end(demo):
    with pytest.raises(RuntimeError, match="held in the queue"):
        demo.dagster.wait(demo.runs["queued"], timeout=5)
    with pytest.raises(RuntimeError, match="never launched"):
        demo.dagster.wait(demo.runs["not_started"], timeout=5)
    assert demo.dagster.wait(demo.runs["canceled_queued"], timeout=5) == "CANCELED"


def test_launch_reports_what_dagster_refused(demo):
    with pytest.raises(RuntimeError, match="RunConfigValidationInvalid"):
        demo.dagster.launch("etl_job", run_config={"ops": {"no_such_op": {}}})
    with pytest.raises(RuntimeError, match="did not terminate"):
        demo.dagster.terminate("no-such-run")


def test_etl_run_has_the_documented_step_keys(etl_events):
    assert {e["stepKey"] for e in etl_events if e["stepKey"]} == ETL_STEP_KEYS


def test_etl_run_retries_and_materializes(etl_events):
    types = [e["eventType"] for e in etl_events]
    assert types.count("STEP_UP_FOR_RETRY") == 1
    assert types.count("STEP_RESTARTED") == 1
    retried = {e["stepKey"] for e in etl_events if e["eventType"] == "STEP_UP_FOR_RETRY"}
    assert retried == {"clean_orders"}
    (materialization,) = [e for e in etl_events if e["eventType"] == "ASSET_MATERIALIZATION"]
    assert materialization["assetKey"]["path"] == ["warehouse", "sales_by_region"]
    kinds = {entry["__typename"] for entry in materialization["metadataEntries"]}
    assert kinds >= {
        "IntMetadataEntry",
        "FloatMetadataEntry",
        "TextMetadataEntry",
        "PathMetadataEntry",
        "UrlMetadataEntry",
        "MarkdownMetadataEntry",
        "JsonMetadataEntry",
    }


def test_etl_run_logs_at_every_level_with_awkward_messages(etl_events):
    log_lines = [e for e in etl_events if e["eventType"] is None]
    assert {e["level"] for e in log_lines} == {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    messages = [e["message"] for e in log_lines]
    assert "naïve café ✓ 数据 🚀" in messages
    assert any("\n" in m and "\t" in m for m in messages)


def test_etl_run_has_a_chatty_step(etl_events):
    per_step: dict[str, int] = {}
    for event in etl_events:
        if event["stepKey"]:
            per_step[event["stepKey"]] = per_step.get(event["stepKey"], 0) + 1
    assert max(per_step, key=per_step.get) == "clean_customers"
    assert per_step["clean_customers"] >= 300


def test_failing_run_fails_with_a_cause_chain_and_skips_downstream(failing_events):
    (failure,) = [e for e in failing_events if e["eventType"] == "STEP_FAILURE"]
    assert failure["stepKey"] == "parse_invoices"
    # Dagster wraps the op's exception: the user's chain starts at the first cause.
    error = failure["error"]
    assert error["className"] == "DagsterExecutionStepExecutionError"
    assert error["cause"]["className"] == "ValueError"
    assert "invoice 2 has no currency" in error["cause"]["message"]
    assert error["cause"]["cause"]["className"] == "KeyError"
    # Dagster emits no STEP_SKIPPED here: only an ERROR log line.
    assert not [e for e in failing_events if e["eventType"] == "STEP_SKIPPED"]
    skipped = [
        e
        for e in failing_events
        if e["eventType"] is None
        and e["level"] == "ERROR"
        and "Dependencies for step publish_invoices failed" in e["message"]
    ]
    assert len(skipped) == 1
    assert skipped[0]["stepKey"] == "publish_invoices"


def test_slow_job_can_be_watched_while_it_runs(demo):
    seconds = {"config": {"seconds": 2}}
    run_config = {"ops": {op: seconds for op in ("slow_start", "slow_middle", "slow_end")}}
    run_id = demo.dagster.launch("slow_job", run_config=run_config)  # through the queue
    seen: list[str] = []
    events_while_running: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # Events first, then the status: a count taken while the status still reads STARTED
        # cannot hold the "Process for run exited" event stored after the run's end.
        n_events = len(fetch_events(demo.url, run_id))
        status = run_status(demo.url, run_id)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "STARTED":
            events_while_running.append(n_events)
        if status in server.TERMINAL_STATUSES:
            break
        time.sleep(0.25)
    assert seen[-1] == "SUCCESS", seen
    assert "STARTED" in seen, seen
    # Events arrive while the run is in progress, not only at its end.
    assert events_while_running[0] < events_while_running[-1] < len(fetch_events(demo.url, run_id))
    assert demo.dagster.wait(run_id, timeout=30) == "SUCCESS"


def test_stop_kills_every_process_group_and_removes_the_home():
    with DemoDagster() as dagster:
        home = dagster.home
        dagster.start()  # code server, webserver, daemon
        queued = dagster.launch("slow_job")  # run by the code server, launched by the daemon
        dagster.launch_in_background("slow_job")  # run by a process of its own
        dagster.wait_for_event(queued, "STEP_START")
        pids = dagster.pids()
        assert len(pids) == 4 and all(group_alive(pid) for pid in pids)
    assert not [pid for pid in pids if group_alive(pid)]
    assert not home.exists()


def test_start_webserver_refuses_a_taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with DemoDagster(port=port) as dagster:
            with pytest.raises(RuntimeError, match=f"port {port} .* already in use"):
                dagster.start_webserver()
            assert dagster.pids() == []


def test_missing_dagster_raises_demo_not_installed(monkeypatch):
    monkeypatch.setattr(server.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DemoNotInstalled, match=r"pip install 'runlens\[demo\]'"):
        DemoDagster()
