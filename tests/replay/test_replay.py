"""The fetch layer and CLI, replayed from cassettes recorded off the real demo server.

Expected numbers come from cassettes/manifest.json, which the recorder fills from
Dagster's own storage (not from runlens), so these tests compare with Dagster.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

import runlens
from runlens import errors
from runlens.cli import main
from runlens.logs import strip_ansi


@pytest.fixture
def client(manifest):
    return runlens.Client(manifest["url"], progress=False, max_retries=0)


def test_etl_events_match_dagsters_count_and_order(client, manifest, cassette):
    truth = manifest["truth"]["etl"]
    with cassette("etl_events"):
        events = client.events(manifest["runs"]["etl"])
    assert len(events) == truth["n_events"]
    assert [None if pd.isna(t) else t for t in events["event_type"].astype(object)] == truth["event_types"]
    assert events["seq"].is_monotonic_increasing
    assert events["step_key"].astype(str).str.contains(r"\[", regex=True).any()  # dynamic steps


def test_pages_of_100_reassemble(client, manifest, cassette):
    with cassette("etl_pages_100"):
        pages = list(client.iter_event_pages(manifest["runs"]["etl"], page_size=100))
    assert len(pages) > 2 and sum(map(len, pages)) == manifest["truth"]["etl"]["n_events"]


def test_run_and_step_stats(client, manifest, cassette):
    truth = manifest["truth"]["etl"]
    with cassette("etl_run"):
        run = client.run(manifest["runs"]["etl"])
        stats = client.step_stats(manifest["runs"]["etl"])
    assert str(run.status) == truth["status"] and run.job_name == truth["job_name"]
    assert dict(zip(stats["step_key"].astype(str), stats["attempts"])) == {
        k: v["attempts"] for k, v in truth["step_stats"].items()
    }


def test_failed_run(client, manifest, cassette):
    truth = manifest["truth"]["failing"]
    with cassette("failing_run"):
        run = client.run(manifest["runs"]["failing"])
        events = client.events(manifest["runs"]["failing"])
        stats = client.step_stats(manifest["runs"]["failing"])
    assert run.status == "FAILURE" and len(events) == truth["n_events"]
    failures = events[events["event_type"] == "STEP_FAILURE"]
    assert len(failures) == truth["event_types"].count("STEP_FAILURE")
    assert failures["error_class"].notna().all()
    assert dict(zip(stats["step_key"].astype(str), stats["status"].astype(str))) == {
        k: v["status"] for k, v in truth["step_stats"].items()
    }


def test_run_not_found(client, cassette):
    with cassette("run_not_found"), pytest.raises(errors.RunNotFound):
        client.run("no-such-run")
    with cassette("events_not_found"), pytest.raises(errors.RunNotFound):
        client.events("no-such-run")


def test_invalid_cursor(client, manifest, cassette):
    with cassette("invalid_cursor"), pytest.raises(errors.ServerError):
        list(client.iter_event_pages(manifest["runs"]["etl"], after_cursor="not-a-cursor"))


def test_runs(client, manifest, cassette):
    with cassette("runs"):
        everything = client.runs()
        etl = client.runs(job="etl_job")
        failed = client.runs(statuses=["FAILURE"])
        one = client.runs(limit=1)
    assert set(manifest["runs"].values()) <= set(everything["run_id"])
    assert set(etl["job_name"].astype(str)) == {"etl_job"}
    assert manifest["runs"]["failing"] in set(failed["run_id"])
    assert len(one) == 1 and str(everything["created"].dtype) == "datetime64[ms, UTC]"


def invoke(manifest, *args):
    return CliRunner().invoke(main, [*args, "--url", manifest["url"]])


def test_cli_run_get(manifest, cassette):
    run_id = manifest["runs"]["etl"]
    with cassette("cli_run_get"):
        human = invoke(manifest, "run", "get", run_id)
        doc = json.loads(invoke(manifest, "run", "get", run_id, "--json").output)
    assert human.exit_code == 0 and f"Run ID: {run_id}" in human.output and "Status: SUCCESS" in human.output
    assert doc["id"] == run_id and doc["created_at"].endswith("Z")


def test_cli_run_events(manifest, cassette):
    run_ids = manifest["runs"]
    with cassette("cli_run_events"):
        doc = json.loads(invoke(manifest, "run-events", "get", run_ids["etl"], "--json", "--limit", "100000").output)
        table = invoke(manifest, "run-events", "get", run_ids["etl"])
        failing = invoke(manifest, "run-events", "get", run_ids["failing"])
    assert doc["count"] == manifest["truth"]["etl"]["n_events"]
    assert [e["eventType"] for e in doc["events"]] == manifest["truth"]["etl"]["event_types"]
    assert table.exit_code == 0 and "Total events: 100" in table.output
    assert "Errors:" in failing.output


def test_cli_not_found(manifest, cassette):
    with cassette("cli_not_found"):
        human = invoke(manifest, "run", "get", "no-such-run")
        js = invoke(manifest, "run-events", "get", "no-such-run", "--json")
    assert human.exit_code == 3 and js.exit_code == 3


# Written independently of tests/vcr_setup.py's SECRET_HEADERS on purpose: a header the
# recorder forgets to filter must still fail here. Header names compare case-insensitively.
_SECRET_NAMES = {"authorization", "proxy-authorization", "cookie", "set-cookie", "dagster-cloud-api-token"}


def _secret_headers(headers: dict) -> list[str]:
    return [name for name in headers if name.lower() in _SECRET_NAMES or "token" in name.lower()]


def test_cassettes_hold_no_token():
    import yaml

    from tests.vcr_setup import CASSETTES

    cassettes = sorted(CASSETTES.glob("*.yaml"))
    assert cassettes, "no cassettes to check"
    for path in cassettes:
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            for part in ("request", "response"):
                found = _secret_headers(interaction[part].get("headers") or {})
                assert not found, f"{path.name}: {part} holds {found}"


def test_secret_header_check_catches_any_case():
    assert _secret_headers({"AUTHORIZATION": ["Bearer x"], "dagster-cloud-api-token": ["t"], "X-My-Token": ["t"]}) == [
        "AUTHORIZATION", "dagster-cloud-api-token", "X-My-Token"]
    assert _secret_headers({"Content-Type": ["application/json"]}) == []


# ------------------------------------------------------- runs a real deployment also holds

@pytest.mark.parametrize("kind", ["queued", "canceled_queued", "canceled_running", "not_started"])
def test_runs_that_never_ran_or_were_canceled(client, manifest, cassette, kind):
    """Counts and statuses from Dagster's storage; runlens adds CANCELED steps and no fake durations."""
    import warnings

    truth = manifest["truth"][kind]
    run_id = manifest["runs"][kind]
    with cassette(f"{kind}_run"):
        run = client.run(run_id)
        events = client.events(run_id)
        stats = client.step_stats(run_id)
    assert str(run.status) == truth["status"] and len(events) == truth["n_events"]
    assert [None if pd.isna(t) else t for t in events["event_type"].astype(object)] == truth["event_types"]
    assert dict(zip(stats["step_key"].astype(str), stats["status"].astype(str))) == {
        k: v["status"] for k, v in truth["step_stats"].items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a whole, unfiltered frame: no RunlensWarning
        summary = runlens.run_summary(events, run)
        steps = runlens.step_durations(events)
    started = "RUN_START" in truth["event_types"]
    assert (run.duration is None) == (not started) and (summary.wall_time is None) == (not started)
    if kind == "canceled_running":
        # Dagster says FAILURE for the interrupted step; runlens says CANCELED, with no error.
        # The steps after it never ran: SKIPPED, as for steps abandoned after a failure.
        status = dict(zip(steps["step_key"].astype(str), steps["status"].astype(str)))
        assert {k: status[k] for k in truth["step_stats"]} == {k: "CANCELED" for k in truth["step_stats"]}
        assert set(status.values()) <= {"CANCELED", "SKIPPED"} and steps["error_class"].isna().all()
    else:
        assert len(steps) == 0


# ---------------------------------------------------------------------- compute logs (#16)


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def _failing_step_logs(manifest) -> dict:
    """Dagster's own files of the failing step (parse_invoices): the one holding its printed block."""
    files = manifest["compute_logs"]["failing"].values()
    (found,) = [f for f in files if "parse_invoices: stdout begins" in f.get("stdout", "")]
    return found


def test_failing_step_logs_equal_dagsters_files(client, manifest, cassette):
    run_id = manifest["runs"]["failing"]
    truth = _failing_step_logs(manifest)
    with cassette("failing_logs"):
        both = client.logs(run_id, "parse_invoices", stream="both")
        tail = client.logs(run_id, "parse_invoices", max_bytes=1000)
        lines = client.log_lines(run_id)
    assert [(p.stream, p.text) for p in both.parts] == [("stdout", truth["stdout"]), ("stderr", truth["stderr"])]
    assert tail.truncated and len(tail.encode()) <= 1000
    assert _last_line(tail) == _last_line(truth["stderr"])
    mine = lines[lines["step_key"] == "parse_invoices"]
    assert mine[mine["stream"] == "stdout"]["text"].tolist()[0] == "parse_invoices: stdout begins"
    assert mine["text"].str.contains("ValueError: invoice 2 has no currency").any()
    assert set(lines["step_key"]) == {"fetch_invoices", "parse_invoices"}


def test_logs_of_a_queued_run(client, manifest, cassette):
    with cassette("logs_not_found"), pytest.raises(errors.LogsNotFound, match="QUEUED"):
        client.logs(manifest["runs"]["queued"])


def test_cli_run_logs(manifest, cassette):
    runs, truth = manifest["runs"], _failing_step_logs(manifest)
    with cassette("cli_run_logs"):
        stdout = invoke(manifest, "run", "logs", runs["failing"], "--step", "parse_invoices", "--stdout")
        tail = invoke(manifest, "run", "logs", runs["failing"], "--step", "parse_invoices", "--tail", "5", "--json")
        queued = invoke(manifest, "run", "logs", runs["queued"], "--json")
    # Not a terminal: click strips the ANSI colour codes (--json keeps them).
    assert stdout.exit_code == 0 and stdout.stdout == strip_ansi(truth["stdout"])
    doc = json.loads(tail.stdout)
    assert tail.exit_code == 0 and _last_line(doc["parts"][0]["text"]) == _last_line(truth["stderr"])
    assert queued.exit_code == 3 and json.loads(queued.stderr)["code"] == "LOGS_NOT_FOUND"


def test_explain_of_the_first_slow_diamond_run(client, manifest, cassette):
    """Recorded off the demo: the steps' durations are Dagster's stepStats, the baseline is the
    alike runs (newest first), b alone is flagged and the critical path is a → b → d."""
    runs, truth = manifest["runs"], manifest["truth"]
    with cassette("diamond_explain"):
        report = runlens.explain_run(runs["diamond_slow_1"], client, baseline=20)
    alike = sorted((k for k in runs if k.startswith("diamond_alike_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    assert report.comparison.baseline_runs == [runs[k] for k in reversed(alike)]
    stats = truth["diamond_slow_1"]["step_stats"]
    durations = dict(zip(report.comparison.steps["step_key"], report.comparison.steps["duration"], strict=True))
    assert durations == pytest.approx({k: s["end"] - s["start"] for k, s in stats.items()}, abs=2e-3)
    base_b = sorted(truth[k]["step_stats"]["b"]["end"] - truth[k]["step_stats"]["b"]["start"] for k in alike)
    row = report.comparison.steps.set_index("step_key").loc["b"]
    assert row["baseline_median"] == pytest.approx(float(pd.Series(base_b).median()), abs=2e-3)
    assert report.comparison.flagged["step_key"].tolist() == ["b"]
    assert report.anatomy.critical_path.keys == ["a", "b", "d"]
    assert abs((report.anatomy.parts.sum() - report.anatomy.total).total_seconds()) < 0.005
