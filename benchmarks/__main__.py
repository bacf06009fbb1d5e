"""``python -m benchmarks``: every benchmark, a table of medians and ratios, a JSON file.

Usage::

    python -m benchmarks                 # everything (the first run builds .bench-cache/)
    python -m benchmarks --quick         # small sizes, one repetition: a smoke run
    python -m benchmarks --only 3,4,7,8,9   # the synthetic ones only (no Dagster needed)
    python -m benchmarks --only 14       # the light sync against the full one (a live Dagster)
    python -m benchmarks --only 15       # runlens.dask against pandas over the 10M-event store
    python -m benchmarks --only 16       # explain_run against a 20-run baseline (server, History)
    python -m benchmarks --reps 7 --out bench-results/mine.json
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .harness import Options, elapsed, log, table, write_json

ALL = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "bench-results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and one repetition (a smoke run)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions of each variant (default 5)")
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated benchmark numbers (default all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if not only <= set(ALL):
        parser.error(f"--only takes numbers among {', '.join(ALL)}")
    options = Options(quick=args.quick, reps=1 if args.quick else max(1, args.reps))
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    results = []
    extra: dict = {}

    if only & {"3", "4", "7"}:
        from . import bench_synthetic

        results += bench_synthetic.run(options, only)
    if only & {"8", "9"}:
        from . import bench_history

        results += bench_history.bench_store(options, only)
    if "15" in only:
        from . import bench_dask

        results += bench_dask.run(options)
    if only & {"1", "2", "5", "6", "10", "11", "12", "13", "14", "16"}:
        from . import bench_live
        from .dagster_cache import cached_runs

        before = time.monotonic()
        runs = cached_runs(quick=options.quick)
        extra["dagster_cache"] = {"home": str(runs.home), "built_seconds": runs.built_seconds,
                                  "reused": runs.built_seconds is None,
                                  "build_seconds_when_built": runs.recorded_build_seconds,
                                  "setup_seconds_this_run": round(time.monotonic() - before, 1)}
        results += bench_live.run(options, runs, only)

    results.sort(key=lambda r: (int("".join(c for c in r.id if c.isdigit())), r.id))
    total = elapsed()
    write_json(args.out, results, options, started_at, total, extra)
    print()
    print(table(results))
    print()
    for r in results:
        for note in r.notes:
            print(f"#{r.id}: {note}")
    met = [r.id for r in results if r.passed]
    missed = [r.id for r in results if r.passed is False]
    print(f"targets met: {', '.join(met) or 'none'}; missed: {', '.join(missed) or 'none'}")
    print(f"bench took {total:.0f} s end to end; results in {args.out}")
    log("done")
    # A missed target is a finding, not a failure; a result that differs from the
    # baseline's is.
    wrong = [r.id for r in results if r.extra.get("identical_rows") is False]
    if wrong:
        print(f"runlens's output differs from the baseline's in: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
