"""Step analytics over GraphQL events agree with Dagster's own Run.stepStats."""

from __future__ import annotations

import time

import matplotlib
import pandas as pd
import pytest

import runlens

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def client(demo):
    return runlens.Client(demo.url, progress=False)


def assert_agrees_with_step_stats(steps: pd.DataFrame, stats: pd.DataFrame) -> None:
    executed = steps[steps["step_key"].isin(stats["step_key"].astype(str))].set_index("step_key")
    assert len(executed) == len(stats)
    for row in stats.itertuples():
        mine = executed.loc[row.step_key]
        assert mine["status"] == row.status, row.step_key
        assert mine["attempts"] == row.attempts, row.step_key
        assert abs((mine["start"] - row.start).total_seconds()) < 1e-3, row.step_key
        if pd.isna(row.end):
            assert pd.isna(mine["end"]), row.step_key
        else:
            assert abs((mine["end"] - row.end).total_seconds()) < 1e-3, row.step_key


@pytest.mark.parametrize("name", ["etl", "failing"])
def test_step_durations_agree_with_step_stats(client, demo, name):
    run_id = demo.runs[name]
    assert_agrees_with_step_stats(runlens.step_durations(client.events(run_id)), client.step_stats(run_id))


def test_retry_dynamic_and_skipped_steps(client, demo):
    etl = runlens.step_durations(client.events(demo.runs["etl"])).set_index("step_key")
    assert etl.loc["clean_orders", "attempts"] == 2 and etl.loc["clean_orders", "retry_wait"] > pd.Timedelta(0)
    assert {k for k in etl.index if k.startswith("process_region[")} == {
        "process_region[emea]", "process_region[amer]", "process_region[apac]"}
    failing = runlens.step_durations(client.events(demo.runs["failing"])).set_index("step_key")
    assert failing.loc["parse_invoices", "status"] == "FAILURE"
    assert failing.loc["parse_invoices", "error_class"] == "ValueError"
    assert failing.loc["publish_invoices", "status"] == "SKIPPED"
    assert "publish_invoices" not in set(client.step_stats(demo.runs["failing"])["step_key"].astype(str))


def test_run_summary_of_the_failed_run(client, demo):
    run = client.run(demo.runs["failing"])
    summary = runlens.run_summary(client.events(run.id), run)
    assert summary.status == "FAILURE" and summary.first_failure.step_key == "parse_invoices"
    assert summary.steps_by_status["SKIPPED"] == 1
    assert "parse_invoices" in str(summary) and "<table" in summary._repr_html_()


def test_timeline_has_one_bar_per_attempt(client, demo):
    events = client.events(demo.runs["etl"])
    steps = runlens.step_durations(events)
    ax = runlens.plot_timeline(events)
    bars = [p for p in ax.patches if p.get_gid() == "attempt"]
    assert len(bars) == steps["attempts"].sum()
    matplotlib.pyplot.close(ax.figure)


def test_cross_run_trend(client, demo):
    runs = client.runs(job="etl_job", limit=50)
    steps = runlens.step_durations(client.events_many(runs["run_id"]))
    trend = runlens.duration_trend(steps, runs)
    assert set(trend["run_id"]) == set(runs["run_id"])
    assert trend["duration"].dtype == "float64" and (trend["duration"] >= 0).all()


def test_a_running_step_is_in_progress_and_agrees_with_step_stats(client, demo):
    run_id = demo.dagster.launch_in_background("slow_job")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            steps = runlens.step_durations(client.events(run_id))
            if (steps["status"] == "IN_PROGRESS").any():
                break
            time.sleep(0.3)
        running = steps[steps["status"] == "IN_PROGRESS"]
        assert len(running) == 1 and running["end"].isna().all()
    finally:
        demo.dagster.wait(run_id)
    assert_agrees_with_step_stats(runlens.step_durations(client.events(run_id)), client.step_stats(run_id))
