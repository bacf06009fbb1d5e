"""The benchmark harness works, and runlens's outputs equal the baselines' (tiny sizes).

Correctness only, no timing: the synthetic benchmarks (#3 page JSON → frame, #4
``--type``/``--step`` filtering) run end to end on a few thousand events, and each
runlens result is compared row for row with the seed's way of computing it.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmarks import baselines, synthetic
from benchmarks.bench_synthetic import (
    STEP,
    TYPES,
    baseline_frame,
    bench_convert,
    bench_filter,
    bench_filter_many,
    comparable_rows,
    naive_frame,
    runlens_frame,
)
from benchmarks.harness import Options, interleave, table
from runlens.filters import filter_events
from runlens.frames import EVENT_COLUMNS, events_frame

N = 3_500


@pytest.fixture(scope="module")
def bodies() -> list[bytes]:
    return synthetic.pages(N)


def test_synthetic_pages_look_like_dagsters(bodies):
    assert len(bodies) == N // 1000 + 1
    docs = [json.loads(b)["data"]["logsForRun"] for b in bodies]
    assert [d["hasMore"] for d in docs] == [True] * (len(docs) - 1) + [False]
    events = [e for d in docs for e in d["events"]]
    assert len(events) == N
    assert {"LogMessageEvent", "ExecutionStepStartEvent", "ExecutionStepFailureEvent",
            "MaterializationEvent"} <= {e["__typename"] for e in events}
    logs = [e for e in events if e["__typename"] == "LogMessageEvent"]
    assert len(logs) > N / 2 and all(e["eventType"] is None for e in logs)
    assert any("[" in (e["stepKey"] or "") for e in events)  # dynamic step keys
    assert any(not e["message"].isascii() for e in events) and any("\n" in e["message"] for e in events)
    assert synthetic.pages(N) == bodies  # deterministic


def test_runlens_frame_equals_the_seed_models_frame(bodies):
    mine = runlens_frame(bodies)
    seed = baseline_frame(bodies)
    assert len(mine) == len(seed) == N
    assert comparable_rows(mine, typed=True) == comparable_rows(seed, typed=False)
    assert {c: str(t) for c, t in mine.dtypes.items()} == {
        c: str(t) for c, t in events_frame(synthetic.records(bodies[:1]), synthetic.RUN_ID).dtypes.items()
    }
    assert list(mine.columns) == list(EVENT_COLUMNS)
    assert mine["seq"].tolist() == list(range(N))


def test_runlens_frame_equals_one_frame_of_all_records(bodies):
    whole = events_frame(synthetic.records(bodies), synthetic.RUN_ID)
    pd.testing.assert_frame_equal(runlens_frame(bodies), whole, check_categorical=False)


def test_filtering_selects_the_seeds_rows(bodies):
    records = synthetic.records(bodies)
    frame = runlens_frame(bodies)
    seed = baselines.seed_filter(records, TYPES, STEP)
    index = {id(r): i for i, r in enumerate(records)}
    mine = filter_events(frame, types=TYPES, step=STEP)
    assert len(seed) > 0
    assert mine["seq"].tolist() == [index[id(r)] for r in seed]


@pytest.mark.parametrize("types, step", [("STEP_START", "extract"), ("step_success, STEP_FAILURE", "REGION[")])
def test_filtering_other_flags_match_too(bodies, types, step):
    records = synthetic.records(bodies)
    index = {id(r): i for i, r in enumerate(records)}
    expected = [index[id(r)] for r in baselines.seed_filter(records, types, step)]
    assert filter_events(runlens_frame(bodies), types=types, step=step)["seq"].tolist() == expected


def test_the_harness_runs_the_synthetic_benchmarks(bodies):
    options = Options(quick=True, reps=1)
    convert = bench_convert(options, bodies)
    filtering = bench_filter(options, bodies)
    many = bench_filter_many(options, bodies)
    assert many.extra["runs"] == 438 and {"runlens_one_run"} <= set(many.samples)  # 3,500 rows, runs of 8
    for result in (convert, filtering, many):
        assert result.extra["identical_rows"] is True
        assert {"baseline", "runlens"} <= set(result.samples)
        assert all(len(v) == 1 and v[0] > 0 for v in result.samples.values())
        assert result.value is not None and result.value > 0
    memory = convert.extra["memory"]
    assert 0 < memory["typed_deep_bytes"] < memory["naive_object_deep_bytes"]
    rendered = table([convert, filtering, many])
    assert rendered.count("\n") == 4 and "| 3 |" in rendered and "| 4 |" in rendered and "| 7 |" in rendered


def test_interleave_alternates_and_checks_each_variant_once():
    order, checked = [], []
    samples = interleave({"a": lambda: order.append("a") or "A", "b": lambda: order.append("b") or "B"},
                         reps=2, warmup=True, check=lambda name, value: checked.append((name, value)))
    assert order == ["a", "b"] * 3  # warm-up, then A B A B
    assert checked == [("a", "A"), ("b", "B")]
    assert [len(v) for v in samples.values()] == [2, 2]


def test_naive_frame_is_object_dtype(bodies):
    naive = naive_frame(synthetic.records(bodies[:1]))
    assert set(map(str, naive.dtypes)) == {"object"}
