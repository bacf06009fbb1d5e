"""#14: the light sync (Dagster's stepStats, many runs a request) against the full sync, over the bench's 20 runs."""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

import pandas as pd

from .harness import Options, Result, interleave, log, speedup


def _client(url: str):
    from runlens import Client

    return Client(url, progress=False)


def same_steps(light: pd.DataFrame, full: pd.DataFrame) -> bool:
    """The light rows agree with the events' rows on every step Dagster keeps stats for: start, end, attempts."""
    if not len(light):
        return False
    keys = ["run_id", "step_key"]
    a = light.astype({k: str for k in keys}).set_index(keys).sort_index()
    b = full.astype({k: str for k in keys}).set_index(keys)
    if not a.index.isin(b.index).all():
        return False
    b = b.loc[a.index]
    return all(a[c].equals(b[c]) for c in ("start", "end", "attempts"))


def bench_light_sync(options: Options, url: str, run_ids: list[str]) -> Result:
    import runlens

    reps = 1 if options.quick else options.reps
    client = _client(url)
    runs = client.runs(limit=len(run_ids) + 50)
    created = runs.loc[runs["run_id"].isin(run_ids), "created"]
    since = created.min().to_pydatetime()  # exactly the bench's runs: they are the newest of its Dagster
    log(f"#14 sync of {len(run_ids)} runs into a new store: full (every event) vs light (stepStats), {reps} rep(s)")
    root = Path(tempfile.mkdtemp(prefix="runlens-bench-history-"))
    stores: dict[str, runlens.History] = {}
    reports: dict[str, list] = {"baseline": [], "runlens": []}

    def syncing(name: str, events: bool):
        def run():
            path = root / f"{name}-{len(reports[name])}"
            h = runlens.History(path)
            reports[name].append(h.sync(_client(url), since=since, grace=0, events=events))
            stores[name] = h
            return h
        return run

    try:
        samples = interleave({"baseline": syncing("baseline", True), "runlens": syncing("runlens", False)},
                             reps, warmup=not options.quick)
        full, light = stores["baseline"].steps(), stores["runlens"].steps()
        identical = same_steps(light, full) and sorted(light.attrs["light_runs"]) == sorted(run_ids)
        sizes = {name: sum(p.stat().st_size for p in h._store.root.rglob("*.parquet"))
                 for name, h in stores.items()}
        events = reports["baseline"][-1].events_written
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = speedup(samples)
    log(f"#14 light sync {ratio:.1f}x faster ({statistics.median(samples['runlens']) * 1000:.0f} ms vs "
        f"{statistics.median(samples['baseline']):.2f} s); steps agree: {identical}")
    return Result(
        id="14",
        what=f"light sync (`events=False`) of the bench's {len(run_ids)} runs into a new store",
        baseline=f"the full sync of the same runs ({events:,} events)",
        samples=samples,
        figure="baseline / runlens",
        value=ratio,
        target="≥ 10×",
        passed=ratio >= 10 and identical,
        extra={"runs": len(run_ids), "events": events, "identical_rows": identical, "store_bytes": sizes,
               "light_steps": len(light), "full_steps": len(full)},
        notes=[f"the light store holds {len(light)} step rows in {sizes['runlens']:,} bytes of Parquet, the full "
               f"one {events:,} events and {len(full)} step rows in {sizes['baseline']:,} bytes; the light rows' "
               "start, end and attempts equal the events' (identical_rows)"],
    )
