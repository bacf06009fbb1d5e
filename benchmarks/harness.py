"""Timing, interleaving and reporting shared by every benchmark."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[bench +{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def elapsed() -> float:
    return time.monotonic() - _T0


@dataclass
class Options:
    quick: bool = False
    reps: int = 5
    live: bool = True


@dataclass
class Result:
    """One row of the table: a benchmark's medians, its figure of merit and its target."""

    id: str
    what: str
    baseline: str
    samples: dict[str, list[float]]  # seconds, per variant, in the order they ran
    figure: str  # what `value` is, e.g. "runlens / baseline"
    value: float | None
    target: str
    passed: bool | None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def median(self, variant: str) -> float | None:
        values = self.samples.get(variant)
        return statistics.median(values) if values else None


def interleave(variants: dict[str, Callable[[], Any]], reps: int, *, warmup: bool = True,
               check: Callable[[str, Any], None] | None = None,
               loops: dict[str, int] | None = None) -> dict[str, list[float]]:
    """Time each variant ``reps`` times, alternating A B A B so drift hits both alike.

    A warm-up round (untimed) comes first unless ``warmup`` is false; ``check`` sees
    each variant's result of the first round (timed or not), then results are dropped.
    ``loops``: a variant named there is called that many times in a row per sample, and
    its sample is the mean call (as ``timeit`` times a millisecond-scale call: one call
    after the collector's pass and another variant's run measures mostly cold caches).
    """
    loops = loops or {}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    rounds = ([None] if warmup else []) + list(range(reps))
    for round_no, rep in enumerate(rounds):
        for name, fn in variants.items():
            gc.collect()
            times = max(1, loops.get(name, 1))
            started = time.perf_counter()
            for _ in range(times):
                value = fn()
            took = (time.perf_counter() - started) / times
            if round_no == 0 and check is not None:
                check(name, value)
            del value
            if rep is not None:
                samples[name].append(took)
        if rep is not None:
            shown = ", ".join(f"{name} {samples[name][-1]:.3f} s" for name in variants)
            log(f"  rep {rep + 1}/{reps}: {shown}")
    return samples


def speedup(samples: dict[str, list[float]], slow: str = "baseline", fast: str = "runlens") -> float:
    return statistics.median(samples[slow]) / statistics.median(samples[fast])


def machine() -> dict[str, Any]:
    import importlib.metadata

    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines()[:10]
    except (OSError, subprocess.SubprocessError):
        lscpu = []
    model = next((line.split(":", 1)[1].strip() for line in lscpu if line.startswith("Model name")), platform.processor())
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "lscpu_head": lscpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: version(name) for name in
                     ("pandas", "numpy", "pydantic", "requests", "dagster", "dagster-webserver", "pyarrow", "msgspec")},
    }


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def table(results: list[Result]) -> str:
    """A Markdown table of the results (also what the README shows)."""
    lines = [
        "| # | what | baseline (median) | runlens (median) | figure | target | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        value = "—" if r.value is None else f"{r.value:.2f}"
        ok = "n/a" if r.passed is None else ("yes" if r.passed else "**no**")
        base = r.extra.get("display_baseline") or _fmt_seconds(r.median("baseline"))
        mine = r.extra.get("display_runlens") or _fmt_seconds(r.median("runlens"))
        figure = r.figure if r.value is None else f"{r.figure} = {value}"
        lines.append(f"| {r.id} | {r.what} | {base} | {mine} | {figure} | {r.target} | {ok} |")
    return "\n".join(lines)


def write_json(path: Path, results: list[Result], options: Options, started_at: str, total: float,
               extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "started_at": started_at,
        "total_seconds": round(total, 1),
        "options": asdict(options),
        "machine": machine(),
        **extra,
        "results": [
            {**asdict(r), "medians": {name: r.median(name) for name in r.samples}} for r in results
        ],
    }
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str))
