"""The baselines runlens is measured against: the seed's code and a bare ``requests`` loop.

The seed (``dg api run-events get``) is copied as it is, with one correction that it
needs to run at all: its ``RunEvent.event_type`` is a required ``str``, but Dagster
sends ``eventType: null`` for every plain log line (most events of a real run), so the
model as written fails validation on the first log line. Here it is ``Optional[str]``;
nothing else changes (timestamps stay strings, ``level`` an enum, one model per event).
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Dict, List, Optional  # noqa: UP035 - the seed's annotations, kept verbatim

import requests
from pydantic import BaseModel

from tests.seed_reference import seed_filter  # noqa: F401  the seed's filter loops, kept in one place

# The seed's query, verbatim.
SEED_EVENTS_QUERY = """
query CliRunEventsQuery($runId: ID!, $limit: Int, $afterCursor: String) {
    logsForRun(runId: $runId, limit: $limit, afterCursor: $afterCursor) {
        __typename
        ... on EventConnection {
            events {
                __typename
                ... on MessageEvent {
                    runId
                    message
                    timestamp
                    level
                    stepKey
                    eventType
                }
            }
            cursor
            hasMore
        }
        ... on PythonError {
            message
            stack
        }
        ... on RunNotFoundError {
            message
        }
    }
}
"""


class RunEventLevel(str, Enum):  # noqa: UP042 - the seed's class
    """Event severity levels."""

    CRITICAL = "CRITICAL"
    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"
    DEBUG = "DEBUG"


class RunEvent(BaseModel):
    """Single run event model (the seed's, with ``event_type`` optional: see above)."""

    run_id: str
    message: str
    timestamp: str  # ISO 8601 timestamp
    level: RunEventLevel
    step_key: Optional[str] = None  # noqa: UP045
    event_type: Optional[str] = None  # noqa: UP045  the seed: ``str`` (fails on log lines)


def seed_models(events: List[Dict]) -> List[RunEvent]:  # noqa: UP006
    """The seed's ``DgApiRunEventApi.get_events`` conversion, one model per event."""
    return [
        RunEvent(
            run_id=e["runId"],
            message=e["message"],
            timestamp=e["timestamp"],
            level=RunEventLevel[e["level"]],
            step_key=e.get("stepKey"),
            event_type=e["eventType"],
        )
        for e in events
    ]


def models_frame(models: List[RunEvent]):  # noqa: UP006
    """A DataFrame from the models' dumps (what a seed user would do next)."""
    import pandas as pd

    return pd.DataFrame([m.model_dump() for m in models])


def _post(session: requests.Session, url: str, query: str, variables: dict) -> dict:
    response = session.post(url, json={"query": query, "variables": variables}, timeout=60)
    response.raise_for_status()
    return json.loads(response.content)["data"]["logsForRun"]


def bare_fetch(url: str, run_id: str, query: str, page_size: int = 1000) -> list[dict]:
    """Baseline #1: a bare ``requests`` loop over ``logsForRun`` that only parses the JSON."""
    session = requests.Session()
    session.trust_env = False
    events: list[dict] = []
    cursor = None
    with session:
        while True:
            result = _post(session, url, query, {"runId": run_id, "limit": page_size, "afterCursor": cursor})
            page = result["events"]
            events.extend(page)
            cursor = result["cursor"] or cursor
            if not result["hasMore"] or not page:
                return events


def seed_fetch(url: str, run_id: str, page_size: int = 100):
    """Baseline #2: the seed's way — pages of 100, its query, a model per event, then a frame."""
    session = requests.Session()
    session.trust_env = False
    models: list[RunEvent] = []
    cursor = None
    with session:
        while True:
            variables = {"runId": run_id, "limit": page_size}
            if cursor:
                variables["afterCursor"] = cursor
            result = _post(session, url, SEED_EVENTS_QUERY, variables)
            page = result.get("events", [])
            models.extend(seed_models(page))
            cursor = result.get("cursor") or cursor
            if not result.get("hasMore", False) or not page:
                break
    return models_frame(models)
