"""Synthetic ``logsForRun`` pages shaped like a real run's, generated deterministically.

The mix follows what the demo jobs produce on a real Dagster: per step the framework
events (worker start, resource init, step start, inputs, outputs, success, logs
captured) around many plain log lines (``__typename: LogMessageEvent``, ``eventType``
null, mostly INFO, a few multi-line or non-ASCII), a failing step now and then with a
``PythonError`` and its cause, and materializations with an asset key. Step keys
include dynamic ones (``process_region[emea]``). Each page is the JSON body Dagster
answers for the seed's query plus the fields runlens selects (``runId`` included, so
the seed's model can be built from the same bytes).
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator

RUN_ID = "5f0c2a1e-7d3b-4b8e-9a61-2c4d8e9f1a07"
START_MS = 1_795_667_190_783

_REGIONS = ("emea", "amer", "apac", "latam", "anz")
_WORDS = ("orders", "customers", "rows", "batch", "partition", "region", "upload", "parquet", "s3://bucket/key",
          "retrying", "latency", "schema", "naïve café ✓", "数据", "🚀", "join", "dedupe", "watermark")

# (eventType, __typename, level, message template) of the framework events of one step.
_STEP_HEAD = [
    ("STEP_WORKER_STARTING", "EngineEvent", "DEBUG", 'Launching subprocess for "{s}".'),
    ("STEP_WORKER_STARTED", "EngineEvent", "DEBUG", 'Executing step "{s}" in subprocess.'),
    ("RESOURCE_INIT_STARTED", "ResourceInitStartedEvent", "DEBUG", "Starting initialization of resources [io_manager]."),
    ("RESOURCE_INIT_SUCCESS", "ResourceInitSuccessEvent", "DEBUG", "Finished initialization of resources [io_manager]."),
    ("LOGS_CAPTURED", "LogsCapturedEvent", "DEBUG", "Started capturing logs in process (pid: 4242)."),
    ("STEP_START", "ExecutionStepStartEvent", "DEBUG", 'Started execution of step "{s}".'),
    ("LOADED_INPUT", "LoadedInputEvent", "DEBUG", 'Loaded input "upstream" using input manager "io_manager"'),
    ("STEP_INPUT", "ExecutionStepInputEvent", "DEBUG", 'Got input "upstream" of type "Any". (Type check passed).'),
]
_STEP_TAIL = [
    ("STEP_OUTPUT", "ExecutionStepOutputEvent", "DEBUG", 'Yielded output "result" of type "Any". (Type check passed).'),
    ("HANDLED_OUTPUT", "HandledOutputEvent", "DEBUG", 'Handled output "result" using IO manager "io_manager"'),
    ("STEP_SUCCESS", "ExecutionStepSuccessEvent", "DEBUG", 'Finished execution of step "{s}" in {ms}ms.'),
]


def _cursor(storage_id: int) -> str:
    return base64.b64encode(json.dumps({"type": "STORAGE_ID", "value": storage_id}).encode()).decode()


def _step_keys(n_steps: int, *, indexed: bool = True) -> list[str]:
    """Step keys of a job: extracts, a dynamic fan-out (``process_region[emea_1]``, or without the
    index ``process_region[emea]``), transforms and loads."""
    keys = []
    for i in range(n_steps):
        kind = i % 4
        if kind == 0:
            keys.append(f"extract_{i}")
        elif kind == 1:
            region = _REGIONS[i % len(_REGIONS)]
            keys.append(f"process_region[{region}_{i}]" if indexed else f"process_region[{region}]")
        elif kind == 2:
            keys.append(f"transform_{i}")
        else:
            keys.append(f"load_table_{i}")
    return keys


def _log_message(rng: random.Random, i: int) -> str:
    words = rng.choices(_WORDS, k=rng.randint(2, 12))
    text = f"{rng.choice(('processed', 'wrote', 'read', 'saw', 'skipped'))} {i} " + " ".join(words)
    if rng.random() < 0.01:
        text += "\n\tdetail line\n\tanother \"quoted\" \\ line"
    return text


def iter_events(n: int, *, seed: int = 7, lines_per_step: int = 400) -> Iterator[dict]:
    """``n`` event records in storage order, as ``logsForRun`` returns them."""
    rng = random.Random(seed)
    n_steps = max(1, n // (lines_per_step + len(_STEP_HEAD) + len(_STEP_TAIL)))
    keys = _step_keys(n_steps)
    t = START_MS
    emitted = 0

    def event(typename, event_type, level, step, message, **extra):
        nonlocal t, emitted
        t += rng.randint(0, 3)
        emitted += 1
        record = {"__typename": typename, "runId": RUN_ID, "message": message, "timestamp": str(t),
                  "level": level, "stepKey": step, "eventType": event_type}
        record.update(extra)
        return record

    head = [
        ("RUN_STARTING", "RunStartingEvent", "INFO", ""),
        ("RUN_START", "RunStartEvent", "DEBUG", 'Started execution of run for "big_job".'),
        ("ENGINE_EVENT", "EngineEvent", "DEBUG", "Executing steps using multiprocess executor: parent process (pid: 4241)"),
    ]
    for et, tn, lv, msg in head:
        if emitted < n:
            yield event(tn, et, lv, None, msg)
    step_index = 0
    while emitted < n:
        s = keys[step_index % len(keys)]
        step_index += 1
        for et, tn, lv, msg in _STEP_HEAD:
            if emitted < n:
                yield event(tn, et, lv, s, msg.format(s=s))
        for _ in range(lines_per_step):
            if emitted >= n:
                break
            r = rng.random()
            level = "INFO" if r < 0.85 else "DEBUG" if r < 0.95 else "WARNING" if r < 0.99 else "ERROR"
            yield event("LogMessageEvent", None, level, s, _log_message(rng, emitted))
        if emitted >= n:
            break
        if step_index % 7 == 2:
            yield event("MaterializationEvent", "ASSET_MATERIALIZATION", "DEBUG", s,
                        f'Materialized value "{s}".', assetKey={"path": ["warehouse", s]})
        if step_index % 11 == 3 and emitted < n:
            error = {"message": f"ValueError: bad row {step_index}\n", "className": "ValueError",
                     "stack": ['  File "/opt/app/ops.py", line 42, in op\n    raise ValueError(...)\n'],
                     "cause": {"message": "KeyError: 'region'\n", "className": "KeyError", "stack": [],
                               "cause": None}}
            yield event("ExecutionStepFailureEvent", "STEP_FAILURE", "ERROR", s,
                        f'Execution of step "{s}" failed.', error=error)
            continue
        for et, tn, lv, msg in _STEP_TAIL:
            if emitted < n:
                yield event(tn, et, lv, s, msg.format(s=s, ms=rng.randint(5, 5000)))


def pages(n: int, *, page_size: int = 1000, seed: int = 7) -> list[bytes]:
    """The JSON bodies of the ``logsForRun`` pages of an ``n``-event run."""
    out = []
    batch: list[dict] = []
    sent = 0

    def flush(final: bool) -> None:
        nonlocal sent, batch
        sent += len(batch)
        body = {"data": {"logsForRun": {"__typename": "EventConnection", "events": batch,
                                        "cursor": _cursor(sent - 1), "hasMore": not final}}}
        out.append(json.dumps(body, ensure_ascii=False).encode())
        batch = []

    for record in iter_events(n, seed=seed):
        batch.append(record)
        if len(batch) == page_size:
            flush(final=False)
    flush(final=True)  # Dagster's hasMore means "page full": a last (possibly empty) page
    return out


def records(page_bodies: list[bytes]) -> list[dict]:
    """Every event record of the pages, parsed."""
    return [e for body in page_bodies for e in json.loads(body)["data"]["logsForRun"]["events"]]
