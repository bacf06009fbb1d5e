"""A synthetic History store shaped like a real deployment's: built once, cached.

:func:`build_store` writes ``runs`` runs holding ``events`` events in total through the
History writer itself (:class:`runlens.history.sync._BatchWriter`: the same files, sort
order, row groups, manifest and commit protocol as ``History.sync``, one batch per
:data:`runlens.history.sync.BATCH_RUNS` runs in creation order, as a first sync of that
many runs would write them). Only the network is missing: the run records are what
``runsOrError`` answers, and each run's events are generated as Arrow rows of the stored
schema, its steps computed from them by :func:`runlens.step_durations` as a sync does.

The shape follows the demo jobs and :mod:`benchmarks.synthetic`: :data:`JOBS` jobs, each
with its own steps (dynamic ones like ``process_region[emea]`` among them); per step the
framework events (worker start, resources, STEP_START, inputs, outputs, STEP_SUCCESS)
around log lines (mostly INFO, ``LogMessageEvent`` with no event type); a failing step
now and then (STEP_FAILURE with a ``ValueError`` caused by a ``KeyError``, then the run
fails), an asset materialization every few steps; run sizes spread from a few dozen to a
few thousand events; runs spread over :data:`MONTHS` months, one step in each job
getting slower over time (what ``duration_trend`` finds).

:func:`cached_store` keeps the built store under ``.bench-cache/`` keyed by the
parameters, :data:`GENERATOR_VERSION` and the store's format (versions, schemas, file
and row-group sizes), so a bench run builds it once (279 s for 20,000 runs / 10,000,000
events on a quiet 2-core machine, then 22 s of compaction) and reuses it after. Like a
sync, the build ends with the compaction of the partitions holding too many files (one
file a month and table is left), so the bench reads the store a user's sync leaves.

Usage::

    from benchmarks.synthetic_store import cached_store, build_store
    path = cached_store()                                   # .bench-cache/history-synthetic-<key>
    build_store("/tmp/h", runs=2_000, events=1_000_000)     # any size, any folder
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .harness import log
from .synthetic import _STEP_HEAD, _STEP_TAIL, _WORDS, _step_keys

REPO = Path(__file__).resolve().parents[1]
CACHE_ROOT = REPO / ".bench-cache"

RUNS = 20_000
EVENTS = 10_000_000
JOBS = 10
MONTHS = 12
ENDPOINT = "http://synthetic.invalid/graphql"
#: 2025-11-01T00:00:00Z: the first run's creation (the last is about a year later, in the past).
START_MS = 1_761_955_200_000
_RUN_HEAD = [("RUN_STARTING", "RunStartingEvent", "INFO", ""),
             ("RUN_START", "RunStartEvent", "DEBUG", 'Started execution of run for "{job}".'),
             ("ENGINE_EVENT", "EngineEvent", "DEBUG",
              "Executing steps using multiprocess executor: parent process (pid: 4241)")]
_RUN_TAIL_OK = [("RUN_SUCCESS", "RunSuccessEvent", "DEBUG", 'Finished execution of run for "{job}".'),
                ("ENGINE_EVENT", "EngineEvent", "DEBUG", "Process for run exited (pid: 4241).")]
_RUN_TAIL_FAIL = [("RUN_FAILURE", "RunFailureEvent", "ERROR", 'Execution of run for "{job}" failed.'),
                  ("ENGINE_EVENT", "EngineEvent", "DEBUG", "Process for run exited (pid: 4241).")]


def job_names(jobs: int = JOBS) -> list[str]:
    """The synthetic jobs' names: ``job_00`` ... (each holds ``runs / jobs`` runs)."""
    return [f"job_{j:02d}" for j in range(jobs)]


def _steps_of(job: int) -> list[str]:
    return _step_keys(8 + (job * 3) % 9, indexed=False)  # 8 to 16 steps a job


class _Pool:
    """Distinct strings by index: messages are drawn from a pool, as real logs repeat templates."""

    def __init__(self) -> None:
        self.values: list[str | None] = [None]
        self.index: dict[str | None, int] = {None: 0}

    def __call__(self, text: str | None) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.values)
            self.values.append(text)
        return found

    def array(self, codes: np.ndarray, kind: pa.DataType = pa.string()) -> pa.Array:
        values = pa.array(self.values, type=kind)
        return values.take(pa.array(codes, type=pa.int32()))


def _log_messages(rng: np.random.Generator, n: int) -> list[str]:
    verbs = ("processed", "wrote", "read", "saw", "skipped")
    out = []
    for i in range(n):
        words = rng.choice(len(_WORDS), size=int(rng.integers(2, 10)))
        text = f"{verbs[i % len(verbs)]} {int(rng.integers(0, 100_000))} " + " ".join(_WORDS[w] for w in words)
        if i % 97 == 0:
            text += "\n\tdetail line\n\tanother \"quoted\" \\ line"
        out.append(text)
    return out


class _Generator:
    def __init__(self, runs: int, events: int, jobs: int, months: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.runs, self.jobs = runs, jobs
        self.job_names = job_names(jobs)
        self.steps = [_steps_of(j) for j in range(jobs)]
        span_ms = months * 30 * 86_400_000
        # Creation times: evenly spread with jitter, in order (a sync writes runs in creation order).
        self.created = START_MS + np.sort(self.rng.integers(0, span_ms, size=runs))
        self.job_of = self.rng.integers(0, jobs, size=runs)
        # Events a run holds beyond its framework events: a heavy-tailed spread around the mean.
        framework = np.array([len(_RUN_HEAD) + 2 + len(self.steps[j]) * (len(_STEP_HEAD) + len(_STEP_TAIL))
                              for j in self.job_of])
        weights = self.rng.lognormal(0.0, 1.0, size=runs)
        spare = max(0, events - int(framework.sum()))
        logs = np.floor(weights / weights.sum() * spare).astype(np.int64)
        logs[: spare - int(logs.sum())] += 1
        self.logs = logs
        self.fails = self.rng.random(runs) < 0.04
        # Step base durations (ms) per job and step; the step of index 2 slows down over the months.
        self.base = [self.rng.lognormal(8.5, 1.0, size=len(s)) for s in self.steps]
        self.pool = _Pool()
        self.log_pool = np.array([self.pool(m) for m in _log_messages(self.rng, 4096)], dtype=np.int32)
        # Log lines' levels: 85 % INFO, 10 % DEBUG, 4 % WARNING, 1 % ERROR.
        self.level_cut = np.array([0.85, 0.95, 0.99])
        self.levels = np.array([self.pool(v) for v in ("INFO", "DEBUG", "WARNING", "ERROR")], dtype=np.int32)
        self.error = (self.pool("ValueError: bad row\n"), self.pool("ValueError"),
                      self.pool("KeyError: 'region'\n"),
                      self.pool('  File "/opt/app/ops.py", line 42, in op\n    raise ValueError(...)\n'))

    def record(self, i: int, run_id: str) -> dict:
        """Run ``i``'s ``runsOrError`` record, as Dagster answers it."""
        created = self.created[i] / 1000.0
        ended = created + 1.0 + self._run_ms(i) / 1000.0
        job = self.job_names[self.job_of[i]]
        return {"__typename": "Run", "id": run_id, "runId": run_id, "status": "FAILURE" if self.fails[i] else "SUCCESS",
                "jobName": job, "pipelineName": job, "creationTime": created, "startTime": created + 1.0,
                "endTime": ended, "updateTime": ended,
                "tags": [{"key": "dagster/from_ui", "value": "true"}, {"key": "team", "value": f"team_{i % 3}"}],
                "rootRunId": None, "parentRunId": None}

    def _run_ms(self, i: int) -> float:
        return float(sum(self._durations(i)))

    def _durations(self, i: int) -> np.ndarray:
        j = self.job_of[i]
        progress = (self.created[i] - self.created[0]) / max(1, self.created[-1] - self.created[0])
        base = self.base[j].copy()
        base[2 % len(base)] *= 1.0 + 1.5 * progress
        jitter = np.random.default_rng(i).lognormal(0.0, 0.15, size=len(base))
        return base * jitter

    def run_events(self, i: int, run_id: str) -> dict[str, np.ndarray]:
        """Run ``i``'s events as column codes (pool indices) and timestamps, in storage order."""
        j = self.job_of[i]
        job, steps = self.job_names[j], self.steps[j]
        rng = np.random.default_rng(i + 1)
        n_steps = len(steps)
        failing = int(rng.integers(0, n_steps)) if self.fails[i] else -1
        last = failing if failing >= 0 else n_steps - 1
        share = rng.dirichlet(np.ones(last + 1)) if last >= 0 else np.ones(1)
        lines = np.floor(share * self.logs[i]).astype(np.int64)
        lines[: int(self.logs[i] - lines.sum())] += 1
        durations = self._durations(i)
        pool = self.pool
        cols: dict[str, list] = {k: [] for k in ("ts", "level", "type", "step", "msg", "kind", "ecls", "emsg",
                                                 "ecause", "estack", "asset")}
        t = float(self.created[i] + 1000)

        def add(count: int, times: np.ndarray, level: str, event_type: str | None, step: str | None,
                messages, kind: str, error: bool = False, asset: str | None = None) -> None:
            cols["ts"].append(times)
            cols["level"].append(level if isinstance(level, np.ndarray) else np.full(count, pool(level), np.int32))
            for key, value in (("type", pool(event_type)), ("step", pool(step)), ("kind", pool(kind)),
                               ("asset", pool(asset))):
                cols[key].append(np.full(count, value, dtype=np.int32))
            cols["msg"].append(np.asarray(messages, dtype=np.int32) if not isinstance(messages, int)
                               else np.full(count, messages, dtype=np.int32))
            for key, value in zip(("ecls", "emsg", "ecause", "estack"),
                                  (self.error[1], self.error[0], self.error[2], self.error[3]), strict=True):
                cols[key].append(np.full(count, value if error else 0, dtype=np.int32))

        for et, kind, level, msg in _RUN_HEAD:
            add(1, np.array([t]), level, et, None, pool(msg.format(job=job)), kind)
            t += 5
        for s in range(last + 1):
            key = steps[s]
            start = t
            for et, kind, level, msg in _STEP_HEAD:
                add(1, np.array([t]), level, et, key, pool(msg.format(s=key)), kind)
                t += 3
            n_lines = int(lines[s])
            if n_lines:
                times = t + np.sort(rng.random(n_lines)) * durations[s]
                r = rng.random(n_lines)
                levels = self.levels[np.searchsorted(self.level_cut, r, side="right")]
                messages = self.log_pool[rng.integers(0, len(self.log_pool), size=n_lines)]
                add(n_lines, times, levels, None, key, messages, "LogMessageEvent")
            t = start + 24 + durations[s]
            if s == failing:
                add(1, np.array([t]), "ERROR", "STEP_FAILURE", key, pool(f'Execution of step "{key}" failed.'),
                    "ExecutionStepFailureEvent", error=True)
                t += 3
                break
            if s % 3 == 1:
                add(1, np.array([t]), "DEBUG", "ASSET_MATERIALIZATION", key, pool(f'Materialized value "{key}".'),
                    "MaterializationEvent", asset=f'["warehouse", "{key}"]')
                t += 1
            for et, kind, level, msg in _STEP_TAIL:
                add(1, np.array([t]), level, et, key, pool(msg.format(s=key, ms=int(durations[s]))), kind)
                t += 2
        for et, kind, level, msg in (_RUN_TAIL_FAIL if failing >= 0 else _RUN_TAIL_OK):
            add(1, np.array([t]), level, et, None, pool(msg.format(job=job)), kind)
            t += 5
        return {k: np.concatenate(v) for k, v in cols.items()}

    def table(self, runs: list[tuple[int, str]]) -> pa.Table:
        """The stored events table of these runs (the schema of :data:`runlens.history.tables.EVENTS_SCHEMA`)."""
        from runlens.history.tables import EVENTS_SCHEMA, TS

        parts = [self.run_events(i, run_id) for i, run_id in runs]
        sizes = [len(p["ts"]) for p in parts]
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        seq = np.concatenate([np.arange(n, dtype=np.int64) for n in sizes])
        run_ids = pa.array([run_id for _, run_id in runs], type=pa.string()) \
            .take(pa.array(np.repeat(np.arange(len(runs)), sizes)))
        created = np.repeat(self.created[[i for i, _ in runs]], sizes)
        jobs = pa.array([self.job_names[self.job_of[i]] for i, _ in runs], type=pa.string()) \
            .take(pa.array(np.repeat(np.arange(len(runs)), sizes)))

        def times(ms: np.ndarray) -> pa.Array:
            return pa.array(ms.astype(np.int64), type=pa.int64()).cast(pa.timestamp("ms")).cast(TS)

        columns = {
            "seq": pa.array(seq), "run_id": run_ids, "timestamp": times(cols["ts"]),
            "level": self.pool.array(cols["level"]), "event_type": self.pool.array(cols["type"]),
            "step_key": self.pool.array(cols["step"]), "message": self.pool.array(cols["msg"]),
            "kind": self.pool.array(cols["kind"]), "error_class": self.pool.array(cols["ecls"]),
            "error_message": self.pool.array(cols["emsg"]), "error_cause": self.pool.array(cols["ecause"]),
            "error_stack": self.pool.array(cols["estack"]), "error_cause_stack": self.pool.array(cols["estack"]),
            "asset_key": self.pool.array(cols["asset"]), "job_name": jobs, "run_created": times(created),
        }
        # Messages of plain log lines are never null in a real frame ("" at worst).
        columns["message"] = columns["message"].fill_null("")
        return pa.table(columns, schema=EVENTS_SCHEMA)


def _run_id(seed: int, i: int) -> str:
    digest = hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}"


def build_store(path: str | Path, runs: int = RUNS, events: int = EVENTS, *, seed: int = 7, jobs: int = JOBS,
                months: int = MONTHS, progress: bool = True) -> Path:
    """Write a History store of ``runs`` final runs holding about ``events`` events into ``path``.

    Through the History writer (see the module docstring): every run final, its steps
    stored, one commit per :data:`~runlens.history.sync.BATCH_RUNS` runs, the runs file
    written by the last. ``path`` must not hold a store yet. Returns ``path``.
    """
    from runlens.history import maintenance
    from runlens.history.store import Store, empty_manifest
    from runlens.history.sync import BATCH_RUNS, SyncReport, _BatchWriter, _month
    from runlens.history.tables import events_frame_of
    from runlens.steps import STEPS_VERSION, step_durations_unchecked

    path = Path(path)
    store = Store(path)
    if store.exists():
        raise FileExistsError(f"{path} already holds a History store")
    started = time.monotonic()
    gen = _Generator(runs, events, jobs, months, seed)
    manifest = empty_manifest(ENDPOINT)
    manifest["steps_version"] = STEPS_VERSION
    records = manifest["records"] = {}
    state = manifest["runs"]
    report = SyncReport()
    with store.locked():
        writer = _BatchWriter(store, manifest, report)
        for first in range(0, runs, BATCH_RUNS):
            batch = [(i, _run_id(seed, i)) for i in range(first, min(runs, first + BATCH_RUNS))]
            for i, run_id in batch:
                record = records[run_id] = gen.record(i, run_id)
                state[run_id] = {"final": True, "cursor": None, "events": 0, "status": record["status"],
                                 "job": record["jobName"], "created_ms": int(gen.created[i])}
            table = gen.table(batch)
            counts = {r: 0 for _, r in batch}
            for run_id, n in zip(*np.unique(table.column("run_id").to_numpy(zero_copy_only=False),
                                            return_counts=True), strict=True):
                counts[str(run_id)] = int(n)
            for _, run_id in batch:
                state[run_id]["events"] = counts[run_id]
                state[run_id]["cursor"] = f"synthetic:{counts[run_id] - 1}"
            month_of = {r: _month(int(gen.created[i])) for i, r in batch}
            for month in sorted(set(month_of.values())):
                ids = [r for r, m in month_of.items() if m == month]
                part = table.filter(pc.is_in(table.column("run_id"), pa.array(ids)))
                writer.events.setdefault(month, []).append(part)
            writer.add_steps(step_durations_unchecked(events_frame_of(table)))
            last = first + BATCH_RUNS >= runs
            writer.commit(runs_changed=last)
            if progress and (first // BATCH_RUNS) % 20 == 0:
                log(f"  synthetic store: {first + len(batch):,}/{runs:,} runs, {report.events_written:,} events, "
                    f"{time.monotonic() - started:.0f} s")
        manifest["marks"]["*"] = {"updated": max(r["updateTime"] for r in records.values()), "since": None}
        writer.commit(runs_changed=False)
        # A sync ends with the compaction of partitions holding too many files; so does this.
        maintenance.compact(store, manifest, report)
    return path


#: Bump when the generator's output changes: it keys the cached store, with the store's format.
GENERATOR_VERSION = 2  # 2: compacted at the end, as a sync leaves a store


def _key(runs: int, events: int, seed: int) -> str:
    # What decides the store's bytes: this generator's version, and the stored format (its
    # versions, schemas, and how the writer cuts files and row groups).
    from runlens.history.store import FORMAT_VERSION
    from runlens.history.sync import BATCH_RUNS, ROW_GROUP_ROWS, STEPS_ROW_GROUP_ROWS
    from runlens.history.tables import EVENTS_SCHEMA, RUNS_SCHEMA, STEPS_SCHEMA
    from runlens.steps import STEPS_VERSION

    layout = [runs, events, seed, GENERATOR_VERSION, FORMAT_VERSION, STEPS_VERSION, BATCH_RUNS, ROW_GROUP_ROWS,
              STEPS_ROW_GROUP_ROWS,
              str(EVENTS_SCHEMA), str(STEPS_SCHEMA), str(RUNS_SCHEMA)]
    digest = hashlib.sha256(json.dumps(layout).encode()).hexdigest()[:12]
    return f"history-synthetic-{runs}-{events}-{digest}"


def cached_store(runs: int = RUNS, events: int = EVENTS, *, seed: int = 7) -> Path:
    """The store of :func:`build_store` under ``.bench-cache/``, built first if missing (or interrupted)."""
    home = CACHE_ROOT / _key(runs, events, seed)
    done = home / "built.json"
    if done.exists():
        log(f"reusing the synthetic History store {home.relative_to(REPO)} "
            f"(built in {json.loads(done.read_text())['seconds']:.0f} s)")
        return home / "store"
    if home.exists():
        shutil.rmtree(home)
    for stale in CACHE_ROOT.glob(f"history-synthetic-{runs}-{events}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # an older generator's: tens of MB each
    log(f"building a synthetic History store of {runs:,} runs / {events:,} events (once; cached)")
    started = time.monotonic()
    build_store(home / "store", runs, events, seed=seed)
    seconds = time.monotonic() - started
    done.write_text(json.dumps({"seconds": seconds, "runs": runs, "events": events, "seed": seed}))
    log(f"  built in {seconds:.0f} s")
    return home / "store"
