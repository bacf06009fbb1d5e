"""#3 (page JSON → typed frame, and its memory) and #4 (--type/--step filtering), on
synthetic events shaped like a real run's (see :mod:`benchmarks.synthetic`)."""

from __future__ import annotations

import gc
import json
import math
import statistics
import time

import pandas as pd
import requests

from . import baselines, synthetic
from .harness import Options, Result, interleave, log, speedup

FULL_EVENTS = 1_000_000
QUICK_EVENTS = 20_000

# The seed's flags: ``--type STEP_START,STEP_SUCCESS,STEP_FAILURE --step process_region``.
TYPES = "STEP_START,STEP_SUCCESS,STEP_FAILURE"
STEP = "process_region"


# ------------------------------------------------------------------------ conversion


def _replay_transport_class():
    from runlens.transport import Transport

    class ReplayTransport(Transport):
        """runlens's own transport with the network replaced: ``_send`` answers each
        ``logsForRun`` query with the stored page body its cursor names, and everything
        after the HTTP exchange (the typed decoding, or the general one) is runlens's.

        ``general=True`` turns the typed fast path off: runlens as it was before it.
        """

        def __init__(self, settings, bodies: list[bytes], *, general: bool = False) -> None:
            super().__init__(settings, max_retries=0)
            self.bodies = bodies
            self.general = general
            self._next = _cursor_index(bodies)

        def execute(self, query, variables=None, *, run_id=None, fast=None):
            return super().execute(query, variables, run_id=run_id, fast=None if self.general else fast)

        def _send(self, payload, run_id):
            response = requests.Response()
            response.status_code = 200
            response.headers["Content-Type"] = "application/json"
            return response, self.bodies[self._next[payload["variables"].get("afterCursor")]]

    return ReplayTransport


_CURSOR_INDEX: dict[int, tuple[list[bytes], dict[str | None, int]]] = {}


def _cursor_index(bodies: list[bytes]) -> dict[str | None, int]:
    """Which page follows which cursor. Parses every page once: done before any timing."""
    cached = _CURSOR_INDEX.get(id(bodies))
    if cached is None or cached[0] is not bodies:
        index: dict[str | None, int] = {None: 0}
        for i, body in enumerate(bodies[:-1]):
            index[json.loads(body)["data"]["logsForRun"]["cursor"]] = i + 1
        cached = _CURSOR_INDEX[id(bodies)] = (bodies, index)
    return cached[1]


def replay_client(bodies: list[bytes], *, general: bool = False):
    from runlens import Client

    client = Client("http://replay.invalid", progress=False)
    client.transport = _replay_transport_class()(client.settings, bodies, general=general)
    return client


def runlens_frame(bodies: list[bytes], run_id: str = synthetic.RUN_ID, *, general: bool = False) -> pd.DataFrame:
    """What ``Client.events`` makes of the page bodies: the real client, network replaced."""
    return replay_client(bodies, general=general).events(run_id)


def baseline_frame(bodies: list[bytes]) -> pd.DataFrame:
    """The seed's way: parse, a pydantic model per event, then a DataFrame of their dumps."""
    return baseline_models_frame(json.loads(body)["data"]["logsForRun"]["events"] for body in bodies)


def baseline_models_frame(pages) -> pd.DataFrame:
    models = []
    for events in pages:
        models.extend(baselines.seed_models(events))
    return baselines.models_frame(models)


def comparable_rows(frame: pd.DataFrame, *, typed: bool) -> list[tuple]:
    """Both frames reduced to the seed's six fields, as the API sent them."""

    def plain(values) -> list:
        return [None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else v
                for v in values]

    if typed:
        millis = frame["timestamp"].astype("int64").astype(str).tolist()
        columns = [frame["run_id"].astype(object), frame["message"].astype(object), millis,
                   frame["level"].astype(object), frame["step_key"].astype(object),
                   frame["event_type"].astype(object)]
    else:
        columns = [frame["run_id"], frame["message"], frame["timestamp"],
                   [getattr(level, "value", level) for level in frame["level"]], frame["step_key"], frame["event_type"]]
    return list(zip(*(plain(list(c)) for c in columns)))


def deep_bytes(frame: pd.DataFrame) -> int:
    return int(frame.memory_usage(deep=True, index=True).sum())


def naive_frame(records: list[dict]) -> pd.DataFrame:
    """The same rows with every field the API sent, as plain objects (no dtypes chosen)."""
    return pd.DataFrame(records, dtype=object)


def _decode_each(bodies: list[bytes]) -> int:
    # Decode and drop each page, as a fetch does: the cost of json.loads, deallocation included.
    n = 0
    for body in bodies:
        n += len(json.loads(body)["data"]["logsForRun"]["events"])
    return n


def _na_cell_bytes() -> int:
    # What memory_usage(deep=True) charges for one missing cell of an object-backed
    # column beyond its 8-byte pointer: pd.NA is one shared object, counted every time.
    return int(pd.Series([pd.NA], dtype=object).memory_usage(deep=True, index=False)) - 8


def memory_report(frame: pd.DataFrame, naive: pd.DataFrame) -> dict:
    n = len(frame)
    typed = deep_bytes(frame)
    naive_bytes = deep_bytes(naive)
    python_strings = [c for c, t in frame.dtypes.items() if isinstance(t, pd.StringDtype) and t.storage == "python"]
    na_cells = int(sum(frame[c].isna().sum() for c in python_strings))
    shared_na = na_cells * _na_cell_bytes()
    return {
        "string_storage": pd.StringDtype().storage,
        "typed_deep_bytes": typed,
        "naive_object_deep_bytes": naive_bytes,
        "ratio": typed / naive_bytes,
        "typed_bytes_per_event": typed / n,
        "naive_bytes_per_event": naive_bytes / n,
        "typed_columns": {c: int(v) for c, v in frame.memory_usage(deep=True, index=False).items()},
        "typed_dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        "naive_columns": {c: int(v) for c, v in naive.memory_usage(deep=True, index=False).items()},
        "missing_string_cells": na_cells,
        "of_which_shared_pd_NA_bytes": shared_na,
        "ratio_without_shared_NA": (typed - shared_na) / naive_bytes,
    }


def bench_convert(options: Options, bodies: list[bytes]) -> Result:
    n = sum(len(json.loads(b)["data"]["logsForRun"]["events"]) for b in bodies)
    reps = 1 if options.quick else min(options.reps, 3)
    log(f"#3 {n:,} events from page JSON to a typed frame ({len(bodies)} pages), {reps} rep(s)")
    _cursor_index(bodies)  # index the pages' cursors before timing
    # A short untimed round loads every code path; the long-lived inputs are then kept
    # out of the garbage collector's passes, so no variant pays for another's data.
    warm = synthetic.pages(2_500, seed=1)
    baseline_frame(warm), runlens_frame(warm), runlens_frame(warm, general=True)
    del warm
    gc.collect()
    gc.freeze()

    checked: dict[str, list] = {}

    def check(name, frame):
        checked[name] = comparable_rows(frame, typed=name.startswith("runlens"))

    try:
        samples = interleave(
            {
                "baseline": lambda: baseline_frame(bodies),
                "runlens": lambda: runlens_frame(bodies),
                "runlens_general": lambda: runlens_frame(bodies, general=True),
                "json_only": lambda: _decode_each(bodies),
            },
            reps, warmup=False, check=lambda name, value: None if name == "json_only" else check(name, value),
        )
    finally:
        gc.unfreeze()
    identical = checked["baseline"] == checked["runlens"] == checked["runlens_general"]
    checked.clear()

    memory = memory_report(runlens_frame(bodies), naive_frame(synthetic.records(bodies)))
    ratio = speedup(samples)
    general_ratio = speedup(samples, "baseline", "runlens_general")
    ceiling = speedup(samples, "baseline", "json_only")
    json_s = statistics.median(samples["json_only"])
    log(f"#3 speedup {ratio:.1f}x from page JSON ({general_ratio:.1f}x through json.loads and dicts, whose "
        f"json.loads alone caps it at {ceiling:.1f}x); deep memory {memory['typed_deep_bytes'] / 2**20:.0f} MiB "
        f"vs naive {memory['naive_object_deep_bytes'] / 2**20:.0f} MiB = {memory['ratio']:.3f} "
        f"(string storage: {memory['string_storage']})")
    return Result(
        id="3",
        what=f"{n:,} events: page JSON → typed DataFrame",
        baseline="pydantic model per event (the seed's RunEvent), DataFrame of their dumps",
        samples=samples,
        figure="baseline / runlens",
        value=ratio,
        target="≥ 10×; deep memory ≤ 1/3 of an object frame",
        passed=ratio >= 10 and memory["ratio"] <= 1 / 3 and identical,
        extra={
            "events": n,
            "identical_rows": identical,
            "speedup_from_page_json": ratio,
            "speedup_general_decoder": general_ratio,
            "ceiling_json_loads_alone": ceiling,
            "json_loads_s": json_s,
            "speed_target_met": ratio >= 10,
            "memory_target_met": memory["ratio"] <= 1 / 3,
            "memory": memory,
        },
        notes=[
            f"runlens's general decoder (json.loads, then dicts to columns: what a body that does not fit the "
            f"typed shape goes through) is {general_ratio:.1f}x; json.loads alone takes {json_s:.2f} s, so no "
            f"dict-based conversion could beat {ceiling:.1f}x",
            f"deep memory {memory['ratio']:.2f} of the object frame with {memory['string_storage']} string storage "
            f"({memory['ratio_without_shared_NA']:.2f} not counting the shared pd.NA object "
            f"{memory['missing_string_cells']:,} times)",
        ],
    )


# ------------------------------------------------------------------------- filtering


def bench_filter(options: Options, bodies: list[bytes]) -> Result:
    from runlens.filters import event_mask, filter_events

    records = synthetic.records(bodies)
    frame = runlens_frame(bodies)
    n = len(records)
    reps = 1 if options.quick else options.reps
    log(f"#4 --type {TYPES} --step {STEP} over {n:,} rows, {reps} rep(s)")
    positions = {id(r): i for i, r in enumerate(records)}
    got: dict[str, list[int]] = {}

    def check(name, value):
        if name == "baseline":
            got[name] = [positions[id(r)] for r in value]
        elif name == "runlens":
            got[name] = value["seq"].tolist()

    variants = {"baseline": lambda: baselines.seed_filter(records, TYPES, STEP),
                "runlens": lambda: filter_events(frame, types=TYPES, step=STEP),
                "runlens_mask_only": lambda: event_mask(frame, types=TYPES, step=STEP)}
    loops = {"runlens": FILTER_LOOPS, "runlens_mask_only": FILTER_LOOPS}
    samples = _interleave_frozen(variants, reps, options, check, loops)
    single = _interleave_frozen(variants, reps, options, None)  # one call a sample: mostly cold caches
    identical = got["baseline"] == got["runlens"]
    ratio = speedup(samples)
    cold = speedup(single)
    mask_ratio = speedup(samples, "baseline", "runlens_mask_only")
    log(f"#4 speedup {ratio:.0f}x ({mask_ratio:.0f}x for the mask alone; {cold:.0f}x timing single calls), "
        f"{len(got['runlens']):,} rows selected, identical: {identical}")
    return Result(
        id="4",
        what=f"`--type` + `--step` filtering of {n:,} rows",
        baseline="the seed's loops over dicts",
        samples=samples,
        figure="baseline / runlens",
        value=ratio,
        target="≥ 50×, identical rows",
        passed=ratio >= 50 and identical,
        extra={"rows": n, "selected": len(got["runlens"]), "identical_rows": identical, "types": TYPES,
               "step": STEP, "speedup_mask_only": mask_ratio, "speedup_single_calls": cold,
               "single_call_samples": single, "loops": FILTER_LOOPS},
        notes=[f"event_mask alone (positions, no row copy): {mask_ratio:.0f}x",
               f"runlens timed as the mean of {FILTER_LOOPS} calls a sample; timed one call a sample (after "
               f"the collector's pass and the baseline's run, so caches are cold): {cold:.0f}x"],
    )



#: Calls of a runlens filter per timed sample (a call takes 1-3 ms; the baseline's, ~70 ms, one).
FILTER_LOOPS = 20


def _interleave_frozen(variants: dict, reps: int, options: Options, check, loops: dict | None = None) -> dict:
    """``interleave`` with the collector frozen: the million record dicts stay out of its passes."""
    gc.collect()
    gc.freeze()
    try:
        return interleave(variants, reps, warmup=not options.quick, check=check, loops=loops)
    finally:
        gc.unfreeze()

# #7: the same rows as a frame of this many runs (~2,200 events each at full size), as
# events_many, concat_events and History build them.
MANY_RUNS = 450


def many_runs_frame(frame: pd.DataFrame, runs: int = MANY_RUNS) -> pd.DataFrame:
    """``frame`` cut into ``runs`` runs of consecutive rows, each its own run id, then ``concat_events``."""
    from runlens.frames import concat_events

    return concat_events(run_parts(frame, runs))


def run_parts(frame: pd.DataFrame, runs: int = MANY_RUNS) -> list[pd.DataFrame]:
    """``frame`` cut into ``runs`` frames of consecutive rows, each its own run's (id, attrs)."""
    size = -(-len(frame) // runs)
    parts = []
    for k, start in enumerate(range(0, len(frame), size)):
        part = frame.iloc[start:start + size].copy()
        run_id = f"{synthetic.RUN_ID[:-4]}{k:04d}"
        part["run_id"] = pd.Categorical([run_id] * len(part))
        part.attrs = dict(frame.attrs, run_ids=[run_id])
        parts.append(part)
    return parts


def bench_filter_many(options: Options, bodies: list[bytes]) -> Result:
    from runlens.filters import filter_events
    from runlens.frames import concat_events

    records = synthetic.records(bodies)
    one = runlens_frame(bodies)
    parts = run_parts(one)
    concat_times = []
    for _ in range(1 if options.quick else 3):
        started = time.perf_counter()
        many = concat_events(parts)
        concat_times.append(time.perf_counter() - started)
    concat_s = statistics.median(concat_times)
    del parts
    runs = many["run_id"].nunique()
    n = len(records)
    reps = 1 if options.quick else options.reps
    log(f"#7 --type {TYPES} --step {STEP} over {n:,} rows of {runs} runs (concat_events), {reps} rep(s)")
    positions = {id(r): i for i, r in enumerate(records)}
    got: dict[str, list[int]] = {}

    def check(name, value):
        got[name] = [positions[id(r)] for r in value] if name == "baseline" else value["seq"].tolist()

    variants = {"baseline": lambda: baselines.seed_filter(records, TYPES, STEP),
                "runlens": lambda: filter_events(many, types=TYPES, step=STEP),
                "runlens_one_run": lambda: filter_events(one, types=TYPES, step=STEP)}
    samples = _interleave_frozen(variants, reps, options, check,
                                 {"runlens": FILTER_LOOPS, "runlens_one_run": FILTER_LOOPS})
    single = _interleave_frozen(variants, reps, options, None)  # one call a sample: mostly cold caches
    identical = got["baseline"] == got["runlens"] == got["runlens_one_run"]
    ratio = speedup(samples)
    one_ratio = speedup(samples, "baseline", "runlens_one_run")
    cold, cold_one = speedup(single), speedup(single, "baseline", "runlens_one_run")
    log(f"#7 speedup {ratio:.0f}x over {runs} runs ({one_ratio:.0f}x for one contiguous run), identical: {identical}; "
        f"concat_events of the {runs} runs' frames took {concat_s:.2f} s")
    return Result(
        id="7",
        what=f"`--type` + `--step` filtering of {n:,} rows of {runs} runs (`concat_events`)",
        baseline="the seed's loops over dicts",
        samples=samples,
        figure="baseline / runlens",
        value=ratio,
        target="≥ 50×, identical rows; as fast as one run's frame",
        passed=ratio >= 50 and identical,
        extra={"rows": n, "runs": runs, "selected": len(got["runlens"]), "identical_rows": identical,
               "speedup_one_run": one_ratio, "concat_events_s": concat_s, "speedup_single_calls": cold,
               "speedup_one_run_single_calls": cold_one, "single_call_samples": single, "loops": FILTER_LOOPS},
        notes=[f"the same rows as one contiguous frame: {one_ratio:.0f}x",
               f"runlens timed as the mean of {FILTER_LOOPS} calls a sample; timed one call a sample (caches "
               f"mostly cold): {cold:.0f}x ({cold_one:.0f}x for one contiguous run)",
               f"building the frame: concat_events of {runs} runs' frames took {concat_s:.2f} s (median)"],
    )


def run(options: Options, only: set[str] | frozenset[str] = frozenset({"3", "4", "7"})) -> list[Result]:
    n = QUICK_EVENTS if options.quick else FULL_EVENTS
    log(f"generating {n:,} synthetic events")
    bodies = synthetic.pages(n)
    log(f"  {len(bodies)} pages, {sum(map(len, bodies)) / n:.0f} bytes an event")
    benches = {"3": bench_convert, "4": bench_filter, "7": bench_filter_many}
    return [bench(options, bodies) for key, bench in benches.items() if key in only]
