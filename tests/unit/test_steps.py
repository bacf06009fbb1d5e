"""runlens.steps over synthetic events frames shaped like real Dagster runs.

The runs (tests/builders.py) follow what a Dagster 1.13 multiprocess run stores (see
shared/docs/dagster-graphql.md, "Step timing truth"): worker and resource markers
before STEP_START, LOADED_INPUT/STEP_INPUT after it, STEP_OUTPUT/HANDLED_OUTPUT before
STEP_SUCCESS, STEP_UP_FOR_RETRY → STEP_RESTARTED for a retry, and an abandoned step's
"Dependencies for step ... Not executing." ERROR log line. Parallel steps interleave in
storage order with timestamps slightly out of order.
"""

from __future__ import annotations

import random
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from runlens.errors import InvalidArgument, RunlensWarning
from runlens.event_types import EVENT_TYPES
from runlens.frames import EVENT_COLUMNS, LEVEL_DTYPE, concat_events, empty_events_frame, runs_frame
from runlens.models import Run
from runlens.steps import STEP_COLUMNS, step_durations
from runlens.summary import run_summary
from runlens.trends import compare_step_durations, duration_trend
from tests.builders import INTERRUPTED, T0, RunBuilder, at, canceled_run, etl_run, live_run, ms

# The runs themselves (etl_run, live_run, canceled_run) are built in tests/builders.py.


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


# --------------------------------------------------------------------------- step_durations


def test_columns_and_dtypes():
    steps = step_durations(etl_run().frame())
    assert list(steps.columns) == list(STEP_COLUMNS)
    assert str(steps["status"].dtype) == "category"
    assert list(steps["status"].cat.categories) == ["SUCCESS", "FAILURE", "IN_PROGRESS", "SKIPPED", "CANCELED"]
    assert steps["start"].dtype == "datetime64[ms, UTC]" and steps["end"].dtype == "datetime64[ms, UTC]"
    for column in ("duration", "attempt_time", "retry_wait", "worker_startup", "resource_init", "input_loading",
                   "output_handling"):
        assert steps[column].dtype == "timedelta64[ms]", column
    assert steps["attempts"].dtype == "int64"
    assert steps["attempt_spans"].dtype == object


def test_rows_are_ordered_by_start_with_skipped_last():
    steps = step_durations(etl_run().frame())
    assert steps["step_key"].astype(str).tolist() == [
        "extract", "extract_customers", "transform", "process[emea]", "process[amer]", "process[apac]",
        "load", "report",
    ]
    assert steps["status"].astype(str).tolist() == ["SUCCESS"] * 5 + ["FAILURE", "SKIPPED", "SKIPPED"]


def test_simple_step_exact_numbers():
    row = step_durations(etl_run().frame()).set_index("step_key").loc["extract"]
    assert row["start"] == at(2050) and row["end"] == at(3100)
    assert row["duration"] == ms(1050)
    assert row["attempts"] == 1 and row["attempt_spans"] == [(at(2050), at(3100))]
    assert row["attempt_time"] == ms(1050) and row["retry_wait"] == ms(0)
    assert row["worker_startup"] == ms(800)  # 1100 → 1900, before the step's start
    assert row["worker_spans"] == [(at(1100), at(1900))]
    assert row["resource_init"] == ms(50)
    assert pd.isna(row["input_loading"])  # no inputs
    assert row["output_handling"] == ms(40)  # STEP_OUTPUT 3000 → HANDLED_OUTPUT 3040
    assert pd.isna(row["error_class"]) and pd.isna(row["error_message"])
    assert row["last_event"] == at(3100)


def test_retried_step():
    row = step_durations(etl_run().frame()).set_index("step_key").loc["transform"]
    assert row["status"] == "SUCCESS"
    assert row["start"] == at(4000) and row["end"] == at(7200)
    assert row["duration"] == ms(3200)  # spans both attempts and the wait between them
    assert row["attempts"] == 2
    assert row["attempt_spans"] == [(at(4000), at(4500)), (at(6300), at(7200))]
    assert row["attempt_time"] == ms(500 + 900)
    assert row["worker_startup"] == ms(700 + 700)  # a new process per attempt
    assert row["worker_spans"] == [(at(3200), at(3900)), (at(5500), at(6200))]
    assert pd.isna(row["resource_init"])
    # LOADED_INPUT measured from the previous lifecycle event: 4000→4100, 4110→4150, 6300→6360, 6370→6400.
    assert row["input_loading"] == ms(100 + 40 + 60 + 30)
    assert row["output_handling"] == ms(100)
    assert pd.isna(row["error_class"])  # the retried attempt's error is not the step's


def test_retry_wait_leaves_out_the_retry_worker_startup():
    """#12 defect 7: the second worker's start-up was counted in retry_wait and in worker_startup."""
    b = etl_run()
    row = step_durations(b.frame()).set_index("step_key").loc["transform"]
    # Between the attempts (4500 → 6300): the retry policy's delay until the executor asks
    # for a worker (4500 → 5500), the worker's start-up (5500 → 6200), its set-up (6200 → 6300).
    assert row["retry_wait"] == ms(1000 + 100)
    retry_startup = sum((e - s for s, e in row["worker_spans"][1:]), pd.Timedelta(0))
    assert retry_startup == ms(700)
    assert row["attempt_time"] + row["retry_wait"] + retry_startup == row["duration"]
    assert_overheads_agree(b.records, step_durations(b.frame()))


def test_failed_step_error_is_the_ops_exception():
    row = step_durations(etl_run().frame()).set_index("step_key").loc["process[apac]"]
    assert row["status"] == "FAILURE"
    assert row["start"] == at(8120) and row["end"] == at(8600) and row["duration"] == ms(480)
    assert row["attempts"] == 1
    assert row["error_class"] == "ValueError"
    assert row["error_message"] == "bad region apac"


def test_error_without_wrapper_keeps_class_and_strips_prefix():
    b = RunBuilder().event(0, "STEP_START", "s")
    b.event(10, "STEP_FAILURE", "s", error={"message": "dagster._core.definitions.events.Failure: no data\n",
                                            "className": "Failure", "stack": []})
    row = step_durations(b.frame()).iloc[0]
    assert (row["error_class"], row["error_message"]) == ("Failure", "no data")


def test_dynamic_steps_in_parallel_with_timestamp_inversions():
    steps = step_durations(etl_run().frame()).set_index("step_key")
    assert steps.loc["process[emea]", "start"] == at(8090)  # stored after amer's later STEP_START
    assert steps.loc["process[emea]", "duration"] == ms(9200 - 8090)
    assert steps.loc["process[amer]", "duration"] == ms(800)
    assert steps.loc["process[emea]", "worker_startup"] == ms(8010 - 7300)
    assert steps.loc["process[emea]", "input_loading"] == ms(8150 - 8090)
    assert steps.loc["extract_customers", "start"] == at(2080)
    assert steps.loc["extract_customers", "output_handling"] == ms(20)


def test_abandoned_steps_are_skipped_rows():
    steps = step_durations(etl_run().frame()).set_index("step_key")
    for key, logged in (("load", 9300), ("report", 9310)):
        row = steps.loc[key]
        assert row["status"] == "SKIPPED"
        assert pd.isna(row["start"]) and pd.isna(row["end"]) and pd.isna(row["duration"])
        assert row["attempts"] == 0 and row["attempt_spans"] == []
        assert pd.isna(row["retry_wait"])
        assert row["last_event"] == at(logged)


def test_abandoned_step_found_from_the_message_when_the_line_has_no_step_key():
    b = RunBuilder().event(0, "STEP_START", "up").event(5, "STEP_FAILURE", "up")
    b.abandoned(9, "down[x]", ["up"], with_step_key=False)
    b.log(10, None, "Dependencies for step nothing to see", "ERROR")  # not the pattern
    steps = step_durations(b.frame())
    assert steps["step_key"].astype(str).tolist() == ["up", "down[x]"]
    assert steps["status"].astype(str).tolist() == ["FAILURE", "SKIPPED"]


def test_in_progress_steps():
    records = live_run().records
    steps = step_durations(live_run().frame()).set_index("step_key")
    assert list(steps.index.astype(str)) == ["a", "b", "c", "e", "d"]
    b = steps.loc["b"]  # second attempt running
    assert b["status"] == "IN_PROGRESS" and pd.isna(b["end"]) and pd.isna(b["duration"])
    assert b["attempts"] == 1  # as stepStats: finished attempts only
    assert b["attempt_spans"] == [(at(1900, T0 + 60_000), at(2400, T0 + 60_000)), (at(2900, T0 + 60_000), None)]
    assert b["retry_wait"] == ms(500) and b["attempt_time"] == ms(500)
    c = steps.loc["c"]  # first attempt running: stepStats lists no attempt yet
    assert c["status"] == "IN_PROGRESS" and c["attempts"] == 0
    assert c["attempt_spans"] == [(at(1950, T0 + 60_000), None)]
    assert c["last_event"] == at(3500, T0 + 60_000)
    e = steps.loc["e"]  # up for retry now
    assert e["status"] == "IN_PROGRESS" and e["attempts"] == 1 and e["retry_wait"] == ms(0)
    d = steps.loc["d"]  # STEP_SKIPPED: Dagster closes a zero-length attempt and sets the end
    assert d["status"] == "SKIPPED" and pd.isna(d["start"]) and d["end"] == at(2000, T0 + 60_000)
    assert d["attempts"] == 1
    assert_agrees_with_stepstats(records, steps.reset_index())


def test_agrees_with_dagster_stepstats_replay():
    b = etl_run()
    assert_agrees_with_stepstats(b.records, step_durations(b.frame()))
    assert_overheads_agree(b.records, step_durations(b.frame()))
    live = live_run()
    assert_overheads_agree(live.records, step_durations(live.frame()))


def test_random_runs_agree_with_stepstats_replay():
    for seed in range(40):
        rng = random.Random(seed)
        b = RunBuilder(f"r{seed}")
        b.event(0, "RUN_START")
        lines = []
        for i in range(rng.randint(1, 6)):
            step, t = f"op_{i}[{i}]" if i % 2 else f"op_{i}", rng.randint(0, 500)
            lines.append((t, "STEP_WORKER_STARTING", step))
            t += rng.randint(1, 900)
            lines.append((t, "STEP_WORKER_STARTED", step))
            if rng.random() < 0.15:
                continue  # never started
            t += rng.randint(0, 50)
            lines.append((t, "STEP_START", step))
            for _ in range(rng.randint(0, 3)):
                t += rng.randint(0, 400)
                lines.append((t, "STEP_UP_FOR_RETRY", step))
                t += rng.randint(0, 2000)
                if rng.random() < 0.7:  # a new worker process for the retry
                    lines.append((t, "STEP_WORKER_STARTING", step))
                    t += rng.randint(1, 900)
                    lines.append((t, "STEP_WORKER_STARTED", step))
                    t += rng.randint(0, 50)
                lines.append((t, "STEP_RESTARTED", step))
            t += rng.randint(0, 400)
            if rng.random() < 0.8:
                lines.append((t, rng.choice(["STEP_SUCCESS", "STEP_FAILURE"]), step))
        # Storage order: by time give or take 30 ms per step; a step's own events keep their order.
        jitter = {step: rng.uniform(-30, 30) for _, _, step in lines}
        lines.sort(key=lambda x: x[0] + jitter[x[2]])
        for t, kind, step in lines:
            b.event(t, kind, step)
        steps = step_durations(b.frame())
        assert_agrees_with_stepstats(b.records, steps)
        assert_overheads_agree(b.records, steps)


def test_storage_order_comes_from_seq_not_row_order():
    frame = etl_run().frame()
    shuffled = frame.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(step_durations(shuffled), step_durations(frame))
    by_time = frame.sort_values("timestamp", kind="stable")
    pd.testing.assert_frame_equal(step_durations(by_time), step_durations(frame))
    # Within one step too: the retry's new worker stamps STEP_RESTARTED 5 ms before the old
    # worker's STEP_UP_FOR_RETRY (two processes, two clocks). etl_run has no such inversion,
    # so without this run a replay in timestamp order would pass.
    b = RunBuilder().event(0, "RUN_START").event(100, "STEP_START", "s").event(1000, "STEP_UP_FOR_RETRY", "s")
    b.event(995, "STEP_RESTARTED", "s").event(1200, "STEP_SUCCESS", "s")
    steps = step_durations(b.frame())
    assert_agrees_with_stepstats(b.records, steps)
    assert steps.iloc[0]["attempt_spans"] == [(at(100), at(1000)), (at(995), at(1200))]


def test_several_runs_in_one_frame():
    a, b = etl_run(), live_run()
    both = step_durations(concat_events([a.frame(), b.frame()]))
    assert both["run_id"].astype(str).tolist() == ["run-a"] * 8 + ["run-b"] * 5
    for builder in (a, b):
        alone = step_durations(builder.frame())
        part = both[both["run_id"] == builder.run_id].reset_index(drop=True)
        cols = [c for c in STEP_COLUMNS if c not in ("run_id", "step_key", "error_class")]
        pd.testing.assert_frame_equal(part[cols], alone[cols])
        assert part["step_key"].astype(str).tolist() == alone["step_key"].astype(str).tolist()
    # the same step key in two runs stays two rows
    again = step_durations(concat_events([a.frame(), etl_run("run-c", T0 + 3_600_000).frame()]))
    assert (again["step_key"] == "transform").sum() == 2
    assert again.attrs["run_start"] == {"run-a": at(1000), "run-c": at(1000, T0 + 3_600_000)}


def test_empty_frame_gives_an_empty_typed_table():
    for frame in (empty_events_frame(), empty_events_frame("run-x"), RunBuilder().event(0, "RUN_START").frame()):
        steps = step_durations(frame)
        assert steps.empty
        assert list(steps.columns) == list(STEP_COLUMNS)
        assert steps["duration"].dtype == "timedelta64[ms]" and steps["start"].dtype == "datetime64[ms, UTC]"
        assert list(steps["status"].cat.categories) == ["SUCCESS", "FAILURE", "IN_PROGRESS", "SKIPPED", "CANCELED"]


def test_steps_without_worker_events_have_no_startup():
    b = RunBuilder().event(0, "RUN_START").event(10, "STEP_START", "s").event(30, "STEP_SUCCESS", "s")
    row = step_durations(b.frame()).iloc[0]
    assert pd.isna(row["worker_startup"]) and row["worker_spans"] == [] and row["duration"] == ms(20)


def test_not_an_events_frame():
    with pytest.raises(ValueError, match="events frame"):
        step_durations(pd.DataFrame({"a": [1]}))


def test_frame_kind_decides_and_a_wrong_frame_names_what_was_expected():
    """#12 defect 3: one check (frames.require_kind) decides, and says what was expected."""
    events = etl_run().frame()
    steps = step_durations(events)
    runs = runs_frame([{"id": "run-a", "jobName": "etl_job", "status": "FAILURE", "creationTime": T0 / 1000}])
    cases = [
        (lambda: step_durations(steps), "step_durations() expects an events frame", "a step_durations frame"),
        (lambda: run_summary(steps), "run_summary() expects an events frame", "a step_durations frame"),
        (lambda: run_summary(events, steps=runs), "run_summary() expects a step_durations frame", "a runs frame"),
        (lambda: duration_trend(runs), "duration_trend() expects a step_durations frame", "a runs frame"),
        (lambda: duration_trend(steps, runs=steps), "duration_trend() expects a runs frame", "step_durations"),
        (lambda: compare_step_durations(events, runs), "compare_step_durations() expects", "a runs frame"),
        (lambda: step_durations(events.drop(columns=["seq"])), "step_durations() expects an events frame",
         "without the column(s) seq"),
        (lambda: step_durations([1, 2]), "step_durations() expects an events frame", "got a list"),
    ]
    for call, expected, got in cases:
        with pytest.raises(InvalidArgument) as caught:
            call()
        assert expected in str(caught.value) and got in str(caught.value), str(caught.value)
    with pytest.raises(InvalidArgument, match="one run"):
        compare_step_durations(step_durations(concat_events([events, live_run().frame()])), steps)


def _big_frame(n_steps: int = 2_000, per_step: int = 500) -> pd.DataFrame:
    """A 1M-event run built column by column: per step 9 lifecycle events and log lines."""
    lifecycle = ["STEP_WORKER_STARTING", "STEP_WORKER_STARTED", "STEP_START", "LOADED_INPUT", "STEP_INPUT"]
    tail = ["STEP_OUTPUT", "HANDLED_OUTPUT", "STEP_SUCCESS"]
    n_logs = per_step - len(lifecycle) - len(tail)
    pattern = lifecycle + [None] * n_logs + tail
    types = pd.Categorical(pattern * n_steps, categories=list(EVENT_TYPES))
    step_names = [f"op_{i}" if i % 3 else f"process[{i}]" for i in range(n_steps)]
    n = n_steps * per_step
    rng = np.random.default_rng(0)
    start = np.repeat(rng.integers(0, 600_000, n_steps), per_step)
    offset = np.tile(np.arange(per_step) * 10, n_steps)
    t = T0 + start + offset
    # Storage order: by time with jitter across steps, each step keeping its own order.
    order = np.argsort(t + rng.integers(-30, 30, n_steps).repeat(per_step), kind="stable")
    frame = pd.DataFrame({
        "seq": np.arange(n, dtype=np.int64),
        "run_id": pd.Categorical(["big"] * n),
        "timestamp": pd.DatetimeIndex(t[order].astype("datetime64[ms]")).tz_localize("UTC"),
        "level": pd.Categorical.from_codes(np.zeros(n, np.int8), dtype=LEVEL_DTYPE),
        "event_type": types[order],
        "step_key": pd.Categorical.from_codes(np.repeat(np.arange(n_steps), per_step)[order], step_names),
        "message": pd.array(["log line"] * n, dtype="string"),
    })
    for column, dtype in EVENT_COLUMNS.items():  # the rest of an events frame: all NA
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index).astype(dtype)
    return frame


def test_one_million_events(record_property):
    frame = _big_frame()
    assert len(frame) == 1_000_000
    t = time.perf_counter()
    steps = step_durations(frame)
    elapsed = time.perf_counter() - t
    record_property("step_durations_1M_seconds", round(elapsed, 3))
    print(f"\nstep_durations over {len(frame):,} events, {len(steps):,} steps: {elapsed:.3f} s")
    assert len(steps) == 2_000
    assert (steps["status"] == "SUCCESS").all()
    assert (steps["duration"] == ms(10 * 497)).all()  # STEP_START at 20 ms, STEP_SUCCESS at 4990 ms
    assert (steps["worker_startup"] == ms(10)).all()
    assert (steps["input_loading"] == ms(10)).all() and (steps["output_handling"] == ms(10)).all()
    assert steps["start"].is_monotonic_increasing


# --------------------------------------------------------------------------- partial frames (#12 defect 4)


def _caught(call) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, RunlensWarning)]


@pytest.mark.parametrize("attrs, word", [({"complete": False}, "incomplete"), ({"filtered": True}, "filtered")])
def test_an_incomplete_or_filtered_frame_warns_once(attrs, word):
    """#12 defect 4: analyses of a frame a limit cut short or a filter thinned say so."""
    frame = etl_run().frame()
    frame.attrs.update(attrs)
    for call in (lambda: step_durations(frame), lambda: run_summary(frame), lambda: duration_trend(frame),
                 lambda: compare_step_durations(frame, etl_run().frame())):
        caught = _caught(call)
        assert len(caught) == 1, [str(w.message) for w in caught]
        message = str(caught[0].message)
        assert word in message and "client.events(run_id)" in message and "no limit" in message
        assert caught[0].filename == __file__  # points at the user's call, not at runlens


def test_a_whole_frame_does_not_warn():
    frame = etl_run().frame()
    frame.attrs.update(complete=True, filtered=False)
    for events in (frame, etl_run().frame(), pd.concat([frame, live_run().frame()])):
        assert _caught(lambda events=events: step_durations(events)) == []
    assert _caught(lambda: run_summary(frame)) == []


# --------------------------------------------------------------------------- cancellation (#12 defect 6)


def test_steps_of_a_canceled_run_are_canceled_not_failed():
    """#12 defect 6: a step stopped by its run's cancellation is CANCELED, with no error."""
    b = canceled_run()
    steps = step_durations(b.frame()).set_index("step_key")
    assert steps["status"].astype(str).to_dict() == {"fast": "SUCCESS", "slow": "CANCELED", "flaky": "CANCELED"}
    slow = steps.loc["slow"]
    assert pd.isna(slow["error_class"]) and pd.isna(slow["error_message"])
    assert slow["end"] == at(2100, b.t0) and slow["attempts"] == 1  # times as stepStats
    assert pd.isna(steps.loc["flaky", "end"])
    summary = run_summary(b.frame())
    assert summary.status == "CANCELED" and summary.first_failure is None
    assert summary.steps_by_status["CANCELED"] == 2 and summary.steps_by_status["FAILURE"] == 0
    assert summary.wall_time == ms(1200)


def test_an_interrupt_without_a_cancellation_stays_a_failure():
    b = RunBuilder().event(0, "RUN_START").event(10, "STEP_START", "s")
    b.event(20, "STEP_FAILURE", "s", error=INTERRUPTED).event(30, "RUN_FAILURE")
    row = step_durations(b.frame()).iloc[0]
    assert row["status"] == "FAILURE" and row["error_class"] == "DagsterExecutionInterruptedError"


def test_a_run_canceled_while_queued_has_no_duration():
    """#12 defect 6: RUN_ENQUEUED → RUN_CANCELED, no RUN_START: no wall time, not 0 s."""
    b = RunBuilder("run-q").event(0, "RUN_ENQUEUED").event(5000, "RUN_CANCELED")
    # Dagster answers such a run's startTime with its endTime: it must not become a start.
    model = Run(id="run-q", status="CANCELED", jobName="etl_job", creationTime=T0 / 1000,
                startTime=(T0 + 5000) / 1000, endTime=(T0 + 5000) / 1000)
    partial = b.frame()
    partial.attrs["complete"] = False  # where the model's times fill in what the events lack
    with pytest.warns(RunlensWarning):
        from_partial = run_summary(partial, model)
    for summary in (run_summary(b.frame()), run_summary(b.frame(), model), from_partial):
        assert summary.status == "CANCELED"
        assert summary.wall_time is None and summary.started is None, summary
        assert summary.queued == ms(5000)  # how long it waited before it was canceled
        assert "Wall time   —" in str(summary)
    never = run_summary(RunBuilder("run-n").frame(), Run(id="run-n", status="NOT_STARTED", jobName="etl_job",
                                                         creationTime=T0 / 1000))
    assert never.wall_time is None and never.queued is None and never.status == "NOT_STARTED"

