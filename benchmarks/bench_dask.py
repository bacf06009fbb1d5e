"""#15: a step's p50/p90 per job and week over the synthetic 10M-event History store:
pandas in one process vs ``runlens.dask`` on a LocalCluster of 2 worker processes.

Both recompute the steps from the stored events (what a store too big for one machine
needs: the events are the big table) and then take the quantiles of the small steps table:

* pandas: ``History.events()`` (every event in one frame) → ``runlens.step_durations`` →
  :func:`weekly_quantiles`;
* Dask: ``runlens.dask.steps(store, from_events=True)`` (partitions of whole runs, each read
  and turned into steps on a worker) → ``.compute()`` → :func:`weekly_quantiles`.

Each variant runs in a fresh process of its own (``python -m benchmarks.bench_dask pandas|dask
STORE OUT``), so its peak memory is its own: ``ru_maxrss`` of the pandas process, of each
Dask worker process, and of the Dask driver (client and scheduler). On 2 cores a speed-up
is not the point: bounded memory is (target: a worker's peak <= 1/4 of the pandas process's).
The two quantile tables must be equal.
"""

from __future__ import annotations

import collections
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .harness import Options, Result, log

ID = "15"
QUICK = {"runs": 400, "events": 200_000}
ROWS_PER_PARTITION = 500_000
WORKERS = 2


def weekly_quantiles(steps, runs):
    """p50 and p90 of each step's duration (seconds) per job and week (of the step's start, UTC, from Monday)."""
    import pandas as pd

    jobs = pd.Series(runs["job_name"].astype(str).to_numpy(), index=runs["run_id"].astype(str).to_numpy())
    done = steps[steps["duration"].notna()]
    frame = pd.DataFrame({
        "job_name": done["run_id"].astype(str).map(jobs).to_numpy(),
        "step_key": done["step_key"].astype(str).to_numpy(),
        "week": done["start"].dt.tz_localize(None).dt.to_period("W-SUN").dt.start_time.to_numpy(),
        "seconds": done["duration"].dt.total_seconds().to_numpy(),
    })
    grouped = frame.groupby(["job_name", "step_key", "week"], sort=True)["seconds"]
    return pd.DataFrame({"p50": grouped.quantile(0.5), "p90": grouped.quantile(0.9)}).reset_index()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _pandas(store: str) -> dict:
    import runlens

    h = runlens.History(store)
    t0 = time.perf_counter()
    events = h.events()
    t1 = time.perf_counter()
    steps = runlens.step_durations(events)
    t2 = time.perf_counter()
    table = weekly_quantiles(steps, h.runs())
    t3 = time.perf_counter()
    return {"table": table, "events": len(events), "steps": len(steps), "frame_mb": events.memory_usage(deep=True)
            .sum() / 1e6, "phases": {"read events into one frame": t1 - t0, "step_durations": t2 - t1,
                                     "quantiles": t3 - t2}, "seconds": t3 - t0, "peak_mb": _peak_mb()}


def _dask(store: str) -> dict:
    from distributed import Client, LocalCluster, get_task_stream

    import runlens
    import runlens.dask as rd

    started = time.perf_counter()
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        idle = client.run(_peak_mb)
        warm = time.perf_counter()
        client.run(_import_runlens_dask)  # what every worker pays once, not per query
        t0 = time.perf_counter()
        ddf = rd.steps(store, from_events=True, rows_per_partition=ROWS_PER_PARTITION)
        t1 = time.perf_counter()
        with get_task_stream(client) as stream:
            steps = ddf.compute()
        t2 = time.perf_counter()
        table = weekly_quantiles(steps, runlens.History(store).runs())
        t3 = time.perf_counter()
        peaks = client.run(_peak_mb)
    # Where the workers' time went: task compute by kind, transfers, spilling.
    spent: collections.Counter = collections.Counter()
    for task in stream.data:
        key = task["key"][0] if isinstance(task["key"], tuple) else str(task["key"])
        kind = ("read + frame + step_durations" if key.startswith(("runlens-", "_partition_steps"))
                else "concatenate for the client" if "repartition" in key or "concat" in key else key.split("-")[0])
        for part in task["startstops"]:
            label = kind if part["action"] == "compute" else part["action"]
            spent[label] += part["stop"] - part["start"]
    return {"table": table, "steps": len(steps), "partitions": ddf.npartitions,
            "phases": {"cluster start": warm - started, "workers import runlens.dask": t0 - warm, "plan (manifest → graph)": t1 - t0,
                       "compute (workers) and transfer": t2 - t1, "quantiles": t3 - t2},
            "worker_seconds": dict(spent), "seconds": t3 - t0, "peak_mb_workers": sorted(round(v) for v in peaks.values()),
            "idle_mb_workers": sorted(round(v) for v in idle.values()), "peak_mb_driver": _peak_mb()}


def _import_runlens_dask() -> None:
    import runlens.dask  # noqa: F401


def _in_process(variant: str, store: Path) -> dict:
    """Run a variant in a fresh interpreter; its result table comes back through a Parquet file."""
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run([sys.executable, "-m", "benchmarks.bench_dask", variant, str(store), str(out)], check=True,
                       cwd=Path(__file__).resolve().parents[1])
        result = json.loads((out / "result.json").read_text())
        result["table"] = pd.read_parquet(out / "table.parquet")
    return result


def run(options: Options) -> list[Result]:
    import pandas as pd

    from .synthetic_store import build_store, cached_store

    with tempfile.TemporaryDirectory() as tmp:
        if options.quick:
            store = build_store(Path(tmp) / "store", **QUICK, progress=False)
        else:
            store = cached_store()
        log(f"#{ID}: step p50/p90 per job and week, pandas vs runlens.dask on {WORKERS} workers ({store})")
        reps = 1 if options.quick else min(options.reps, 2)  # minutes each at full size
        pandas_runs, dask_runs = [], []
        for rep in range(reps):
            pandas_runs.append(_in_process("pandas", store))
            dask_runs.append(_in_process("dask", store))
            log(f"  rep {rep + 1}/{reps}: pandas {pandas_runs[-1]['seconds']:.1f} s, "
                f"{pandas_runs[-1]['peak_mb']:.0f} MB; dask {dask_runs[-1]['seconds']:.1f} s, "
                f"workers {dask_runs[-1]['peak_mb_workers']} MB")
    pd.testing.assert_frame_equal(dask_runs[0]["table"], pandas_runs[0]["table"])
    pandas_peak = max(r["peak_mb"] for r in pandas_runs)
    worker_peak = max(max(r["peak_mb_workers"]) for r in dask_runs)
    ratio = worker_peak / pandas_peak
    samples = {"baseline": [r["seconds"] for r in pandas_runs], "runlens": [r["seconds"] for r in dask_runs]}
    p, d = pandas_runs[-1], dask_runs[-1]
    notes = [
        f"{p['events']:,} events, {p['steps']:,} steps, {len(p['table']):,} (job, step, week) rows; the two "
        "quantile tables are equal",
        "pandas: " + ", ".join(f"{k} {v:.1f} s" for k, v in p["phases"].items())
        + f"; the events frame {p['frame_mb']:.0f} MB, the process's peak {p['peak_mb']:.0f} MB",
        f"dask ({d['partitions']} partitions of ~{ROWS_PER_PARTITION:,} rows): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in d["phases"].items())
        + "; workers' time: " + ", ".join(f"{k} {v:.1f} s" for k, v in
                                          sorted(d["worker_seconds"].items(), key=lambda kv: -kv[1])),
        f"peak memory: pandas process {pandas_peak:.0f} MB; each Dask worker {d['peak_mb_workers']} MB "
        f"(idle {d['idle_mb_workers']} MB); the Dask driver (client + scheduler) {d['peak_mb_driver']:.0f} MB",
    ]
    for note in notes:
        log("  " + note)
    median_ratio = pd.Series(samples["runlens"]).median() / pd.Series(samples["baseline"]).median()
    return [Result(
        id=ID, what=f"a step's p50/p90 per job and week, steps recomputed from {p['events']:,} stored events: "
                    f"runlens.dask on {WORKERS} local workers",
        baseline="pandas in one process (History.events → step_durations)", samples=samples,
        figure="peak memory: worker / pandas process", value=ratio, target="<= 0.25", passed=ratio <= 0.25,
        extra={"time_dask_over_pandas": median_ratio, "pandas": {k: v for k, v in p.items() if k != "table"},
               "dask": {k: v for k, v in d.items() if k != "table"}},
        notes=notes + [f"time: dask / pandas = {median_ratio:.2f}"])]


def main(argv: list[str]) -> int:
    variant, store, out = argv
    result = _pandas(store) if variant == "pandas" else _dask(store)
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    result.pop("table").to_parquet(path / "table.parquet")
    (path / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
