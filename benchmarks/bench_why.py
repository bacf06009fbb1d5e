"""Benchmark #16 (issue 17): ``explain_run`` of a run against a 20-run baseline, from the
server (the baseline's stepStats in one runsOrError request) and from a History store (no
request for the baseline), against the way one would do it with events alone: every event
of the run and its 20 predecessors, then step_durations and the medians."""

from __future__ import annotations

import tempfile
import time

from .dagster_cache import CachedRuns
from .harness import Options, Result, interleave, log

BASELINE = 20


def _naive(client, run_id: str, job: str) -> dict:
    """The baseline: every event of the baseline runs, step_durations, per-step medians."""
    import runlens

    runs = client.runs(job=job, statuses=["SUCCESS"], limit=BASELINE + 1)
    created = runs.loc[runs["run_id"] == run_id, "created"].iloc[0]
    base = runs[runs["created"] < created].head(BASELINE)
    events = client.events(run_id)
    steps = runlens.step_durations(client.events_many(list(base["run_id"])))
    medians = steps.groupby(steps["step_key"].astype(str))["duration"].median()
    mine = runlens.step_durations(events).set_index("step_key")["duration"]
    return {"ratio": (mine / medians.reindex(mine.index)).to_dict(), "anatomy": runlens.run_anatomy(events)}


def bench_explain(options: Options, runs: CachedRuns, url: str) -> Result:
    import runlens

    client = runlens.Client(url, progress=False)
    run_id = runs.small[-1]   # the newest: the big run and 19 small ones before it
    job = str(client.run(run_id).job_name)
    store = tempfile.mkdtemp(prefix="runlens-bench-history-")
    started = time.monotonic()
    history = runlens.History(store)
    history.sync(client, job=job, grace=0)
    log(f"#16: History store of {len(history.runs(job=job))} runs synced in {time.monotonic() - started:.1f} s")

    def check(name, value):
        if name != "baseline":
            assert len(value.comparison.baseline_runs) == BASELINE, value.comparison.baseline_runs

    samples = interleave({
        "baseline": lambda: _naive(client, run_id, job),
        "server": lambda: runlens.explain_run(run_id, client, baseline=BASELINE),
        "history": lambda: runlens.explain_run(run_id, history, baseline=BASELINE),
    }, 1 if options.quick else options.reps, check=check)
    import statistics

    base, server, stored = (statistics.median(samples[k]) for k in ("baseline", "server", "history"))
    return Result(
        id="16", what=f"`explain_run` of a run against a {BASELINE}-run baseline",
        baseline="every event of the 21 runs, step_durations, medians", samples=samples,
        figure="baseline / runlens (server; History)", value=base / server,
        target="server ≥ 3×, History ≥ 10×", passed=base / server >= 3 and base / stored >= 10,
        extra={"server_s": server, "history_s": stored, "baseline_s": base, "history_speedup": base / stored},
        notes=[f"server {server:.3f} s ({base / server:.1f}x), History {stored:.3f} s ({base / stored:.1f}x), "
               f"baseline {base:.3f} s"],
    )
