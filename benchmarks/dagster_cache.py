"""The demo Dagster the live benchmarks read: built once, cached in ``.bench-cache/``.

A ``log_storm_job`` run of 50,000 lines costs Dagster two to three minutes (its sqlite
event log commits once per event), and the 20 small runs of #5 another few minutes, so
the ``DAGSTER_HOME`` holding them is kept between bench runs. The cache key covers what
decides its content: the dagster version, the demo definitions' source and the plan of
runs below. A home whose manifest is missing (a build that was interrupted) is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .harness import log

REPO = Path(__file__).resolve().parents[1]
CACHE_ROOT = REPO / ".bench-cache"

BIG_LINES = 50_000
# 20 small runs of ~2-5k events each for the concurrency benchmark (#5).
SMALL_LINES = tuple(2_000 + 150 * i for i in range(20))
QUICK_BIG_LINES = 3_000
QUICK_SMALL_LINES = tuple(300 + 50 * i for i in range(6))


@dataclass
class CachedRuns:
    home: Path
    big: str
    small: list[str]
    built_seconds: float | None  # None when the cache was reused
    build_log: list[str]
    recorded_build_seconds: float | None = None  # what building it took, reused or not


def _key(big: int, small: tuple[int, ...]) -> str:
    import importlib.metadata

    version = importlib.metadata.version("dagster")
    definitions = (REPO / "runlens" / "demo" / "definitions.py").read_bytes()
    digest = hashlib.sha256(definitions + json.dumps([big, list(small)]).encode()).hexdigest()[:12]
    return f"dagster-{version}-{digest}"


def _storm(n: int) -> dict:
    return {"ops": {"storm": {"config": {"n": n}}}}


def cached_runs(*, quick: bool = False) -> CachedRuns:
    """The cached home and its run ids, building them first if needed."""
    from runlens.demo.server import DemoDagster

    big_n, small_ns = (QUICK_BIG_LINES, QUICK_SMALL_LINES) if quick else (BIG_LINES, SMALL_LINES)
    home = CACHE_ROOT / _key(big_n, small_ns)
    manifest = home / "runlens-bench.json"
    if manifest.exists():
        doc = json.loads(manifest.read_text())
        log(f"reusing cached Dagster home {home.relative_to(REPO)} (built in {doc['built_seconds']:.0f} s)")
        return CachedRuns(home, doc["big"], doc["small"], None, doc.get("build_log", []), doc["built_seconds"])
    if home.exists():
        shutil.rmtree(home)  # an interrupted build
    lines: list[str] = []

    def note(message: str) -> None:
        lines.append(message)
        log(message)

    note(f"building the cached Dagster home {home.relative_to(REPO)} (one {big_n:,}-line run and "
         f"{len(small_ns)} runs of {min(small_ns):,}-{max(small_ns):,} lines; minutes, once)")
    started = time.monotonic()
    demo = DemoDagster(home=home, keep_home=True, log=note)
    try:
        demo.create_home()
        # The first run creates the sqlite storage alone (two processes creating it at
        # once could race on its tables); the small runs then go two at a time.
        big = demo.execute("log_storm_job", run_config=_storm(big_n), tags={"runlens/bench": "big"}, timeout=1800)
        small: list[str] = []
        pending: list[str] = []
        for n in small_ns:
            pending.append(demo.launch_in_background("log_storm_job", run_config=_storm(n),
                                                     tags={"runlens/bench": "small"}, timeout=300))
            if len(pending) == 2:
                for run_id in pending:
                    demo.wait(run_id, timeout=900)
                small += pending
                pending = []
        for run_id in pending:
            demo.wait(run_id, timeout=900)
        small += pending
    finally:
        demo.stop()
    built = time.monotonic() - started
    note(f"cached Dagster home built in {built:.0f} s")
    manifest.write_text(json.dumps({"big": big, "small": small, "built_seconds": built, "build_log": lines}, indent=1))
    return CachedRuns(home, big, small, built, lines, built)
