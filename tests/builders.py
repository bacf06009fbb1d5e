"""Builders of well-formed Dagster records: the tests' one home for what a healthy server stores.

Not a test module (no tests here): every test module that needs events imports them from here.

* ``record`` is one raw ``logsForRun`` event record, shaped like Dagster's GraphQL answer
  (``__typename``, ``message``, ``timestamp`` in epoch ms as text, ``level``, ``stepKey``,
  ``eventType``); ``log_line`` is the same record for a user's log line (no event type).
* ``make_events`` is a long run of plain records, for paging.
* ``cursor_for``/``storage_id`` write and read Dagster's opaque event cursor.
* ``RunBuilder`` appends one run's records in storage order and makes its events frame;
  ``etl_run``, ``live_run`` and ``canceled_run`` are runs shaped like what Dagster 1.13
  stores (see shared/docs/dagster-graphql.md, "Step timing truth"); ``user_error``
  is an error as Dagster reports a raise in op code.

Malformed answers (what a broken server or proxy might send) are Hypothesis strategies in
``tests/unit/fake_dagster.py``, next to the fake server.
"""

from __future__ import annotations

import base64
import json

import pandas as pd

from runlens.frames import events_frame

T0 = 1_795_667_190_000  # epoch ms: 2026-11-26T04:26:30Z

TYPENAMES = {
    "RUN_ENQUEUED": "RunEnqueuedEvent", "RUN_STARTING": "RunStartingEvent", "RUN_START": "RunStartEvent",
    "RUN_SUCCESS": "RunSuccessEvent", "RUN_FAILURE": "RunFailureEvent", "RUN_CANCELED": "RunCanceledEvent",
    "RUN_CANCELING": "RunCancelingEvent",
    "ENGINE_EVENT": "EngineEvent", "STEP_WORKER_STARTING": "StepWorkerStartingEvent",
    "STEP_WORKER_STARTED": "StepWorkerStartedEvent", "RESOURCE_INIT_STARTED": "ResourceInitStartedEvent",
    "RESOURCE_INIT_SUCCESS": "ResourceInitSuccessEvent", "STEP_START": "ExecutionStepStartEvent",
    "STEP_RESTARTED": "ExecutionStepRestartEvent", "STEP_UP_FOR_RETRY": "ExecutionStepUpForRetryEvent",
    "STEP_SUCCESS": "ExecutionStepSuccessEvent", "STEP_FAILURE": "ExecutionStepFailureEvent",
    "STEP_SKIPPED": "ExecutionStepSkippedEvent", "LOADED_INPUT": "LoadedInputEvent",
    "STEP_INPUT": "ExecutionStepInputEvent", "STEP_OUTPUT": "ExecutionStepOutputEvent",
    "HANDLED_OUTPUT": "HandledOutputEvent", "ASSET_MATERIALIZATION": "MaterializationEvent",
}
# Dagster logs these at INFO/ERROR; every other lifecycle event at DEBUG.
LEVELS = {"RUN_ENQUEUED": "INFO", "RUN_STARTING": "INFO", "STEP_FAILURE": "ERROR", "RUN_FAILURE": "ERROR",
          "RUN_CANCELED": "ERROR"}


# ---------------------------------------------------------------------------- records


def record(at: int, event_type: str | None = None, step: str | None = None, message: str = "", *,
           level: str | None = None, typename: str | None = None, t0: int = T0, error: dict | None = None,
           asset: str | None = None, **extra) -> dict:
    """One ``logsForRun`` record, ``at`` ms after ``t0``.

    Without ``event_type`` it is a user's log line (``LogMessageEvent``, INFO); otherwise
    ``__typename`` and ``level`` are what Dagster sends for that type unless given. ``asset``
    is a ``/``-separated asset key; ``extra`` keys (``runId``, a test's own ``seq``) are added
    as they are.
    """
    if typename is None:
        typename = "LogMessageEvent" if event_type is None else TYPENAMES.get(event_type, "EngineEvent")
    if level is None:
        level = "INFO" if event_type is None else LEVELS.get(event_type, "DEBUG")
    built = {"__typename": typename, "message": message, "timestamp": str(t0 + at), "level": level,
             "stepKey": step, "eventType": event_type}
    if error:
        built["error"] = error
    if asset:
        built["assetKey"] = {"path": asset.split("/")}
    built.update(extra)
    return built


def log_line(at: int, message: str | None = None, step: str | None = "extract", level: str = "INFO",
             **options) -> dict:
    """A user's log line (``context.log.info``): a record with no event type."""
    return record(at, None, step, f"line {at}" if message is None else message, level=level, **options)


def make_events(n: int, *, start_ms: int = T0) -> list[dict]:
    """n records shaped like Dagster's: step starts over five steps, a log line every third."""
    return [log_line(i, f"line {i}", f"step_{i % 5}", t0=start_ms) if i % 3 == 2
            else record(i, "STEP_START", f"step_{i % 5}", f"start {i}", t0=start_ms)
            for i in range(n)]


def cursor_for(storage_id: int) -> str:
    """Dagster's opaque ``logsForRun`` cursor after the event with this storage id."""
    return base64.b64encode(json.dumps({"type": "STORAGE_ID", "value": storage_id}).encode()).decode()


def storage_id(cursor: str | None) -> int:
    """The storage id a cursor points after; -1 (before the first event) for no cursor."""
    if cursor is None:
        return -1
    return json.loads(base64.b64decode(cursor))["value"]


# ------------------------------------------------------------------------------- runs


class RunBuilder:
    """Raw ``logsForRun`` records of one run, appended in storage order."""

    def __init__(self, run_id: str = "run-a", t0: int = T0):
        self.run_id, self.t0, self.records = run_id, t0, []

    def event(self, at: int, event_type: str, step: str | None = None, message: str = "", *,
              error: dict | None = None, asset: str | None = None) -> RunBuilder:
        self.records.append(record(at, event_type, step, message, t0=self.t0, error=error, asset=asset))
        return self

    def log(self, at: int, step: str | None, message: str, level: str = "INFO") -> RunBuilder:
        self.records.append(log_line(at, message, step, level, t0=self.t0))
        return self

    def abandoned(self, at: int, step: str, failed: list[str], *, upstream_skipped: bool = False,
                  with_step_key: bool = True) -> RunBuilder:
        how = "were not executed" if upstream_skipped else "failed"
        return self.log(at, step if with_step_key else None,
                        f"Dependencies for step {step} {how}: {failed!r}. Not executing.", level="ERROR")

    def frame(self) -> pd.DataFrame:
        return events_frame(self.records, self.run_id)


def user_error(cls: str, message: str, cause: dict | None = None) -> dict:
    """An error as Dagster reports a raise in op code: wrapped, the op's exception as cause."""
    inner = {"message": f"{cls}: {message}\n", "className": cls, "stack": ['  File "/srv/ops.py", line 3\n'],
             "cause": cause}
    return {"message": 'dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while '
                       'executing op "x":\n', "className": "DagsterExecutionStepExecutionError",
            "stack": ['  File "/srv/dagster/_core/execution/plan/utils.py", line 54\n'], "cause": inner}


# What a step stopped by its run's cancellation reports (#12 defect 6).
INTERRUPTED = {"message": "dagster._core.errors.DagsterExecutionInterruptedError\n",
               "className": "DagsterExecutionInterruptedError",
               "stack": ['  File "/srv/dagster/_core/execution/plan/execute_plan.py", line 300\n'], "cause": None}


def etl_run(run_id: str = "run-a", t0: int = T0) -> RunBuilder:
    """A finished, failed multiprocess run: parallel extracts, a retried step, a dynamic
    fan-out with one failed branch, two abandoned steps downstream."""
    b = RunBuilder(run_id, t0)
    b.event(0, "RUN_ENQUEUED").event(200, "RUN_STARTING")
    b.event(1000, "RUN_START", message='Started execution of run for "etl_job".')
    b.event(1010, "ENGINE_EVENT", message="Executing steps using multiprocess executor: parent process (pid: 7)")
    # extract and extract_customers run in parallel; their events interleave.
    b.event(1100, "STEP_WORKER_STARTING", "extract").event(1105, "STEP_WORKER_STARTING", "extract_customers")
    b.event(1900, "STEP_WORKER_STARTED", "extract").event(1950, "RESOURCE_INIT_STARTED", "extract")
    b.event(1960, "STEP_WORKER_STARTED", "extract_customers").event(2000, "RESOURCE_INIT_SUCCESS", "extract")
    b.event(2080, "STEP_START", "extract_customers")
    b.event(2050, "STEP_START", "extract")  # stored after a later timestamp: storage order ≠ time order
    b.log(2300, "extract", "extracted 12 orders")
    b.event(2400, "STEP_OUTPUT", "extract_customers").event(2420, "HANDLED_OUTPUT", "extract_customers")
    b.event(2450, "STEP_SUCCESS", "extract_customers")
    b.event(3000, "STEP_OUTPUT", "extract").log(3010, "extract", "Writing file at: /tmp/storage/extract", "DEBUG")
    b.event(3040, "HANDLED_OUTPUT", "extract").event(3050, "ASSET_MATERIALIZATION", "extract", asset="raw/orders")
    b.event(3100, "STEP_SUCCESS", "extract")
    # transform fails once, waits, succeeds on its second attempt.
    b.event(3200, "STEP_WORKER_STARTING", "transform").event(3900, "STEP_WORKER_STARTED", "transform")
    b.event(4000, "STEP_START", "transform").log(4030, "transform", "Loading file from: /tmp/storage/extract", "DEBUG")
    b.event(4100, "LOADED_INPUT", "transform").event(4110, "STEP_INPUT", "transform")
    b.event(4150, "LOADED_INPUT", "transform").event(4160, "STEP_INPUT", "transform")
    b.log(4300, "transform", "flaky upstream, failing once", "WARNING")
    b.event(4500, "STEP_UP_FOR_RETRY", "transform", error=user_error("RetryRequested", "try again"))
    b.event(5500, "STEP_WORKER_STARTING", "transform").event(6200, "STEP_WORKER_STARTED", "transform")
    b.event(6300, "STEP_RESTARTED", "transform")
    b.event(6360, "LOADED_INPUT", "transform").event(6370, "STEP_INPUT", "transform")
    b.event(6400, "LOADED_INPUT", "transform").event(6410, "STEP_INPUT", "transform")
    b.event(7000, "STEP_OUTPUT", "transform").event(7100, "HANDLED_OUTPUT", "transform")
    b.event(7110, "ASSET_MATERIALIZATION", "transform", asset="clean/orders")
    b.event(7200, "STEP_SUCCESS", "transform")
    # Dynamic fan-out: three parallel branches, apac fails.
    for i, region in enumerate(("emea", "amer", "apac")):
        b.event(7300 + i, "STEP_WORKER_STARTING", f"process[{region}]")
    b.event(8000, "STEP_WORKER_STARTED", "process[amer]").event(8010, "STEP_WORKER_STARTED", "process[emea]")
    b.event(8100, "STEP_START", "process[amer]")
    b.event(8020, "STEP_WORKER_STARTED", "process[apac]").event(8090, "STEP_START", "process[emea]")
    b.event(8120, "STEP_START", "process[apac]")
    b.event(8150, "LOADED_INPUT", "process[emea]").event(8160, "LOADED_INPUT", "process[amer]")
    b.log(8300, "process[apac]", "région apac: naïve café ✓ 数据", "INFO")
    b.event(8600, "STEP_FAILURE", "process[apac]",
            error=user_error("ValueError", "bad region apac", {"message": "KeyError: 'apac'\n",
                                                               "className": "KeyError", "stack": []}))
    b.event(8900, "STEP_SUCCESS", "process[amer]").event(9200, "STEP_SUCCESS", "process[emea]")
    b.abandoned(9300, "load", ["process[apac]"])
    b.abandoned(9310, "report", ["load"], upstream_skipped=True)
    b.event(9400, "RUN_FAILURE", message="Execution of run for \"etl_job\" failed. Steps failed: ['process[apac]'].")
    b.event(9450, "ENGINE_EVENT", message="Process for run exited (pid: 7).")
    return b


def live_run(run_id: str = "run-b", t0: int = T0 + 60_000) -> RunBuilder:
    """A run still in progress: one step done, one running its second attempt, one running
    its first, one waiting to retry, one skipped by Dagster (STEP_SKIPPED)."""
    b = RunBuilder(run_id, t0)
    b.event(0, "RUN_STARTING").event(500, "RUN_START")
    b.event(600, "STEP_WORKER_STARTING", "a").event(1200, "STEP_WORKER_STARTED", "a")
    b.event(1300, "STEP_START", "a").event(1800, "STEP_SUCCESS", "a")
    b.event(1900, "STEP_START", "b").event(2400, "STEP_UP_FOR_RETRY", "b").event(2900, "STEP_RESTARTED", "b")
    b.event(1950, "STEP_START", "c")
    b.log(2000, "d", "Skipping step d due to skipped dependencies: ['a.maybe'].")
    b.event(2000, "STEP_SKIPPED", "d")
    b.event(3000, "STEP_START", "e").event(3200, "STEP_UP_FOR_RETRY", "e")
    b.log(3500, "c", "still working")
    return b


def canceled_run(run_id: str = "run-x", t0: int = T0 + 7_200_000) -> RunBuilder:
    """A run canceled while `slow` ran and `flaky` waited to retry; `fast` had finished."""
    b = RunBuilder(run_id, t0)
    b.event(0, "RUN_ENQUEUED").event(100, "RUN_STARTING").event(1000, "RUN_START")
    b.event(1100, "STEP_START", "fast").event(1200, "STEP_START", "slow").event(1300, "STEP_START", "flaky")
    b.event(1500, "STEP_SUCCESS", "fast").event(1600, "STEP_UP_FOR_RETRY", "flaky")
    b.event(2000, "RUN_CANCELING", message="Sending run termination request.")
    b.event(2100, "STEP_FAILURE", "slow", error=INTERRUPTED)
    b.event(2200, "RUN_CANCELED", message="Execution of run for \"slow_job\" canceled.")
    return b


def ms(n: int) -> pd.Timedelta:
    """`n` milliseconds."""
    return pd.Timedelta(milliseconds=n)


def at(offset: int, t0: int = T0) -> pd.Timestamp:
    """The UTC time `offset` milliseconds after `t0` (the builders' epoch)."""
    return pd.Timestamp(t0 + offset, unit="ms", tz="UTC")
