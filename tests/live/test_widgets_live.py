"""runlens.widgets against a real Dagster: follow a run in progress, browse and compare runs."""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from runlens import Client
from runlens.steps import step_durations
from runlens.widgets import runs_browser, timeline
from tests.truth import dagster_truth

INTERVAL = 1.0
COLUMNS = ["seq", "event_type", "step_key", "level", "message", "timestamp", "error_class"]


def as_records(frame: pd.DataFrame) -> list[tuple]:
    """Rows as plain tuples (NA -> None), so categories and dtypes do not matter."""
    return [tuple(None if pd.isna(v) else v for v in row)
            for row in frame[COLUMNS].astype(object).itertuples(index=False)]


def test_follow_mode_gets_every_event_of_a_run_in_progress_exactly_once(demo):
    client = Client(demo.url)
    figures_before = plt.get_fignums()
    run_id = demo.dagster.launch_in_background("slow_job")
    live = timeline(run_id, client=client, follow=True, interval=INTERVAL)
    # The runs browser shows the newest slow_job run, which is in progress: it follows too.
    browser = runs_browser(client, job="slow_job")
    try:
        assert browser.run_select.value == run_id
        assert live.wait(timeout=300), "the widget did not see the run end"
        final_status = demo.dagster.wait(run_id, timeout=120)
        assert browser.timeline is not None and browser.timeline.wait(timeout=60)

        assert live.error is None, live.error
        assert live.status == final_status == "SUCCESS"
        stored = client.events(run_id)
        truth = dagster_truth(demo.dagster.home, run_id)
        n = truth["n_events"]
        # Exactly what Dagster stores: nothing missing, nothing twice, same order.
        assert len(live.events) == len(stored) == n
        assert live.events["seq"].tolist() == list(range(n))
        assert as_records(live.events) == as_records(stored)
        assert [None if pd.isna(t) else t for t in live.events["event_type"].astype(object)] == truth["event_types"]
        assert as_records(browser.timeline.events) == as_records(stored)

        # It followed the run while it ran: many batches, the first one long before the end.
        batches = live.batches
        assert len(batches) >= 5 and sum(b["n"] for b in batches) == n
        first_types = set(live.events["event_type"].iloc[: batches[0]["n"]].dropna().astype(str))
        assert "RUN_SUCCESS" not in first_types
        # Pushed over the webserver's websocket; redraws throttled, never more than one a batch.
        assert live.transport == "websocket" and 2 <= live.redraws <= len(batches) + 1
        lags = [(b["received"] - b["first_event"]).total_seconds() for b in batches[1:]]
        print(f"\nfollow: {n} events in {len(batches)} batches over {live.polls} polls; "
              f"lag of the oldest event of each batch: max {max(lags):.2f} s, "
              f"median {sorted(lags)[len(lags) // 2]:.2f} s (interval {INTERVAL} s)", file=sys.stderr)
        # A batch's oldest event is at most one interval plus a round trip old.
        assert max(lags) < INTERVAL + 5.0
        assert plt.get_fignums() == figures_before
        assert "followed to the end" in live.status_bar.value
    finally:
        live.close()
        browser.close()


@pytest.fixture(scope="module")
def two_etl_runs(demo) -> tuple[str, str]:
    """The seeded etl_job run and a newer one."""
    return demo.runs["etl"], demo.dagster.execute("etl_job")


def test_runs_browser_summary_timeline_and_comparison(demo, two_etl_runs):
    client = Client(demo.url)
    older, newer = two_etl_runs
    browser = runs_browser(client, job="etl_job")
    try:
        ids = [v for _, v in browser.run_select.options]
        assert older in ids and newer in ids and ids.index(newer) < ids.index(older)

        browser.select(older, a=older, b=newer)
        assert older in browser.summary.value and "etl_job" in browser.summary.value
        assert "SUCCESS" in browser.summary.value
        stored = client.events(older)
        assert as_records(browser.timeline.events) == as_records(stored)
        assert browser.timeline.figure is not None

        comparison = browser.comparison
        truth_a = dagster_truth(demo.dagster.home, older)["step_stats"]
        truth_b = dagster_truth(demo.dagster.home, newer)["step_stats"]
        assert sorted(comparison["step_key"]) == sorted(truth_a) == sorted(truth_b)
        for row in comparison.itertuples():
            for got, truth in ((row.duration_a, truth_a), (row.duration_b, truth_b)):
                step = truth[row.step_key]
                assert got == pytest.approx(step["end"] - step["start"], abs=2e-3), row.step_key
        assert comparison["delta"].tolist() == pytest.approx(
            (comparison["duration_b"] - comparison["duration_a"]).tolist())
        steps_b = step_durations(client.events(newer))
        assert comparison["duration_b"].sum() == pytest.approx(steps_b["duration"].dt.total_seconds().sum())
        assert "B − A (s)" in browser.compare_table.value
        assert browser.compare_plot.outputs[0]["data"]["image/png"]
    finally:
        browser.close()


def test_runs_browser_compares_runs_that_ran_on_a_server_holding_every_kind(demo, two_etl_runs):
    client = Client(demo.url)  # the newest etl_job runs of the seed are QUEUED and NOT_STARTED
    browser = runs_browser(client)
    try:
        a, b = browser.run_a.value, browser.run_b.value
        never_ran = {demo.runs[k] for k in ("queued", "canceled_queued", "not_started")}
        assert a is not None and b is not None and not {a, b} & never_ran
        runs = browser.runs.set_index("run_id")
        assert runs.loc[a, "job_name"] == runs.loc[b, "job_name"]
        assert {str(runs.loc[r, "status"]) for r in (a, b)} <= {"SUCCESS", "FAILURE"}
        assert browser.comparison["duration_a"].notna().any() and browser.comparison["duration_b"].notna().any()
    finally:
        browser.close()


@pytest.mark.parametrize(("kind", "note"), [("queued", "queued"), ("not_started", "not started")])
def test_timeline_of_a_run_that_never_starts_says_so_and_does_not_block(demo, kind, note):
    client = Client(demo.url)
    live = timeline(demo.runs[kind], client=client, follow=True, interval=INTERVAL)
    try:
        assert live.wait(timeout=3) is False  # it keeps following; wait gives up
        assert live.status == kind.upper() and note in live.status_bar.value
        assert "following live over a websocket" in live.status_bar.value and live.transport == "websocket"
    finally:
        live.close()
    assert live.done.is_set()
    shown = timeline(demo.runs[kind], client=client)
    assert shown.wait(0) and note in shown.status_bar.value
    assert note in shown.plot.outputs[0]["data"]["text/plain"]
    shown.close()
