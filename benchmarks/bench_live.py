"""The benchmarks against the live local Dagster: #1, #2 (one 50,000+-event run), #5 (20
runs through a latency proxy), #6 (start-up) and #10-#13 (History, in bench_history) and #14 (the light sync, in bench_light_sync)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from . import baselines
from .dagster_cache import CachedRuns
from .harness import Options, Result, interleave, log, speedup

PROXY_DELAY = 0.05
MANY_WORKERS = 4
PROXY_LIMIT = 8  # concurrent requests beyond this get 429, like a rate-limiting gateway


def _client(url: str):
    from runlens import Client

    return Client(url, progress=False)


def _assert_same_events(expected: list[dict], frame: pd.DataFrame) -> None:
    from .bench_synthetic import comparable_rows

    got = comparable_rows(frame, typed=True)
    want = [(None, e["message"], e["timestamp"], e["level"], e.get("stepKey"), e.get("eventType")) for e in expected]
    got = [(None, *row[1:]) for row in got]
    if got != want:
        raise AssertionError("runlens's frame differs from the events the bare loop fetched")


# ----------------------------------------------------------------------- #1 and #2


def statistics_of_pages(url: str, run_id: str) -> dict:
    """Where the time of one fetch goes: the server's time per page vs runlens's decoding."""
    import requests

    from runlens import queries
    from runlens.event_decoder import decode_events_page
    from runlens.frames import EventColumns

    session = requests.Session()
    session.trust_env = False
    server, parse, bodies = [], [], []
    cursor = None
    while True:
        started = time.perf_counter()
        response = session.post(url, json={"query": queries.EVENTS,
                                           "variables": {"runId": run_id, "limit": 1000, "afterCursor": cursor}})
        body = response.content
        received = time.perf_counter()
        result = json.loads(body)["data"]["logsForRun"]
        server.append(received - started)
        parse.append(time.perf_counter() - received)
        bodies.append(body)
        cursor = result["cursor"] or cursor
        if not result["hasMore"] or not result["events"]:
            break
    add = []
    columns = EventColumns(run_id)
    for body in bodies:
        started = time.perf_counter()
        page = decode_events_page(body, run_id)  # None: runlens would take the general way
        columns.extend(page.columns if page else EventColumns(run_id).add(json.loads(body)["data"]["logsForRun"]["events"]))
        add.append(time.perf_counter() - started)
    started = time.perf_counter()
    columns.frame()
    build = time.perf_counter() - started
    return {
        "pages": len(bodies),
        "server_ms_per_page_median": 1000 * statistics.median(server),
        "server_s_total": sum(server),
        "json_ms_per_page_median": 1000 * statistics.median(parse),
        "json_s_total": sum(parse),
        "runlens_add_ms_per_page_median": 1000 * statistics.median(add),
        "runlens_add_s_total": sum(add),
        "runlens_final_build_s": build,
    }


def bench_fetch(options: Options, url: str, run_id: str, n_events: int) -> list[Result]:
    from runlens import queries

    reps = 1 if options.quick else options.reps
    log(f"#1 every event of run {run_id[:8]} ({n_events:,} events): bare requests loop vs runlens, {reps} rep(s)")
    reference: dict = {}

    def check(name, value):
        if name == "baseline":
            reference["events"] = value
        else:
            _assert_same_events(reference["events"], value)

    samples1 = interleave(
        {"baseline": lambda: baselines.bare_fetch(url, run_id, queries.EVENTS),
         "runlens": lambda: _client(url).events(run_id)},
        reps, warmup=not options.quick, check=check,
    )
    reference.clear()
    ratio1 = statistics.median(samples1["runlens"]) / statistics.median(samples1["baseline"])
    passes = [statistics_of_pages(url, run_id) for _ in range(1 if options.quick else 3)]
    timings = sorted(passes, key=lambda t: t["server_s_total"])[len(passes) // 2]
    log(f"#1 runlens / baseline = {ratio1:.3f}; server {timings['server_ms_per_page_median']:.1f} ms/page, "
        f"runlens conversion {timings['runlens_add_ms_per_page_median']:.2f} ms/page "
        f"+ {1000 * timings['runlens_final_build_s']:.0f} ms at the end")
    result1 = Result(
        id="1",
        what=f"every event of a {n_events:,}-event run, webserver → typed DataFrame",
        baseline="bare requests loop, pages of 1000, JSON parsing only (same query document)",
        samples=samples1,
        figure="runlens / baseline",
        value=ratio1,
        target="≤ 1.05",
        passed=ratio1 <= 1.05,
        extra={"events": n_events, "run_id": run_id, "where_the_time_goes": timings},
        notes=[
            f"server {timings['server_ms_per_page_median']:.0f} ms a page of 1000 (request to last byte, "
            f"{timings['server_s_total']:.2f} s in all) vs runlens {timings['runlens_add_ms_per_page_median']:.1f} ms "
            f"a page from body to columns while the next is in flight, and {1000 * timings['runlens_final_build_s']:.0f} ms "
            "to build the frame at the end"
        ],
    )

    log(f"#2 the same fetch: the seed's way (pages of 100, a model per event) vs runlens, {reps} rep(s)")
    samples2 = interleave(
        {"baseline": lambda: baselines.seed_fetch(url, run_id),
         "runlens": lambda: _client(url).events(run_id)},
        reps, warmup=not options.quick,
        check=lambda name, value: None if len(value) == n_events else (_ for _ in ()).throw(
            AssertionError(f"{name} fetched {len(value)} events, not {n_events}")),
    )
    ratio2 = speedup(samples2)
    # However fast the client, a fetch in pages of 1000 takes the server's own time (its
    # fastest pass: the machine is shared, so this is an estimate, not a bound).
    fastest_server = min(t["server_s_total"] for t in passes)
    ceiling2 = statistics.median(samples2["baseline"]) / fastest_server
    log(f"#2 speedup {ratio2:.2f}x (ceiling about {ceiling2:.2f}x: the seed's way vs the server's own time "
        f"for pages of 1000)")
    result2 = Result(
        id="2",
        what="the same fetch",
        baseline="the seed's way: pages of 100, its RunEvent model per event, then a DataFrame",
        samples=samples2,
        figure="baseline / runlens",
        value=ratio2,
        target="≥ 2.5×",
        passed=ratio2 >= 2.5,
        extra={"events": n_events, "ceiling_server_time_pages_of_1000": ceiling2,
               "server_s_pages_of_1000_fastest_pass": fastest_server},
        notes=[f"ceiling about {ceiling2:.2f}x: the seed's way takes {statistics.median(samples2['baseline']):.2f} s, "
               f"the server alone {fastest_server:.2f} s (its fastest pass) to serve the run in pages of 1000"],
    )
    return [result1, result2]


# ---------------------------------------------------------------------------------- #5


def bench_many(options: Options, base_url: str, run_ids: list[str]) -> list[Result]:
    from runlens.frames import concat_events

    from .proxy import LatencyProxy

    reps = 1 if options.quick else options.reps
    log(f"#5 {len(run_ids)} runs through a loopback proxy adding {PROXY_DELAY * 1000:.0f} ms a request: "
        f"one after another vs events_many(max_workers={MANY_WORKERS}), {reps} rep(s)")
    with LatencyProxy(base_url, delay=PROXY_DELAY, max_concurrent=PROXY_LIMIT) as proxy:
        url = f"{proxy.base_url}/graphql"
        stats: dict[str, list[dict]] = {}
        frames: dict[str, pd.DataFrame] = {}

        def sequential():
            client = _client(url)
            return concat_events(client.events(r) for r in run_ids)

        def concurrent():
            return _client(url).events_many(run_ids, max_workers=MANY_WORKERS)

        def measured(name, fn):
            def run():
                proxy.reset()
                value = fn()
                stats.setdefault(name, []).append(proxy.stats())
                return value
            return run

        def check(name, value):
            frames[name] = value

        samples = interleave({"baseline": measured("baseline", sequential),
                              "runlens": measured("runlens", concurrent)},
                             reps, warmup=not options.quick, check=check)
        # The same fetches answered from the proxy's recording of the server's answers:
        # what concurrency gains when the server's own time is taken out.
        log("#5b the same through the proxy replaying the recorded answers (no server work), "
            f"{reps} rep(s)")
        proxy.replay = True
        replayed = interleave({"baseline": measured("baseline_replayed", sequential),
                               "runlens": measured("runlens_replayed", concurrent)},
                              reps, warmup=False)
    base, mine = frames.pop("baseline"), frames.pop("runlens")
    identical = base.drop(columns="seq").equals(mine.drop(columns="seq")) and len(base) > 0
    ratio = speedup(samples)
    runlens_stats = stats["runlens"] + stats["runlens_replayed"]
    max_in_flight = max(s["max_in_flight"] for s in runlens_stats)
    rejected = sum(s["rejected_429"] for group in stats.values() for s in group)
    # The ceiling: the webserver serves one request at a time (its upstream times add up
    # to the same total with 4 in flight), so concurrency can hide the added latency and
    # the client's work, not the server's own time.
    server_alone = statistics.median(s["upstream_seconds"] for s in stats["baseline"])
    server_concurrent = statistics.median(s["upstream_seconds"] for s in stats["runlens"])
    ceiling = statistics.median(samples["baseline"]) / server_alone
    replay_ratio = speedup(replayed)
    log(f"#5 speedup {ratio:.2f}x; max in flight {max_in_flight}, 429s {rejected}; server busy {server_alone:.2f} s "
        f"of the sequential fetch (ceiling {ceiling:.2f}x); replayed answers: {replay_ratio:.2f}x")
    common = {"runs": len(run_ids), "events": len(base), "max_workers": MANY_WORKERS,
              "max_in_flight": max_in_flight, "rejected_429": rejected,
              "requests_per_fetch": stats["runlens"][-1]["requests"], "proxy_delay_s": PROXY_DELAY}
    bounded = max_in_flight <= MANY_WORKERS and rejected == 0
    return [
        Result(
            id="5",
            what=f"{len(run_ids)} runs ({len(base):,} events) through a proxy adding "
                 f"{PROXY_DELAY * 1000:.0f} ms/request",
            baseline="the same runs fetched one after another",
            samples=samples,
            figure="baseline / runlens",
            value=ratio,
            target=f"≥ 3×, bounded concurrency (≤ {MANY_WORKERS} in flight, no 429)",
            passed=ratio >= 3 and bounded and identical,
            extra={**common, "identical_rows": identical,
                   "server_busy_s_sequential": server_alone,
                   "server_busy_s_concurrent": server_concurrent,
                   "ceiling_if_server_serializes": ceiling,
                   "proxy_stats": stats},
            notes=[f"max {max_in_flight} requests in flight, {rejected} answered 429 (the proxy answers 429 past "
                   f"{PROXY_LIMIT}); the server was busy {server_alone:.2f} s of the sequential "
                   f"{statistics.median(samples['baseline']):.2f} s and its upstream times add up to "
                   f"{server_concurrent:.2f} s with {MANY_WORKERS} in flight (it serves one at a time): "
                   f"ceiling {ceiling:.2f}x"],
        ),
        Result(
            id="5b",
            what="#5 with the proxy replaying recorded answers (no server work)",
            baseline="one after another",
            samples=replayed,
            figure="baseline / runlens",
            value=replay_ratio,
            target="— (the client side alone)",
            passed=None,
            extra=common,
        ),
    ]


# ---------------------------------------------------------------------------------- #6


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _wall(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return time.perf_counter() - started


def bench_startup(options: Options, url: str, run_id: str) -> Result:
    reps = 3 if options.quick else max(options.reps, 9)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNLENS_", "DAGSTER_CLOUD"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    log(f"#6 start-up: `import runlens` and `runlens run get` (whole process), {reps} rep(s)")
    import_code = ("import time; t = time.perf_counter(); import runlens; "
                   "print(time.perf_counter() - t)")
    python = sys.executable
    samples: dict[str, list[float]] = {"python -c pass": [], "import runlens (in-process)": [],
                                       "import runlens (whole process)": [], "runlens run get": []}
    for _ in range(reps):
        samples["python -c pass"].append(_wall([python, "-c", "pass"], env))
        out = subprocess.run([python, "-c", import_code], env=env, check=True, capture_output=True, text=True)
        samples["import runlens (in-process)"].append(float(out.stdout.strip()))
        samples["import runlens (whole process)"].append(_wall([python, "-c", "import runlens"], env))
        samples["runlens run get"].append(_wall([_bin("runlens"), "run", "get", run_id, "--url", url], env))
    imp = statistics.median(samples["import runlens (in-process)"])
    get = statistics.median(samples["runlens run get"])
    log(f"#6 import runlens {imp * 1000:.0f} ms; runlens run get {get * 1000:.0f} ms (whole process)")
    importtime = subprocess.run([python, "-X", "importtime", "-c", "import runlens.cli, runlens.client"], env=env,
                                capture_output=True, text=True).stderr.splitlines()
    heaviest = sorted(
        ((int(line.split("|")[1]), line.split("|")[2].rstrip()) for line in importtime
         if line.startswith("import time:") and line.split("|")[1].strip().isdigit()),
        reverse=True,
    )[:12]
    return Result(
        id="6",
        what="start-up: `import runlens`; `runlens run get ID` end to end",
        baseline="—",
        samples={"runlens": samples["import runlens (in-process)"], "run_get": samples["runlens run get"],
                 "python_c_pass": samples["python -c pass"],
                 "import_whole_process": samples["import runlens (whole process)"]},
        figure="medians, whole process unless said",
        value=None,
        target="import ≤ 0.3 s; run get ≤ 0.6 s",
        passed=imp <= 0.3 and get <= 0.6,
        extra={"display_baseline": f"`python -c pass` {_ms(statistics.median(samples['python -c pass']))}",
               "display_runlens": f"import {_ms(imp)} (in-process); `run get` {_ms(get)}",
               "import_s": imp, "run_get_s": get,
               "python_c_pass_s": statistics.median(samples["python -c pass"]),
               "import_whole_process_s": statistics.median(samples["import runlens (whole process)"]),
               "heaviest_imports_us_cumulative_for_run_get": heaviest},
    )


# ---------------------------------------------------------------------------------- all


def run(options: Options, runs: CachedRuns, only: set[str]) -> list[Result]:
    from runlens.demo.server import DemoDagster

    results = []
    demo = DemoDagster(home=runs.home, keep_home=True, log=log)
    try:
        started = time.monotonic()
        demo.start_webserver(timeout=120)
        log(f"webserver up in {time.monotonic() - started:.1f} s at {demo.url}")
        if only & {"1", "2"}:
            n_events = len(baselines.bare_fetch(demo.url, runs.big, baselines.SEED_EVENTS_QUERY))
            fetched = bench_fetch(options, demo.url, runs.big, n_events)
            results += [r for r in fetched if r.id in only]
        if "5" in only:
            results += bench_many(options, demo.base_url, runs.small)
        if "6" in only:
            results.append(bench_startup(options, demo.url, runs.big))
        if only & {"10", "11", "12", "13"}:
            from .bench_history import bench_live as bench_history_live

            results += bench_history_live(options, demo.url, runs.big, runs.small, only)
        if "14" in only:
            from .bench_light_sync import bench_light_sync

            results.append(bench_light_sync(options, demo.url, runs.small))
        if "16" in only:
            from .bench_why import bench_explain

            results.append(bench_explain(options, runs, demo.url))
    finally:
        demo.stop()
    return results
