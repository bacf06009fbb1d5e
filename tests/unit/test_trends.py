"""runlens.trends: duration_trend and compare_step_durations, plain pd.concat output included."""

from __future__ import annotations

import pandas as pd

from runlens.frames import concat_events, runs_frame
from runlens.steps import step_durations
from runlens.trends import compare_step_durations, duration_trend
from tests.builders import T0, canceled_run, etl_run, live_run

# The runs themselves (etl_run, live_run, canceled_run) are built in tests/builders.py.


def ms(n: int) -> pd.Timedelta:
    return pd.Timedelta(milliseconds=n)


def at(offset: int, t0: int = T0) -> pd.Timestamp:
    return pd.Timestamp(t0 + offset, unit="ms", tz="UTC")


def reference_step_stats(records: list[dict]) -> dict[str, dict]:
    """Dagster's ``stepStats`` replay (dagster/_core/execution/stats.py), over raw records."""
    stats: dict[str, dict] = {}
    for r in records:
        step, kind, t = r.get("stepKey"), r.get("eventType"), int(r["timestamp"])
        if not step or kind not in ("STEP_START", "STEP_RESTARTED", "STEP_UP_FOR_RETRY", "STEP_FAILURE",
                                    "STEP_SUCCESS", "STEP_SKIPPED"):
            continue
        s = stats.setdefault(step, {"status": None, "start": None, "end": None, "attempts": [], "open": None})
        if kind in ("STEP_START", "STEP_RESTARTED"):
            if kind == "STEP_START":
                s["status"], s["start"] = "IN_PROGRESS", t
            s["open"] = t
            continue
        if kind != "STEP_UP_FOR_RETRY":
            s["end"], s["status"] = t, kind.removeprefix("STEP_")
        s["attempts"].append((s["open"] if s["open"] is not None else t, t))
        s["open"] = None
    return stats


def assert_agrees_with_stepstats(records: list[dict], steps: pd.DataFrame) -> None:
    truth = reference_step_stats(records)
    ours = steps.set_index(steps["step_key"].astype(str))
    for key, s in truth.items():
        row = ours.loc[key]
        assert row["status"] == (s["status"] or "IN_PROGRESS"), key
        assert (pd.isna(row["start"]) if s["start"] is None else row["start"] == at(s["start"], 0)), key
        assert (pd.isna(row["end"]) if s["end"] is None else row["end"] == at(s["end"], 0)), key
        assert row["attempts"] == len(s["attempts"]), key
        closed = [(a, b) for a, b in row["attempt_spans"] if b is not None]
        assert closed == [(at(a, 0), at(b, 0)) for a, b in s["attempts"]], key


def reference_overheads(records: list[dict]) -> dict[str, dict]:
    """The time between attempts, split as step_durations documents, by a plain loop.

    Per step, in storage order: a gap opens when an attempt closes and ends when the next
    attempt starts (a closer with no open attempt starts a zero-length one); the retry's
    worker start-up (STEP_WORKER_STARTING → STARTED inside the gap) is taken out of it,
    the rest is ``retry_wait``.
    """
    out: dict[str, dict] = {}
    for r in records:
        step, kind, t = r.get("stepKey"), r.get("eventType"), int(r["timestamp"])
        if not step:
            continue
        s = out.setdefault(step, {"retry_wait": 0, "retry_startup": 0, "worker_startup": None,
                                  "open": None, "gap_start": None, "gap_workers": [], "worker_open": None})
        if kind in ("STEP_START", "STEP_RESTARTED"):
            _start_attempt(s, t)
        elif kind in ("STEP_UP_FOR_RETRY", "STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            if s["open"] is None:
                _start_attempt(s, t)
            s["open"], s["gap_start"] = None, t
        elif kind == "STEP_WORKER_STARTING":
            s["worker_open"] = t
        elif kind == "STEP_WORKER_STARTED" and s["worker_open"] is not None:
            s["worker_startup"] = (s["worker_startup"] or 0) + t - s["worker_open"]
            if s["gap_start"] is not None:
                s["gap_workers"].append((s["worker_open"], t))
            s["worker_open"] = None
    return out


def _start_attempt(s: dict, at: int) -> None:
    """An attempt starts at `at`: close the gap before it, if any, and split it."""
    if s["gap_start"] is not None:
        inside = sum(max(0, min(we, at) - max(ws, s["gap_start"])) for ws, we in s["gap_workers"])
        s["retry_wait"] += at - s["gap_start"] - inside
        s["retry_startup"] += inside
    s["open"], s["gap_start"], s["gap_workers"] = at, None, []


def assert_overheads_agree(records: list[dict], steps: pd.DataFrame) -> None:
    """retry_wait and worker_startup as the loop computes them, and the documented sum:
    attempt_time + retry_wait + the retries' worker start-up == duration."""
    ours = steps.set_index(steps["step_key"].astype(str))
    stats = reference_step_stats(records)
    for key, s in reference_overheads(records).items():
        if key not in stats:
            continue  # never started: no stepStats row
        row = ours.loc[key]
        assert row["retry_wait"] == ms(s["retry_wait"]), key
        assert (pd.isna(row["worker_startup"]) if s["worker_startup"] is None
                else row["worker_startup"] == ms(s["worker_startup"])), key
        if pd.notna(row["duration"]):
            assert row["attempt_time"] + row["retry_wait"] + ms(s["retry_startup"]) == row["duration"], key


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
