"""Critical path, run anatomy, baseline comparison, change points and rollups on built runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import runlens
from runlens.baseline import compare_durations
from runlens.errors import InvalidArgument
from runlens.plan import plan_frame, plan_from_events, resolve_plan
from tests.builders import T0, RunBuilder, canceled_run, etl_run, ms


def loaded(step: str, upstream: str, name: str = "x") -> str:
    return f'Loaded input "{name}" using input manager "io_manager", from output "result" of step "{upstream}"'


def step(b: RunBuilder, key: str, at: int, compute: int, inputs: tuple[str, ...] = ()) -> int:
    """A multiprocess step: worker start-up 400 ms, inputs 20 ms each, output 30 ms; returns its end."""
    b.event(at, "STEP_WORKER_STARTING", key).event(at + 400, "STEP_WORKER_STARTED", key)
    t = at + 450
    b.event(t, "STEP_START", key)
    for i, up in enumerate(inputs):
        t += 20
        b.event(t, "LOADED_INPUT", key, loaded(key, up, f"in{i}"))
    t += compute
    b.event(t, "STEP_OUTPUT", key).event(t + 30, "HANDLED_OUTPUT", key)
    b.event(t + 40, "STEP_SUCCESS", key)
    return t + 40


def diamond(run_id: str = "d1", b_ms: int = 300, t0: int = T0, c_ms: int = 300) -> RunBuilder:
    """a → (b, c) → d with every step's times known."""
    r = RunBuilder(run_id, t0)
    r.event(0, "RUN_ENQUEUED").event(150, "RUN_STARTING").event(900, "RUN_START")
    a_end = step(r, "a", 1000, 300)
    b_end = step(r, "b", a_end + 10, b_ms, ("a",))
    c_end = step(r, "c", a_end + 15, c_ms, ("a",))
    d_end = step(r, "d", max(b_end, c_end) + 10, 300, ("b", "c"))
    r.event(d_end + 50, "RUN_SUCCESS")
    return r


PLAN = [
    {"key": "a", "kind": "COMPUTE", "inputs": []},
    {"key": "b", "kind": "COMPUTE", "inputs": [{"name": "x", "dependsOn": [{"key": "a"}]}]},
    {"key": "c", "kind": "COMPUTE", "inputs": [{"name": "x", "dependsOn": [{"key": "a"}]}]},
    {"key": "d", "kind": "COMPUTE", "inputs": [{"name": "left", "dependsOn": [{"key": "b"}]},
                                               {"name": "right", "dependsOn": [{"key": "c"}]}]},
]


# --------------------------------------------------------------------------- plan


def test_plan_frame_lists_every_step_and_edge():
    plan = plan_frame(PLAN, "d1")
    assert list(plan.columns) == ["step_key", "kind", "input", "upstream"]
    assert plan.attrs["run_id"] == "d1"
    edges = set(zip(plan["step_key"], plan["upstream"].fillna("-"), strict=True))
    assert edges == {("a", "-"), ("b", "a"), ("c", "a"), ("d", "b"), ("d", "c")}


def test_resolve_plan_maps_dynamic_steps_onto_the_keys_that_ran():
    plan = plan_frame([
        {"key": "split", "kind": "COMPUTE", "inputs": []},
        {"key": "work[?]", "kind": "UNRESOLVED_MAPPED", "inputs": [{"name": "x", "dependsOn": [{"key": "split"}]}]},
        {"key": "more[?]", "kind": "UNRESOLVED_MAPPED", "inputs": [{"name": "x", "dependsOn": [{"key": "work[?]"}]}]},
        {"key": "join", "kind": "UNRESOLVED_COLLECT", "inputs": [{"name": "xs", "dependsOn": [{"key": "more[?]"}]}]},
    ])
    ran = ["split", "work[emea]", "work[apac]", "more[emea]", "more[apac]", "join"]
    edges = set(zip(*(resolve_plan(plan, ran)[c].fillna("-") for c in ("step_key", "upstream")), strict=True))
    assert edges == {("split", "-"), ("work[emea]", "split"), ("work[apac]", "split"),
                     ("more[emea]", "work[emea]"), ("more[apac]", "work[apac]"),
                     ("join", "more[emea]"), ("join", "more[apac]")}


def test_plan_from_events_reads_loaded_input_lines():
    plan = plan_from_events(diamond().frame())
    edges = set(zip(plan["step_key"], plan["upstream"].fillna("-"), strict=True))
    assert edges == {("a", "-"), ("b", "a"), ("c", "a"), ("d", "b"), ("d", "c")}


# --------------------------------------------------------------------------- critical path


def test_critical_path_of_a_slow_diamond_is_a_b_d_with_waits_and_slack():
    events = diamond(b_ms=1500).frame()
    cp = runlens.critical_path(events, plan_frame(PLAN))
    assert cp.keys == ["a", "b", "d"]
    steps = runlens.step_durations(events).set_index("step_key")
    assert list(cp.chain["duration"]) == [steps.loc[k, "duration"] for k in cp.keys]
    # wait: the step's start minus its upstream's end (the first: minus RUN_START)
    assert cp.chain["wait"].tolist() == [steps.loc["a", "start"] - steps.attrs["run_start"]["d1"],
                                         steps.loc["b", "start"] - steps.loc["a", "end"],
                                         steps.loc["d", "start"] - steps.loc["b", "end"]]
    slack = cp.slack.set_index("step_key")["slack"]
    assert (slack[cp.keys] == pd.Timedelta(0)).all()
    assert slack["c"] == steps.loc["b", "end"] - steps.loc["c", "end"]  # c could grow until b's end
    assert str(cp).startswith("critical path: a → b → d, ")
    # without a plan the LOADED_INPUT lines give the same answer
    assert runlens.critical_path(events).keys == ["a", "b", "d"]
    assert runlens.critical_path(events).source == "events"


def test_critical_path_follows_c_when_c_is_the_slow_arm():
    assert runlens.critical_path(diamond(c_ms=2000).frame(), plan_frame(PLAN)).keys == ["a", "c", "d"]


def test_critical_path_needs_a_plan_or_events():
    steps = runlens.step_durations(diamond().frame())
    with pytest.raises(InvalidArgument, match="needs the run's plan"):
        runlens.critical_path(steps)
    with pytest.raises(InvalidArgument, match="edges frame"):
        runlens.critical_path(steps, pd.DataFrame({"x": [1]}))


def test_critical_path_refuses_several_runs():
    both = runlens.concat_events([diamond("r1").frame(), diamond("r2", t0=T0 + 60_000).frame()])
    with pytest.raises(InvalidArgument, match="one run"):
        runlens.critical_path(both, plan_frame(PLAN))


# --------------------------------------------------------------------------- anatomy


def test_anatomy_parts_add_up_and_queued_is_starting_minus_enqueued():
    events = diamond(b_ms=1500).frame()
    a = runlens.run_anatomy(events)
    t = events.set_index("event_type")["timestamp"]
    assert a.queued == t["RUN_STARTING"] - t["RUN_ENQUEUED"]
    assert a.launching == t["RUN_START"] - t["RUN_STARTING"]
    assert a.parts.sum() == a.total == t["RUN_SUCCESS"] - t["RUN_ENQUEUED"]
    assert a.parts.drop(["queued", "launching"]).sum() == a.wall_time
    assert a.peak_concurrency == 2
    assert a.critical_path.keys == ["a", "b", "d"]
    # while b computes alone after c ended, the time is b's compute
    seg = a.segments
    assert (seg.loc[seg["part"] == "compute", "step_key"].unique().tolist()) == ["a", "b", "d"]
    # per step the phases add up to its span
    per = a.steps.set_index("step_key")
    assert (per[list(runlens.anatomy.PHASES)].sum(axis=1) == per["span"]).all()
    assert per.loc["b", "worker_startup"] == ms(450)
    assert per.loc["d", "input_loading"] == ms(40)
    assert per.loc["b", "output_handling"] == ms(30)


def test_anatomy_of_a_retried_run_has_retry_wait_and_idle_gaps():
    events = etl_run().frame()
    a = runlens.run_anatomy(events)
    assert a.parts.sum() == a.total
    per = a.steps.set_index("step_key")
    assert per.loc["transform", "retry_wait"] == ms(1000)  # STEP_UP_FOR_RETRY 4500 → WORKER_STARTING 5500
    ran = per[per["span"].notna()]
    assert (ran[list(runlens.anatomy.PHASES)].sum(axis=1) == ran["span"]).all()
    assert per.loc[["load", "report"], "span"].isna().all()  # abandoned: never ran
    assert a.idle.total_seconds() > 0 and len(a.idle_gaps) >= 1
    assert a.idle_gaps["duration"].sum() == a.idle


def test_anatomy_of_a_canceled_run_says_where():
    a = runlens.run_anatomy(canceled_run().frame())
    assert a.status == "CANCELED"
    assert "slow (compute)" in a.canceled and "1.000 s after the start" in a.canceled
    assert a.parts.sum() == a.total


def test_anatomy_of_a_run_canceled_in_the_queue():
    r = RunBuilder("q", T0).event(0, "RUN_ENQUEUED").event(2000, "RUN_CANCELING").event(2100, "RUN_CANCELED")
    a = runlens.run_anatomy(r.frame())
    assert a.canceled.startswith("canceled while queued after 2.000 s")
    assert a.wall_time is None and a.queued == ms(2100) == a.total


def test_anatomy_picks_a_run_of_several_and_refuses_otherwise():
    both = runlens.concat_events([diamond("r1").frame(), diamond("r2", t0=T0 + 60_000).frame()])
    with pytest.raises(InvalidArgument, match="one run"):
        runlens.run_anatomy(both)
    assert runlens.run_anatomy(both, "r2").run_id == "r2"


def test_run_summary_names_the_critical_path():
    summary = runlens.run_summary(diamond(b_ms=1500).frame())
    assert "Critical path" in str(summary) and "a → b → d" in str(summary)


# --------------------------------------------------------------------------- baseline


def test_flag_rule_floors_the_spread():
    base = pd.DataFrame({"key": ["b"] * 5 + ["c"] * 5, "value": [0.3] * 5 + [0.3, 0.31, 0.29, 0.3, 0.3]})
    out = compare_durations(pd.Series({"b": 1.5, "c": 0.45}), base, n_runs=5)
    assert out.loc["b", "flagged"] and not out.loc["c", "flagged"]   # 0.45: 1.5x but within 3.5 floored spreads
    assert out.loc["b", "ratio"] == pytest.approx(5.0)
    assert out.loc["b", "score"] == pytest.approx((1.5 - 0.3) / (1.4826 * 0.05))
    few = compare_durations(pd.Series({"b": 1.5}), base[base.key == "b"].head(2), n_runs=2)
    assert not few.loc["b", "flagged"]


# --------------------------------------------------------------------------- plots


def test_timeline_outlines_the_critical_path(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = diamond(b_ms=1500).frame()
    ax = runlens.plot_timeline(events, critical_path=True)
    outlined = [p for p in ax.patches if p.get_gid() == "critical_path"]
    assert len(outlined) == 3
    rows = [round(p.get_y() + p.get_height() / 2) for p in outlined]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert [labels[r] for r in rows] == ["a", "b", "d"]
    assert len([t for t in ax.texts if t.get_gid() == "critical_link"]) == 2
    assert "a → b → d" in ax.get_title(loc="left")
    ax.figure.savefig(tmp_path / "cp.png")
    plt.close(ax.figure)
    with pytest.raises(InvalidArgument, match="critical_path="):
        runlens.plot_timeline(events, critical_path="yes")


# --------------------------------------------------------------------------- regressions, rollups


def history(b_ms: list[int], c_ms: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Step rows and a runs frame of diamond runs an hour apart, b taking ``b_ms[i]``."""
    from runlens.frames import runs_frame

    frames, records = [], []
    for i, b in enumerate(b_ms):
        t0 = T0 + i * 3_600_000
        frames.append(diamond(f"r{i}", b_ms=b, t0=t0, c_ms=c_ms + (i % 3) * 7).frame())
        records.append({"id": f"r{i}", "jobName": "diamond_job", "status": "SUCCESS", "creationTime": t0 / 1000,
                        "startTime": t0 / 1000 + 0.9, "endTime": t0 / 1000 + 5, "tags": [
                            {"key": "git/sha", "value": f"sha{i}"}]})
    return runlens.step_durations(runlens.concat_events(frames)), runs_frame(records)


def test_regressions_finds_the_level_change_at_the_first_slow_run():
    steps, runs = history([300, 310, 295, 305, 1500, 1490, 1510])
    found = runlens.regressions(steps, runs)
    changes = found[found["kind"] == "change"]
    assert changes["step_key"].tolist() == ["b"]
    row = changes.iloc[0]
    assert row["run_id"] == "r4" and row["tags"] == {"git/sha": "sha4"}
    b = steps[steps.step_key == "b"].set_index("run_id")["duration"].dt.total_seconds()
    assert row["before"] == pytest.approx(np.median(b[["r0", "r1", "r2", "r3"]]))
    assert row["after"] == pytest.approx(np.median(b[["r4", "r5", "r6"]]))
    assert row["n_before"] == 4 and row["n_after"] == 3 and row["ratio"] > 3
    assert (found["kind"] == "outlier").sum() == 0


def test_one_slow_run_is_an_outlier_not_a_change():
    steps, runs = history([300, 310, 295, 1500, 305, 300, 298])
    found = runlens.regressions(steps, runs)
    assert found["kind"].tolist() == ["outlier"]
    assert found.iloc[0]["run_id"] == "r3" and found.iloc[0]["step_key"] == "b"


def test_rollup_percentiles_are_numpy_quantiles():
    steps, runs = history([300, 310, 295, 305, 1500, 1490, 1510])
    table = runlens.rollup(steps, runs, by="day")
    durations = steps.assign(run_id=steps.run_id.astype(str), step_key=steps.step_key.astype(str))
    created = dict(zip(runs.run_id, runs.created.dt.floor("D"), strict=True))
    for row in table.itertuples(index=False):
        rows = durations[(durations.step_key == row.step_key)
                         & durations.run_id.map(created).eq(row.period)]
        values = rows["duration"].dt.total_seconds().to_numpy()
        assert row.runs == len(values)
        assert [row.p50, row.p90, row.p99] == pytest.approx(np.quantile(values, [0.5, 0.9, 0.99]))
        assert row.total_time == pytest.approx(values.sum())
        assert row.success_rate == 1.0 and row.retries == 0
    per_job = runlens.rollup(steps, runs, by="month", by_step=False)
    assert per_job["runs"].sum() == 7 and per_job["job_name"].unique().tolist() == ["diamond_job"]
    with pytest.raises(InvalidArgument, match="by must be"):
        runlens.rollup(steps, by="year")


def test_heatmap_and_percentile_trend(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, runs = history([300, 310, 295, 305, 1500, 1490, 1510])
    ax = runlens.plot_heatmap(steps, runs)
    data = ax.images[0].get_array()
    assert data.shape == (7, 4)
    columns = [t.get_text() for t in ax.get_xticklabels()]
    b = columns.index("b")
    assert (data[4:, b] > 3).all() and (abs(data[:4, b] - 1) < 0.1).all()   # slow runs read red, alike white
    ax.figure.savefig(tmp_path / "heat.png")
    plt.close(ax.figure)
    ax = runlens.plot_heatmap(steps, runs, value="status")
    assert (ax.images[0].get_array() == 0).all()   # every step succeeded
    plt.close(ax.figure)
    table = runlens.rollup(steps, runs, by="day")
    ax = runlens.plot_percentile_trend(table, step="b")
    assert [line.get_gid() for line in ax.lines] == ["median"]
    assert any(c.get_gid() == "band" for c in ax.collections)
    plt.close(ax.figure)
    with pytest.raises(InvalidArgument):
        runlens.plot_heatmap(steps, value="colour")


# --------------------------------------------------------------------------- compare_to_baseline from a server


def stats_record(run_id: str, i: int, b_ms: int, status: str = "SUCCESS") -> dict:
    """A runsOrError result with Dagster's stepStats for a diamond run created i hours in."""
    t0 = T0 / 1000 + i * 3600
    spans = {"a": (1.0, 1.3), "b": (1.4, 1.4 + b_ms / 1000), "c": (1.41, 1.71)}
    spans["d"] = (max(spans["b"][1], spans["c"][1]) + 0.1, max(spans["b"][1], spans["c"][1]) + 0.4)
    stats = [{"stepKey": k, "status": "SUCCESS", "startTime": t0 + s, "endTime": t0 + e,
              "attempts": [{"startTime": t0 + s, "endTime": t0 + e}], "markers": []} for k, (s, e) in spans.items()]
    return {"id": run_id, "jobName": "diamond_job", "status": status, "creationTime": t0, "startTime": t0 + 0.5,
            "endTime": t0 + spans["d"][1] + 0.1, "tags": [], "stepStats": stats}


def baseline_server(b_ms: list[int]):
    records = [stats_record(f"r{i}", i, b) for i, b in enumerate(b_ms)]
    requests = []

    def handler(request):
        requests.append(request)
        f = request["variables"]["filter"]
        if "runIds" in f:
            found = [r for r in records if r["id"] in f["runIds"]]
        else:
            found = [r for r in reversed(records) if r["creationTime"] < f["createdBefore"]
                     and r["status"] in f["statuses"] and r["jobName"] == f["pipelineName"]]
        return {"data": {"runsOrError": {"__typename": "Runs", "results": found[: request["variables"]["limit"]]}}}

    return runlens.Client(transport=runlens.MockTransport(handler)), requests


def test_compare_to_baseline_flags_b_alone_in_the_first_slow_run():
    client, requests = baseline_server([300, 310, 295, 305, 1500, 1490])
    cmp = runlens.compare_to_baseline("r4", client, baseline=20)
    assert cmp.baseline_runs == ["r3", "r2", "r1", "r0"] and not cmp.insufficient
    assert cmp.flagged["step_key"].tolist() == ["b"]
    b = cmp.steps.set_index("step_key").loc["b"]
    # times are milliseconds (Dagster's float seconds, cut to ms as every runlens frame)
    assert b["duration"] == pytest.approx(1.5, abs=0.002) and b["baseline_median"] == pytest.approx(0.3025, abs=0.002)
    assert b["ratio"] == pytest.approx(b["duration"] / b["baseline_median"])
    assert len(requests) == 2   # the run, then every baseline run's stepStats in one request
    record = cmp.records()[0]
    assert set(record) >= {"step_key", "duration", "baseline_median", "ratio", "flagged"}
    assert isinstance(record["flagged"], bool)
    # the second slow run has a slow run in its baseline, but four alike: still flagged
    assert runlens.compare_to_baseline("r5", client).flagged["step_key"].tolist() == ["b"]


def test_compare_to_baseline_of_alike_runs_flags_nothing_and_says_when_the_baseline_is_short():
    client, _ = baseline_server([300, 310, 295, 305, 1500])
    assert runlens.compare_to_baseline("r3", client).flagged.empty
    short = runlens.compare_to_baseline("r2", client)
    assert short.insufficient and short.flagged.empty and "insufficient baseline" in str(short)
    assert runlens.compare_to_baseline("r4", client, baseline=2).insufficient


def test_compare_to_baseline_lists_new_and_missing_steps_and_refuses_bad_input():
    client, _ = baseline_server([300, 310, 295, 305])
    cmp = runlens.compare_to_baseline("r3", client)
    assert cmp.new_steps == [] and cmp.missing_steps == []
    with pytest.raises(InvalidArgument, match="baseline must be"):
        runlens.compare_to_baseline("r3", client, baseline=0)
    with pytest.raises(InvalidArgument, match="Client or a runlens.History"):
        runlens.compare_to_baseline("r3", "http://x")
    with pytest.raises(runlens.RunNotFound):
        runlens.compare_to_baseline("nope", client)


def test_compare_to_baseline_of_a_jobs_first_run_has_no_baseline():
    client, _ = baseline_server([300, 310])
    first = runlens.compare_to_baseline("r0", client)
    assert first.insufficient and first.baseline_runs == [] and first.flagged.empty
    assert first.steps["baseline_median"].isna().all() and first.new_steps == ["a", "b", "c", "d"]


# --------------------------------------------------------------------------- the CLI over a fake server


def explain_server(b_ms: list[int]):
    """A `responses` callback answering what `run explain` asks: the runs' stepStats, the
    run's events (a built diamond run) and its execution plan."""
    import json

    client, _ = baseline_server(b_ms)
    events = {f"r{i}": diamond(f"r{i}", b_ms=b, t0=T0 + i * 3_600_000).records for i, b in enumerate(b_ms)}

    def callback(request):
        body = json.loads(request.body)
        variables = body["variables"]
        if "RunlensRunsStepStats" in body["query"]:
            doc = client.transport.handler(body)
        elif "logsForRun" in body["query"]:
            run = events.get(variables["runId"])
            result = ({"__typename": "RunNotFoundError", "message": "not found"} if run is None else
                      {"__typename": "EventConnection", "events": run, "cursor": "x", "hasMore": False})
            doc = {"data": {"logsForRun": result}}
        elif "executionPlan" in body["query"]:
            doc = {"data": {"runOrError": {"__typename": "Run", "id": variables["runId"],
                                           "executionPlan": {"steps": PLAN},
                                           "stepStats": [{"stepKey": k} for k in "abcd"]}}}
        else:
            return 400, {}, json.dumps({"errors": [{"message": "unexpected query"}]})
        return 200, {}, json.dumps(doc)

    return callback


def test_run_explain_cli_text_json_and_errors():
    import json

    import responses
    from click.testing import CliRunner

    from runlens.cli import main
    from tests.unit.fake_dagster import BASE_URL

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, BASE_URL + "/graphql", callback=explain_server([300, 310, 295, 305, 1500]))
        result = CliRunner().invoke(main, ["run", "explain", "r4", "--json", "--url", BASE_URL])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.output)
        assert [s["step_key"] for s in doc["steps"] if s["flagged"]] == ["b"]
        assert all({"step_key", "duration", "baseline_median", "ratio", "flagged"} <= set(s) for s in doc["steps"])
        assert doc["critical_path"]["steps"] == ["a", "b", "d"] and doc["baseline_runs"] == ["r3", "r2", "r1", "r0"]
        text = CliRunner().invoke(main, ["run", "explain", "r4", "--url", BASE_URL])
        assert text.exit_code == 0
        assert "Critical    a → b → d" in text.output and "Flagged     b " in text.output
        short = CliRunner().invoke(main, ["run", "explain", "r1", "--url", BASE_URL])
        assert "insufficient baseline" in short.output
        missing = CliRunner().invoke(main, ["run", "explain", "nope", "--json", "--url", BASE_URL])
        assert missing.exit_code == 3 and json.loads(missing.stderr)["code"] == "RUN_NOT_FOUND"
        bad = CliRunner().invoke(main, ["run", "explain", "r4", "--baseline", "0", "--json", "--url", BASE_URL])
        assert bad.exit_code == 2 and json.loads(bad.stderr)["code"] == "USAGE_ERROR"
