"""The fetch layer against a real dagster-webserver, compared with Dagster's own numbers."""

from __future__ import annotations

import pandas as pd
import pytest

import runlens
from runlens import errors
from runlens.frames import EVENT_COLUMNS
from tests.truth import dagster_truth


@pytest.fixture(scope="module")
def truth(demo):
    return {name: dagster_truth(demo.dagster.home, run_id) for name, run_id in demo.runs.items()}


@pytest.mark.parametrize("name", ["etl", "failing"])
def test_every_event_in_storage_order(client, demo, truth, name):
    events = client.events(demo.runs[name])
    assert len(events) == truth[name]["n_events"]
    assert events["seq"].tolist() == list(range(len(events)))
    got = [None if pd.isna(t) else t for t in events["event_type"].astype(object)]
    assert got == truth[name]["event_types"]
    assert events.attrs["complete"] is True and events.attrs["run_ids"] == [demo.runs[name]]


def test_dtypes_are_as_documented(client, demo):
    events = client.events(demo.runs["etl"])
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert str(events["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert events["level"].cat.ordered and list(events["level"].cat.categories) == list(runlens.RunEventLevel)
    for column in ("run_id", "event_type", "step_key", "kind", "error_class"):
        assert isinstance(events[column].dtype, pd.CategoricalDtype), column
    assert events["message"].dtype == "string"
    # plain log lines: eventType null, at every level
    logs = events[events["event_type"].isna()]
    assert set(logs["level"].astype(str)) >= {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def test_pages_of_100_reassemble_to_the_whole_log(client, demo, truth):
    pages = list(client.iter_event_pages(demo.runs["etl"], page_size=100))
    assert len(pages) >= 3
    assert sum(len(p) for p in pages) == truth["etl"]["n_events"]
    assert all(len(p) == 100 for p in pages[:-1])


def test_step_stats_equal_dagsters(client, demo, truth):
    for name, run_id in demo.runs.items():
        stats = client.step_stats(run_id)
        expected = truth[name]["step_stats"]
        assert sorted(stats["step_key"].astype(str)) == sorted(expected)
        for row in stats.itertuples():
            want = expected[row.step_key]
            assert row.status == want["status"] and row.attempts == want["attempts"]
            assert abs(row.start.timestamp() - want["start"]) < 1e-3
            if want["end"] is not None:
                assert abs(row.end.timestamp() - want["end"]) < 1e-3


def test_run_metadata(client, demo, truth):
    run = client.run(demo.runs["etl"])
    assert run.status == runlens.RunStatus.SUCCESS == truth["etl"]["status"]
    assert run.job_name == "etl_job" and run.started_at.tzinfo is not None
    assert run.ended_at > run.started_at and run.stats.steps_succeeded > 0
    failing = client.run(demo.runs["failing"])
    assert failing.status == "FAILURE" and failing.stats.steps_failed >= 1


def test_runs_filters(client, demo):
    everything = client.runs()
    assert set(demo.runs.values()) <= set(everything["run_id"])
    assert everything["created"].is_monotonic_decreasing
    etl = client.runs(job="etl_job")
    assert demo.runs["etl"] in set(etl["run_id"]) and set(etl["job_name"].astype(str)) == {"etl_job"}
    failed = client.runs(statuses=["FAILURE"])
    assert demo.runs["failing"] in set(failed["run_id"]) and demo.runs["etl"] not in set(failed["run_id"])
    assert len(client.runs(limit=1)) == 1
    assert everything.attrs["count"] == len(everything)


def test_events_many_combines_runs(client, demo, truth):
    both = client.events_many([demo.runs["etl"], demo.runs["failing"]], max_workers=2)
    assert len(both) == truth["etl"]["n_events"] + truth["failing"]["n_events"]
    assert list(both["run_id"].cat.categories) == [demo.runs["etl"], demo.runs["failing"]]
    assert isinstance(both["event_type"].dtype, pd.CategoricalDtype)


def test_filters_with_limit_scan_the_whole_log(client, demo, truth):
    # the last stored event of a finished run comes after RUN_SUCCESS: only a full scan reaches it
    types = truth["etl"]["event_types"]
    last_engine = max(i for i, t in enumerate(types) if t == "ENGINE_EVENT")
    found = client.events(demo.runs["etl"], types="ENGINE_EVENT", limit=1000)
    assert found["seq"].iloc[-1] == last_engine
    first = client.events(demo.runs["etl"], types="RUN_SUCCESS", limit=1)
    assert first["seq"].tolist() == [types.index("RUN_SUCCESS")]


def test_a_step_failure_keeps_where_the_user_code_raised(client, demo):
    failures = client.events(demo.runs["failing"], types="STEP_FAILURE")
    row = failures[failures["step_key"] == "parse_invoices"].iloc[0]
    # error_stack is Dagster's wrapper; error_cause_stack is the op's own frames
    assert "definitions.py" in row["error_cause_stack"] and "parse_invoices" in row["error_cause_stack"]
    assert "definitions.py" not in (row["error_stack"] if isinstance(row["error_stack"], str) else "")


def test_a_limit_says_whether_more_events_follow(client, demo, truth):
    n = truth["etl"]["n_events"]
    cut = client.events(demo.runs["etl"], limit=n - 1)
    exact = client.events(demo.runs["etl"], limit=n)
    assert cut.attrs["has_more"] is True and cut.attrs["complete"] is False
    assert exact.attrs["has_more"] is False and exact.attrs["complete"] is True
    steps = client.events(demo.runs["etl"], types="STEP_START", limit=1)
    assert len(steps) == 1 and steps.attrs["has_more"] is True


def test_events_many_can_skip_a_missing_run(client, demo, truth):
    found = client.events_many([demo.runs["etl"], "no-such-run"], errors="skip")
    assert len(found) == truth["etl"]["n_events"] and list(found.attrs["skipped"]) == ["no-such-run"]


def test_unknown_run(client):
    with pytest.raises(errors.RunNotFound, match="no-such-run") as info:
        client.events("no-such-run")
    assert "resume" not in str(info.value)
    with pytest.raises(errors.RunNotFound):
        client.run("no-such-run")


def test_invalid_cursor_is_a_server_error(client, demo):
    with pytest.raises(errors.ServerError):
        list(client.iter_event_pages(demo.runs["etl"], after_cursor="not-a-cursor"))


def test_closed_port_is_a_transport_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.TransportError, match=f"127.0.0.1:{port}"):
        runlens.Client(f"http://127.0.0.1:{port}", max_retries=1, backoff=0).run("x")


def test_ui_root_url_works_because_graphql_is_appended(demo, client):
    assert runlens.Client(demo.base_url).run(demo.runs["etl"]).id == demo.runs["etl"]


def test_a_token_sent_to_oss_is_harmless(demo):
    run = runlens.Client(demo.url, token="not-needed-here").run(demo.runs["etl"])
    assert run.id == demo.runs["etl"]
