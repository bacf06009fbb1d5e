"""runlens.trends: duration_trend and compare_step_durations, plain pd.concat output included."""

from __future__ import annotations

import pandas as pd

from runlens.frames import concat_events, runs_frame
from runlens.steps import step_durations
from runlens.trends import compare_step_durations, duration_trend
from tests.builders import T0, at, canceled_run, etl_run, live_run

# The runs themselves (etl_run, live_run, canceled_run) are built in tests/builders.py.


# --------------------------------------------------------------------------- duration_trend


def test_duration_trend_with_runs():
    frames = [etl_run(f"run-{i}", T0 + i * 3_600_000).frame() for i in range(3)]
    steps = step_durations(concat_events(frames))
    runs = runs_frame([{"id": f"run-{i}", "jobName": "etl_job", "status": "FAILURE",
                        "creationTime": (T0 + i * 3_600_000) / 1000} for i in (2, 1, 0)])
    trend = duration_trend(steps, runs)
    assert list(trend.columns) == ["run_id", "step_key", "status", "start", "run_start", "duration", "job_name",
                                   "run_status", "created"]
    transform = trend[trend["step_key"] == "transform"]
    assert transform["run_id"].tolist() == ["run-0", "run-1", "run-2"]  # by creation time
    assert transform["duration"].tolist() == [3.2, 3.2, 3.2]
    assert transform["created"].tolist() == [at(0), at(3_600_000), at(7_200_000)]
    assert trend.loc[trend["step_key"] == "load", "duration"].isna().all()
    assert (trend.groupby("run_id")["run_start"].nunique() == 1).all()


def test_duration_trend_without_runs():
    trend = duration_trend(step_durations(etl_run().frame()))
    assert list(trend.columns) == ["run_id", "step_key", "status", "start", "run_start", "duration"]
    assert trend["duration"].dtype == "float64"
    assert len(trend) == 8


# --------------------------------------------------------------------------- plain pd.concat (#12 defect 11)


def test_trend_and_compare_accept_plain_pd_concat():
    """#12 defect 11: pd.concat turns categoricals into objects and drops attrs; still fine."""
    a, b, c = etl_run(), live_run(), canceled_run()
    frames = [x.frame() for x in (a, b, c)]
    expected = duration_trend(step_durations(concat_events(frames)))
    plain_steps = pd.concat([step_durations(f) for f in frames], ignore_index=True)
    assert plain_steps["step_key"].dtype != "category" and plain_steps.attrs == {}
    for given in (pd.concat(frames, ignore_index=True), plain_steps, plain_steps.astype({"status": object})):
        pd.testing.assert_frame_equal(duration_trend(given), expected)
    runs = runs_frame([{"id": r, "jobName": "etl_job", "status": "SUCCESS", "creationTime": (T0 + i) / 1000}
                       for i, r in enumerate(("run-a", "run-b", "run-x"))])
    pd.testing.assert_frame_equal(duration_trend(plain_steps, pd.concat([runs.iloc[:1], runs.iloc[1:]])),
                                  duration_trend(step_durations(concat_events(frames)), runs))
    side_a = plain_steps[plain_steps["run_id"] == "run-a"]
    side_b = pd.concat([frames[2]], ignore_index=True)
    compared = compare_step_durations(side_a, side_b)
    pd.testing.assert_frame_equal(compared, compare_step_durations(frames[0], frames[2]))
    assert compared.attrs == {"run_a": "run-a", "run_b": "run-x"}
