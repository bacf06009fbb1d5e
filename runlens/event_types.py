"""Dagster's event type names (``DagsterEventType``), and the RUN_/PIPELINE_ twins.

Taken by introspection of Dagster 1.13's GraphQL schema (55 values). Current servers
emit ``RUN_*``; older ones emitted the legacy ``PIPELINE_*`` names for the same events,
so runlens treats each pair as one name.
"""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "STEP_OUTPUT", "STEP_INPUT", "STEP_FAILURE", "STEP_START", "STEP_SUCCESS", "STEP_SKIPPED",
    "STEP_WORKER_STARTING", "STEP_WORKER_STARTED", "RESOURCE_INIT_STARTED",
    "RESOURCE_INIT_SUCCESS", "RESOURCE_INIT_FAILURE", "STEP_UP_FOR_RETRY", "STEP_RESTARTED",
    "ASSET_MATERIALIZATION", "ASSET_MATERIALIZATION_PLANNED", "ASSET_FAILED_TO_MATERIALIZE",
    "ASSET_OBSERVATION", "STEP_EXPECTATION_RESULT", "ASSET_CHECK_EVALUATION_PLANNED",
    "ASSET_CHECK_EVALUATION", "ASSET_HEALTH_CHANGED", "ASSET_WIPED", "RUN_ENQUEUED",
    "RUN_DEQUEUED", "RUN_STARTING", "RUN_START", "RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELING",
    "RUN_CANCELED", "RUN_SUSPENDED", "RUN_RESUMED", "PIPELINE_ENQUEUED", "PIPELINE_DEQUEUED",
    "PIPELINE_STARTING", "PIPELINE_START", "PIPELINE_SUCCESS", "PIPELINE_FAILURE",
    "PIPELINE_CANCELING", "PIPELINE_CANCELED", "OBJECT_STORE_OPERATION", "ASSET_STORE_OPERATION",
    "LOADED_INPUT", "HANDLED_OUTPUT", "ENGINE_EVENT", "HOOK_COMPLETED", "HOOK_ERRORED",
    "HOOK_SKIPPED", "ALERT_START", "ALERT_SUCCESS", "ALERT_FAILURE", "LOGS_CAPTURED",
    "FRESHNESS_STATE_EVALUATION", "FRESHNESS_STATE_CHANGE", "CODE_LOCATION_UPDATED",
)

KNOWN = frozenset(EVENT_TYPES)


def twins(name: str) -> tuple[str, ...]:
    """The names that denote the same event: ``RUN_START`` ↔ ``PIPELINE_START``.

    >>> twins("PIPELINE_SUCCESS")
    ('PIPELINE_SUCCESS', 'RUN_SUCCESS')
    >>> twins("STEP_START")
    ('STEP_START',)
    """
    if name.startswith("RUN_") and "PIPELINE_" + name[4:] in KNOWN:
        return (name, "PIPELINE_" + name[4:])
    if name.startswith("PIPELINE_") and "RUN_" + name[9:] in KNOWN:
        return (name, "RUN_" + name[9:])
    return (name,)
