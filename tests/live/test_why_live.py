"""Why was a run slow, against the live demo: the diamond runs' known answers, the ETL run's
critical path recomputed by a plain loop over Dagster's own stepStats and plan."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import runlens
from runlens.cli import main
from runlens.demo.server import DIAMOND_ALIKE, DIAMOND_SLOW
from tests.live.raw_graphql import graphql

matplotlib.use("Agg")

ALIKE = [f"diamond_alike_{i}" for i in range(1, DIAMOND_ALIKE + 1)]
SLOW = [f"diamond_slow_{i}" for i in range(1, DIAMOND_SLOW + 1)]

PLAN_QUERY = """
query($runId: ID!) { runOrError(runId: $runId) { ... on Run {
  executionPlan { steps { key inputs { dependsOn { key } } } }
  stepStats { stepKey startTime endTime } } } }
"""


def test_every_diamond_run_succeeded(client, demo):
    for kind in ALIKE + SLOW:
        assert client.run(demo.runs[kind]).status == "SUCCESS", kind


def test_critical_path_of_each_slow_diamond_run_is_a_b_d(client, demo):
    for kind in SLOW:
        run_id = demo.runs[kind]
        cp = runlens.critical_path(client.events(run_id), client.execution_plan(run_id))
        assert cp.keys == ["a", "b", "d"], kind
        assert cp.source == "execution plan"
        assert (cp.slack.set_index("step_key").loc[["a", "b", "d"], "slack"] == pd.Timedelta(0)).all()


def _plain_critical_path(url: str, run_id: str) -> list[str]:
    """The chain recomputed from Dagster's own stepStats and executionPlan, with plain loops."""
    run = graphql(url, PLAN_QUERY, runId=run_id)["runOrError"]
    ends = {s["stepKey"]: s["endTime"] for s in run["stepStats"] if s["endTime"] is not None}
    ups: dict[str, set[str]] = {}
    for step in run["executionPlan"]["steps"]:
        deps = {d["key"] for i in step["inputs"] for d in i["dependsOn"]}
        for key in ends:
            if key == step["key"] or (step["key"].endswith("[?]") and key.startswith(step["key"][:-3] + "[")):
                for dep in deps:
                    if dep.endswith("[?]"):
                        ups.setdefault(key, set()).update(k for k in ends if k.startswith(dep[:-3] + "["))
                    else:
                        ups.setdefault(key, set()).add(dep)
    current = max(ends, key=lambda k: ends[k])
    chain = [current]
    while ups.get(current):
        current = max((u for u in ups[current] if u in ends), key=lambda k: ends[k])
        chain.append(current)
    return chain[::-1]


def test_critical_path_of_the_etl_run_follows_dagsters_own_numbers(client, demo):
    run_id = demo.runs["etl"]
    plan = client.execution_plan(run_id)
    assert not plan["step_key"].str.contains(r"\[\?\]").any()   # dynamic steps resolved
    assert {"process_region[emea]", "process_region[amer]", "process_region[apac]"} <= set(plan["step_key"])
    cp = runlens.critical_path(client.step_stats(run_id), plan)   # Dagster's stepStats as the steps
    assert cp.keys == _plain_critical_path(demo.url, run_id)
    edges = set(zip(plan["step_key"], plan["upstream"], strict=True))
    assert all((b, a) in edges for a, b in zip(cp.keys, cp.keys[1:], strict=False))   # real dependency edges
    stats = client.step_stats(run_id)
    assert cp.keys[-1] == stats.loc[stats["end"].idxmax(), "step_key"]
    # the events' own timing gives the same chain, and so does the LOADED_INPUT inference
    events = client.events(run_id)
    assert runlens.critical_path(events, plan).keys == cp.keys
    assert runlens.critical_path(events).keys == cp.keys


def test_anatomy_of_live_runs_adds_up(client, demo):
    for kind in ("etl", "failing", "canceled_running", "canceled_queued", SLOW[0]):
        events = client.events(demo.runs[kind])
        a = runlens.run_anatomy(events, plan=client.execution_plan(demo.runs[kind]))
        t = {name: events.loc[events["event_type"] == name, "timestamp"].min()
             for name in ("RUN_ENQUEUED", "RUN_STARTING", "RUN_START")}
        assert abs((a.parts.sum() - a.total).total_seconds()) < 0.005, kind
        if not pd.isna(t["RUN_STARTING"]):
            assert a.queued == t["RUN_STARTING"] - t["RUN_ENQUEUED"], kind
        if a.wall_time is not None:
            assert a.parts.drop(["queued", "launching"]).sum() == a.wall_time, kind
            summary = runlens.run_summary(events)
            assert a.wall_time == summary.wall_time, kind
    assert "canceled" in runlens.run_anatomy(client.events(demo.runs["canceled_running"])).canceled
    assert "while queued" in runlens.run_anatomy(client.events(demo.runs["canceled_queued"])).canceled


def test_explain_flags_b_in_the_first_slow_run_and_nothing_in_alike_runs(client, demo):
    first = runlens.compare_to_baseline(demo.runs[SLOW[0]], client, baseline=20)
    assert first.baseline_runs == [demo.runs[k] for k in reversed(ALIKE)]
    assert first.flagged["step_key"].tolist() == ["b"]
    for kind in ALIKE[2:]:   # alike_3 has 2 runs before it (insufficient), alike_4 three
        cmp = runlens.compare_to_baseline(demo.runs[kind], client)
        assert cmp.flagged.empty, (kind, cmp.steps)
    assert runlens.compare_to_baseline(demo.runs[ALIKE[1]], client).insufficient


def test_run_explain_cli_json_and_text(demo):
    run_id = demo.runs[SLOW[0]]
    result = CliRunner().invoke(main, ["run", "explain", run_id, "--json", "--url", demo.base_url])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    steps = {s["step_key"]: s for s in doc["steps"]}
    assert set(steps) == {"a", "b", "c", "d"}
    assert steps["b"]["flagged"] is True and [k for k, s in steps.items() if s["flagged"]] == ["b"]
    assert doc["critical_path"]["steps"] == ["a", "b", "d"]
    text = CliRunner().invoke(main, ["run", "explain", run_id, "--url", demo.base_url])
    assert text.exit_code == 0 and "a → b → d" in text.output and "b " in text.output.split("Flagged")[1]
    missing = CliRunner().invoke(main, ["run", "explain", "no-such-run", "--json", "--url", demo.base_url])
    assert missing.exit_code == 3 and json.loads(missing.stderr)["code"] == "RUN_NOT_FOUND"


def test_explain_and_regressions_from_a_history_store(client, demo, tmp_path):
    pytest.importorskip("duckdb")
    h = runlens.History(tmp_path / "store")
    h.sync(client, job="diamond_job", grace=0)
    from_store = runlens.compare_to_baseline(demo.runs[SLOW[0]], h)
    from_server = runlens.compare_to_baseline(demo.runs[SLOW[0]], client)
    assert from_store.source == "history" and from_store.baseline_runs == from_server.baseline_runs
    assert from_store.flagged["step_key"].tolist() == ["b"]
    pd.testing.assert_series_equal(from_store.steps["duration"], from_server.steps["duration"], atol=2e-3)
    found = runlens.regressions(h.steps(job="diamond_job"), h.runs(job="diamond_job"))
    changes = found[found["kind"] == "change"]
    assert (changes["step_key"] == "b").any()
    assert changes.loc[changes["step_key"] == "b", "run_id"].tolist() == [demo.runs[SLOW[0]]]
    steps, runs = h.steps(job="diamond_job"), h.runs(job="diamond_job")
    table = runlens.rollup(steps, runs, by="day")
    day = dict(zip(runs["run_id"].astype(str), runs["created"].dt.floor("D"), strict=True))
    seconds = pd.to_timedelta(steps["duration"]).dt.total_seconds() if not pd.api.types.is_float_dtype(
        steps["duration"]) else steps["duration"]
    assert table["runs"].groupby(table["step_key"]).sum().to_dict() == {k: DIAMOND_ALIKE + DIAMOND_SLOW
                                                                         for k in "abcd"}
    for row in table.itertuples(index=False):
        mask = (steps["step_key"].astype(str) == row.step_key) & steps["run_id"].astype(str).map(day).eq(row.period)
        values = seconds[mask].to_numpy(float)
        assert [row.p50, row.p90, row.p99] == pytest.approx(np.quantile(values, [0.5, 0.9, 0.99]))


def test_pictures_of_the_diamond_runs(client, demo, tmp_path):
    """The README's pictures, drawn from the live runs: the slow run's chain outlined, and the
    heatmap's b column slower from the first slow run on (written to tmp_path)."""
    import matplotlib.pyplot as plt

    run_id = demo.runs[SLOW[0]]
    events, plan = client.events(run_id), client.execution_plan(run_id)
    cp = runlens.critical_path(events, plan)
    ax = runlens.plot_timeline(events, critical_path=cp)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    outlined = [labels[round(p.get_y() + p.get_height() / 2)] for p in ax.patches if p.get_gid() == "critical_path"]
    assert outlined == cp.keys
    ax.figure.savefig(tmp_path / "critical-path-diamond.png", dpi=110)
    plt.close(ax.figure)
    ids = [demo.runs[k] for k in ALIKE + SLOW]
    steps = runlens.step_durations(client.events_many(ids))
    ax = runlens.plot_heatmap(steps, client.runs(job="diamond_job"))
    data = ax.images[0].get_array()
    b = [t.get_text() for t in ax.get_xticklabels()].index("b")
    assert data.shape == (len(ids), 4)
    assert data[len(ALIKE):, b].min() > data[: len(ALIKE), b].max()   # every slow run's b above every alike one
    ax.figure.savefig(tmp_path / "heatmap-diamond.png", dpi=110)
    plt.close(ax.figure)
    print(f"pictures in {tmp_path}")
