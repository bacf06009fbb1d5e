"""Step analytics over GraphQL events agree with Dagster's own Run.stepStats.

The demo's queued path (#12 defect 13) gives it runs of every kind a deployment holds:
``canceled_running``, ``canceled_queued``, ``queued`` and ``not_started`` are analysed too.
"""

from __future__ import annotations

import time

import matplotlib
import pandas as pd
import pytest

import runlens


def run_of(demo, kind: str) -> str:
    assert kind in demo.runs, f"the demo seeds no {kind} run: {sorted(demo.runs)}"
    return demo.runs[kind]


def assert_agrees_with_step_stats(steps: pd.DataFrame, stats: pd.DataFrame) -> None:
    executed = steps[steps["step_key"].isin(stats["step_key"].astype(str))].set_index("step_key")
    assert len(executed) == len(stats)
    for row in stats.itertuples():
        mine = executed.loc[row.step_key]
        if mine["status"] == "CANCELED":
            # Deliberately not Dagster's word: it says FAILURE for an interrupted step (with
            # an end) and IN_PROGRESS for one the cancellation left open (without).
            assert row.status == ("IN_PROGRESS" if pd.isna(row.end) else "FAILURE"), row.step_key
        else:
            assert mine["status"] == row.status, row.step_key
        assert mine["attempts"] == row.attempts, row.step_key
        assert abs((mine["start"] - row.start).total_seconds()) < 1e-3, row.step_key
        if pd.isna(row.end):
            assert pd.isna(mine["end"]), row.step_key
        else:
            assert abs((mine["end"] - row.end).total_seconds()) < 1e-3, row.step_key


@pytest.mark.parametrize("name", ["etl", "failing", "canceled_running"])
def test_step_durations_agree_with_step_stats(client, demo, name):
    run_id = run_of(demo, name)
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


def test_the_parts_of_a_retried_step_add_up(client, demo):
    """#12 defect 7 on a real run: the retry's worker start-up is not also in retry_wait."""
    row = runlens.step_durations(client.events(demo.runs["etl"])).set_index("step_key").loc["clean_orders"]
    (_, first_end), (second_start, _) = row["attempt_spans"]
    retry_startup = sum((min(e, second_start) - max(s, first_end) for s, e in row["worker_spans"]
                         if s < second_start and e > first_end), pd.Timedelta(0))
    assert row["retry_wait"] + retry_startup == second_start - first_end
    assert row["attempt_time"] + row["retry_wait"] + retry_startup == row["duration"]


def test_run_summary_of_the_failed_run(client, demo):
    run = client.run(demo.runs["failing"])
    events = client.events(run.id)
    summary = runlens.run_summary(events, run)
    assert summary.status == "FAILURE" and summary.first_failure.step_key == "parse_invoices"
    assert summary.steps_by_status["SKIPPED"] == 1
    assert "parse_invoices" in str(summary) and "<table" in summary._repr_html_()
    if "error_cause_stack" in events.columns:  # #12 defect 5: the user's own line
        assert summary.first_failure.where.endswith("in parse_invoices"), summary.first_failure
        assert "definitions.py" in summary.first_failure.where and "Where" in str(summary)


def test_a_canceled_run_has_canceled_steps_and_no_failure(client, demo):
    """#12 defect 6: the step the cancellation interrupted is CANCELED, not a failure."""
    run = client.run(run_of(demo, "canceled_running"))
    events = client.events(run.id)
    steps = runlens.step_durations(events).set_index("step_key")
    assert steps.loc["slow_start", "status"] == "CANCELED"
    assert pd.isna(steps.loc["slow_start", "error_class"]) and pd.isna(steps.loc["slow_start", "error_message"])
    summary = runlens.run_summary(events, run)
    assert summary.status == "CANCELED" and summary.first_failure is None
    assert summary.steps_by_status["FAILURE"] == 0 and summary.steps_by_status["CANCELED"] >= 1
    assert summary.wall_time is not None and summary.wall_time > pd.Timedelta(0)


@pytest.mark.parametrize("kind", ["canceled_queued", "not_started", "queued"])
def test_a_run_that_never_started_has_no_wall_time(client, demo, kind):
    """#12 defect 6: no RUN_START, no duration (Dagster's startTime = endTime is not a start)."""
    run = client.run(run_of(demo, kind))
    summary = runlens.run_summary(client.events(run.id), run)
    assert summary.wall_time is None and summary.started is None, summary
    assert summary.steps_by_status == dict.fromkeys(summary.steps_by_status, 0)


def test_a_cut_or_filtered_frame_warns(client, demo):
    """#12 defect 4: a limit or a type filter makes the analysis say it may mislead."""
    run_id = demo.runs["etl"]
    for events in (client.events(run_id, limit=20), client.events(run_id, types="STEP_START,STEP_SUCCESS")):
        with pytest.warns(runlens.RunlensWarning, match=r"client\.events\(run_id\)"):
            runlens.step_durations(events)
        with pytest.warns(runlens.RunlensWarning, match=r"client\.events\(run_id\)"):
            runlens.run_summary(events)


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
    # Every run with steps, once; queued and never-launched runs have none.
    assert set(trend["run_id"]) == set(steps["run_id"].astype(str)) <= set(runs["run_id"])
    assert trend["duration"].dtype == "float64" and (trend["duration"].dropna() >= 0).all()
    # #12 defect 11: a plain pd.concat of per-run frames gives the same trend.
    plain = pd.concat([runlens.step_durations(client.events(r)) for r in runs["run_id"]], ignore_index=True)
    pd.testing.assert_frame_equal(runlens.duration_trend(plain, runs), trend)


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
