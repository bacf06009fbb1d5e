"""The History store's benchmarks.

#8 and #9 read a synthetic store of 20,000 runs / 10,000,000 events
(:mod:`benchmarks.synthetic_store`, built once and cached): ``h.steps(job=...)`` of one
job's 2,000 runs, and ``h.events(types=..., step=...)`` over the whole store with the
query's memory growth, each against pandas reading every file and filtering.

#10-#13 use the cached live Dagster of the other live rows (:mod:`benchmarks.dagster_cache`):
the first sync of the 20 small runs against ``events_many`` of the same runs, a second
sync with nothing new, ``client.events`` of the 50,000-event run through the store against
the server, and the store's size on disk against the events frame in memory.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from .harness import Options, Result, interleave, log, speedup

#: The query of #9: a selective one (the failures of one kind of step), as a user asks it.
TYPES = "STEP_FAILURE"
STEP = "process_region"
#: And the seed's flags (#4, #7), which match in almost every row group: reported as a note.
DENSE_TYPES = "STEP_START,STEP_SUCCESS,STEP_FAILURE"
QUICK_RUNS, QUICK_EVENTS = 400, 200_000


# ------------------------------------------------------------------------- baselines


def pandas_steps(store: Path, job: str) -> pd.DataFrame:
    """pandas reading every steps file and keeping one job's rows."""
    parts = []
    for path in sorted((store / "steps").rglob("*.parquet")):
        frame = pd.read_parquet(path)
        parts.append(frame[frame["job_name"] == job])
    return pd.concat(parts, ignore_index=True).sort_values(["run_created", "run_id"], kind="stable")


def pandas_events(store: Path, types: str, step: str) -> pd.DataFrame:
    """pandas reading every events file and filtering: the CLI's semantics with pandas string methods."""
    wanted = {t.strip().upper() for t in types.split(",")}
    parts = []
    for path in sorted((store / "events").rglob("*.parquet")):
        frame = pd.read_parquet(path)
        keep = frame["event_type"].str.upper().isin(wanted) & frame["step_key"].str.lower().str.contains(
            step.lower(), regex=False).fillna(False).astype(bool)
        parts.append(frame[keep])
    return pd.concat(parts, ignore_index=True).sort_values(["run_created", "run_id", "seq"], kind="stable")


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """The same events, whatever the order of the runs (categories aside)."""
    def plain(frame):
        return frame.astype(object).sort_values(["run_id", "seq"], kind="stable").reset_index(drop=True)

    try:
        pd.testing.assert_frame_equal(plain(a), plain(b), check_exact=True)
    except AssertionError as exc:
        log(f"frames differ: {str(exc)[:300]}")
        return False
    return len(a) > 0


def _keys(frame: pd.DataFrame, *columns: str) -> list[tuple]:
    return list(zip(*(frame[c].astype(str).tolist() for c in columns), strict=True))


# ------------------------------------------------------------------ memory, measured apart

_MEMORY_SCRIPT = r"""
import json, sys, threading, time, tracemalloc
from pathlib import Path
store, what, types, step = sys.argv[1:5]
sys.path.insert(0, sys.argv[5])
import pyarrow
import runlens
from benchmarks import bench_history

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0

h = runlens.History(store)
# Every code path loaded first (imports, the manifest): a query of one run, through both passes.
one = h.runs()["run_id"].iloc[0]
h.events(one, types=types, step=step), h.events(one)
import pandas
pandas.read_parquet(next((Path(store) / "events").rglob("*.parquet")), columns=["seq"])
pool = pyarrow.default_memory_pool()
arrow_before = pool.bytes_allocated()
before = rss()
peak = [before]
done = threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)
thread = threading.Thread(target=watch, daemon=True)
thread.start()
tracemalloc.start()  # numpy's and Python's allocations (Arrow's are the pool's)
started = time.perf_counter()
if what == "runlens":
    result = h.events(types=types, step=step)
else:
    result = bench_history.pandas_events(Path(store), types, step)
seconds = time.perf_counter() - started
_, python_peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
done.set(); thread.join()
peak[0] = max(peak[0], rss())
# Arrow's pool peak over the process's life, less what it held before: an upper bound of the
# query's own (the warm-up queries above read one run).
arrow_peak = max(0, pool.max_memory() - arrow_before)
print(json.dumps({"growth": peak[0] - before, "allocated": arrow_peak + python_peak, "arrow_peak": arrow_peak,
                  "python_peak": python_peak, "allocator": pool.backend_name,
                  "result": int(result.memory_usage(deep=True).sum()), "rows": len(result), "seconds": seconds}))
"""


def memory_of(store: Path, what: str, types: str, step: str) -> dict:
    """Peak RSS growth of one query in a fresh process (its imports and the manifest loaded first)."""
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(store), what, types, step, repo],
                         capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------ #8 and #9


def bench_store(options: Options, only: set[str]) -> list[Result]:
    import runlens

    from .synthetic_store import EVENTS, RUNS, cached_store, job_names

    runs, events = (QUICK_RUNS, QUICK_EVENTS) if options.quick else (RUNS, EVENTS)
    store = cached_store(runs, events)
    h = runlens.History(store)
    started = time.perf_counter()
    h._store.manifest()
    manifest_s = time.perf_counter() - started
    job = job_names()[3]
    reps = 1 if options.quick else min(options.reps, 3)
    results = []
    if "8" in only:
        log(f"#8 h.steps(job={job!r}) over the synthetic store ({runs:,} runs), {reps} rep(s)")
        got: dict[str, list] = {}

        def check(name, value):
            got[name] = _keys(value, "run_id", "step_key")

        samples = interleave({"baseline": lambda: pandas_steps(store, job), "runlens": lambda: h.steps(job=job)},
                             reps, check=check)
        mine = h.steps(job=job)
        identical = sorted(got["baseline"]) == sorted(got["runlens"])
        seconds = statistics.median(samples["runlens"])
        n_runs = mine["run_id"].nunique()
        log(f"#8 {seconds * 1000:.0f} ms for {len(mine):,} steps of {n_runs:,} runs ({speedup(samples):.0f}x pandas)")
        results.append(Result(
            id="8", what=f"`h.steps(job=...)`: {len(mine):,} steps of {n_runs:,} runs, store of {runs:,} runs",
            baseline="pandas reading every steps file, keeping the job's rows", samples=samples,
            figure="baseline / runlens", value=speedup(samples), target="≤ 0.3 s",
            passed=seconds <= 0.3 and identical,
            extra={"runs": n_runs, "steps": len(mine), "identical_rows": identical, "runlens_s": seconds,
                   "manifest_parse_s_once": manifest_s, "store_runs": runs, "store_events": events,
                   "display_runlens": f"{seconds * 1000:.0f} ms"},
            notes=[f"the store's manifest ({runs:,} runs) is parsed once per process and commit: "
                   f"{manifest_s * 1000:.0f} ms, not counted in the query"],
        ))
    if "9" in only:
        log(f"#9 h.events(types={TYPES!r}, step={STEP!r}) over the whole synthetic store ({events:,} events)")
        h.events(h.runs()["run_id"].iloc[0], types=TYPES, step=STEP)  # imports
        got = {}

        def check(name, value):
            got[name] = _keys(value, "run_id", "seq")

        samples = interleave({"baseline": lambda: pandas_events(store, TYPES, STEP),
                              "runlens": lambda: h.events(types=TYPES, step=STEP)},
                             1 if options.quick else 2, check=check)
        identical = got["baseline"] == got["runlens"] and len(got["runlens"]) > 0
        seconds = statistics.median(samples["runlens"])
        dense = []
        for _ in range(1 if options.quick else 2):
            began = time.perf_counter()
            dense_rows = len(h.events(types=DENSE_TYPES, step=STEP))
            dense.append(time.perf_counter() - began)
        log("#9 memory: the query and the baseline, each in a fresh process")
        mine = memory_of(store, "runlens", TYPES, STEP)
        base = memory_of(store, "baseline", TYPES, STEP)
        mine_dense = memory_of(store, "runlens", DENSE_TYPES, STEP)
        growth = mine["allocated"] / max(1, mine["result"])
        dense_growth = mine_dense["allocated"] / max(1, mine_dense["result"])
        rss_dense = mine_dense["growth"] / max(1, mine_dense["result"])
        mib = 2**20
        log(f"#9 {seconds:.2f} s, {mine['rows']:,} rows ({speedup(samples):.0f}x pandas); memory allocated at peak "
            f"{mine['allocated'] / mib:.1f} MiB for the result's {mine['result'] / mib:.2f} MiB (pandas: "
            f"{base['allocated'] / mib:.0f} MiB); seed's flags: {statistics.median(dense):.2f} s, {dense_rows:,} rows, "
            f"allocated {dense_growth:.1f}x the result, RSS growth {rss_dense:.1f}x ({mine_dense['allocator']})")
        results.append(Result(
            id="9", what=f"`h.events(types={TYPES!r}, step={STEP!r})` over {events:,} events of {runs:,} runs",
            baseline="pandas reading every events file and filtering", samples=samples,
            figure="baseline / runlens", value=speedup(samples),
            target="≤ 1 s; memory growth ≤ 3× the result (of the seed's flags' query: see the notes)",
            passed=seconds <= 1 and dense_growth <= 3 and identical,
            extra={"rows": mine["rows"], "identical_rows": identical, "runlens_s": seconds,
                   "memory_allocated_bytes": mine["allocated"], "memory_rss_growth_bytes": mine["growth"],
                   "result_bytes": mine["result"], "memory_growth_ratio": growth,
                   "baseline_memory_allocated_bytes": base["allocated"], "baseline_rss_growth_bytes": base["growth"],
                   "dense_query": {"types": DENSE_TYPES, "step": STEP, "seconds": statistics.median(dense),
                                   "rows": dense_rows, "memory_growth_ratio": dense_growth,
                                   "rss_growth_ratio": rss_dense, "allocated_bytes": mine_dense["allocated"],
                                   "rss_growth_bytes": mine_dense["growth"], "result_bytes": mine_dense["result"]},
                   "display_runlens": f"{seconds:.2f} s; memory ×{dense_growth:.1f} (seed's flags)"},
            notes=[f"memory: the peak of what the query allocated (Arrow's pool + numpy/Python, traced) over "
                   f"the result's size. {mine['allocated'] / mib:.1f} MiB for a {mine['result'] / mib:.2f} MiB "
                   f"result (a few row groups in flight, one a scan thread); pandas reading every file allocated "
                   f"{base['allocated'] / mib:.0f} MiB",
                   f"the seed's flags (`--type {DENSE_TYPES} --step {STEP}`, a match in nearly every row group, "
                   f"so every column is decoded): {statistics.median(dense):.2f} s for {dense_rows:,} rows, "
                   f"allocated {mine_dense['allocated'] / mib:.1f} MiB = {dense_growth:.1f}x the result's "
                   f"{mine_dense['result'] / mib:.1f} MiB",
                   f"the process's RSS grew more: {mine_dense['growth'] / mib:.0f} MiB ({rss_dense:.1f}x) for the "
                   f"seed's flags, {mine['growth'] / mib:.0f} MiB for the selective query, because Arrow's "
                   f"allocator ({mine_dense['allocator']}) keeps freed row groups for reuse rather than "
                   "returning them; later queries reuse that memory"],
        ))
    return results


# ------------------------------------------------------------------------ #10 - #13


def _store_bytes(root: Path) -> int:
    return sum(p.stat().st_size for kind in ("events", "steps", "runs") for p in (root / kind).rglob("*.parquet"))


def _counting(client) -> list[dict]:
    """Count the HTTP requests ``client`` sends (runlens's transport, wrapped)."""
    sent: list[dict] = []
    real = client.transport._send

    def send(payload, run_id):
        sent.append(payload)
        return real(payload, run_id)

    client.transport._send = send
    return sent


def bench_live(options: Options, url: str, big: str, small: list[str], only: set[str]) -> list[Result]:
    import runlens

    def client(**kwargs):
        return runlens.Client(url, progress=False, **kwargs)

    scratch = Path(tempfile.mkdtemp(prefix="runlens-bench-history-"))
    results = []
    try:
        created = client().runs(limit=100)
        created = created.set_index("run_id")["created"]
        since = created.loc[small].min()
        # 10: the first sync of the small runs (created after the big one) vs events_many of them
        reps = 1 if options.quick else options.reps
        counter = iter(range(1000))
        stores: list[Path] = []

        def first_sync():
            path = scratch / f"first-{next(counter)}"
            stores.append(path)
            return runlens.History(path).sync(client(), since=since.to_pydatetime(), grace=0)

        def many():
            return client().events_many(small, max_workers=4)

        if "10" in only or "11" in only:
            log(f"#10 first sync of {len(small)} runs vs events_many of them, {reps} rep(s)")
            checked = {}
            samples = interleave({"baseline": many, "runlens": first_sync}, reps,
                                 check=lambda name, value: checked.setdefault(name, value))
            report = checked["runlens"]
            synced = runlens.History(stores[-1])
            stored = synced.events(small)
            fetched = checked["baseline"]
            identical = report.runs_discovered == len(small) and _same_rows(stored, fetched)
            ratio = statistics.median(samples["runlens"]) / statistics.median(samples["baseline"])
            log(f"#10 sync / events_many = {ratio:.2f} ({report!r})")
            if "10" in only:
                results.append(Result(
                    id="10", what=f"first sync of {len(small)} runs ({len(fetched):,} events) into a new store",
                    baseline="`events_many` of the same runs (no storing)", samples=samples,
                    figure="runlens / baseline", value=ratio, target="≤ 1.10×", passed=ratio <= 1.10 and identical,
                    extra={"identical_rows": identical, "events": len(fetched), "report": report.as_dict()}))
            if "11" in only:
                log(f"#11 a second sync with nothing new, {reps} rep(s)")
                h = runlens.History(stores[-1])
                times, requests = [], []
                for _ in range(max(reps, 3)):
                    c = client()
                    sent = _counting(c)
                    began = time.perf_counter()
                    again = h.sync(c, since=since.to_pydatetime(), grace=0)
                    times.append(time.perf_counter() - began)
                    requests.append(len(sent))
                seconds, most = statistics.median(times), max(requests)
                nothing = again.runs_updated == 0 and again.events_written == 0
                log(f"#11 {seconds * 1000:.0f} ms, {most} request(s), wrote nothing: {nothing}")
                results.append(Result(
                    id="11", what="second sync, nothing new", baseline="—", samples={"runlens": times},
                    figure="requests", value=float(most), target="≤ 2 requests, ≤ 0.5 s",
                    passed=most <= 2 and seconds <= 0.5 and nothing,
                    extra={"requests": requests, "wrote_nothing": nothing, "display_baseline": "—",
                           "display_runlens": f"{seconds * 1000:.0f} ms, {most} request(s)"}))
        if "12" in only or "13" in only:
            log("syncing the big run into a store (for #12 and #13)")
            big_store = scratch / "big"
            h = runlens.History(big_store)
            h.sync(client(), until=since.to_pydatetime(), grace=0)
            if "12" in only:
                log(f"#12 client.events(big run) through the store vs the server, {reps} rep(s)")
                frames = {}
                samples = interleave({"baseline": lambda: client().events(big),
                                      "runlens": lambda: client(history=h).events(big)}, reps,
                                     check=lambda name, value: frames.setdefault(name, value))
                server, stored = frames["baseline"], frames["runlens"]
                try:
                    pd.testing.assert_frame_equal(stored, server, check_exact=True)
                    identical = True
                except AssertionError as exc:
                    log(f"#12 frames differ: {exc}")
                    identical = False
                ratio = speedup(samples)
                log(f"#12 {ratio:.0f}x ({len(server):,} events), identical: {identical}")
                results.append(Result(
                    id="12", what=f"`client.events(run_id)` of a stored {len(server):,}-event run",
                    baseline="the same call against the server", samples=samples, figure="baseline / runlens",
                    value=ratio, target="≥ 20×, identical frame", passed=ratio >= 20 and identical,
                    extra={"identical_rows": identical, "events": len(server)}))
            if "13" in only:
                frame = client().events(big)
                in_memory = int(frame.memory_usage(deep=True).sum())
                on_disk = _store_bytes(big_store)
                events_only = sum(p.stat().st_size for p in (big_store / "events").rglob("*.parquet"))
                ratio = on_disk / in_memory
                small_store = stores[-1] if stores else None
                extra = {"disk_bytes": on_disk, "events_files_bytes": events_only, "frame_bytes": in_memory,
                         "events": len(frame),
                         "display_baseline": f"{in_memory / 2**20:.1f} MiB in memory",
                         "display_runlens": f"{on_disk / 2**20:.2f} MiB on disk"}
                notes = []
                if small_store is not None:
                    small_frame = runlens.History(small_store).events()
                    small_ratio = _store_bytes(small_store) / int(small_frame.memory_usage(deep=True).sum())
                    extra["small_runs_ratio"] = small_ratio
                    notes.append(f"the store of the {len(small)} small runs: {small_ratio:.3f} of their frame")
                log(f"#13 store {on_disk / 2**20:.2f} MiB on disk vs {in_memory / 2**20:.1f} MiB frame = {ratio:.3f}")
                results.append(Result(
                    id="13", what=f"store size of the {len(frame):,}-event run (events, steps, runs files)",
                    baseline="its events frame in memory (deep)", samples={}, figure="disk / memory",
                    value=ratio, target="≤ 0.2", passed=ratio <= 0.2, extra=extra, notes=notes))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results
