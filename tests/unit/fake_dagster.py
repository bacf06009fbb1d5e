"""A `responses` callback that answers runlens's GraphQL queries like Dagster would.

Used only for the error and retry paths that a real server cannot be made to produce on
demand; every happy path is also tested against the live demo server and cassettes.
"""

from __future__ import annotations

import base64
import json


def cursor_for(storage_id: int) -> str:
    return base64.b64encode(json.dumps({"type": "STORAGE_ID", "value": storage_id}).encode()).decode()


def storage_id(cursor: str | None) -> int:
    if cursor is None:
        return -1
    return json.loads(base64.b64decode(cursor))["value"]


def make_events(n: int, *, start_ms: int = 1_795_667_190_000) -> list[dict]:
    """n events shaped like Dagster's: steps, a log line every third event."""
    events = []
    for i in range(n):
        if i % 3 == 2:
            events.append({"__typename": "LogMessageEvent", "message": f"line {i}", "timestamp": str(start_ms + i),
                           "level": "INFO", "stepKey": f"step_{i % 5}", "eventType": None})
        else:
            events.append({"__typename": "ExecutionStepStartEvent", "message": f"start {i}",
                           "timestamp": str(start_ms + i), "level": "DEBUG", "stepKey": f"step_{i % 5}",
                           "eventType": "STEP_START"})
    return events


class FakeDagster:
    """Serves ``logsForRun`` pages over a list of events, capping pages at 1000."""

    def __init__(self, events: list[dict], run_id: str = "run-1"):
        self.events = events
        self.run_id = run_id
        self.requests: list[dict] = []

    def __call__(self, request):
        body = json.loads(request.body)
        self.requests.append(body)
        variables = body["variables"]
        if "logsForRun" in body["query"]:
            if variables["runId"] != self.run_id:
                result = {"__typename": "RunNotFoundError", "message": "not found"}
                return 200, {}, json.dumps({"data": {"logsForRun": result}})
            start = storage_id(variables.get("afterCursor")) + 1
            limit = variables.get("limit") or 1000
            limit = min(limit, 1000) if limit > 0 else len(self.events)
            page = self.events[start : start + limit]
            cursor = cursor_for(start + len(page) - 1) if page else variables.get("afterCursor")
            result = {"__typename": "EventConnection", "events": page, "cursor": cursor,
                      "hasMore": len(page) == limit}
            return 200, {}, json.dumps({"data": {"logsForRun": result}})
        if "runOrError" in body["query"]:
            if variables["runId"] != self.run_id:
                result = {"__typename": "RunNotFoundError", "message": "not found"}
            else:
                result = {"__typename": "Run", "id": self.run_id, "status": "SUCCESS", "jobName": "j",
                          "pipelineName": "j", "mode": "default", "creationTime": 1795667190.5,
                          "startTime": 1795667191.25, "endTime": 1795667200.0, "updateTime": 1795667200.0,
                          "tags": [{"key": "team", "value": "data"}], "rootRunId": None, "parentRunId": None,
                          "runConfigYaml": "{}\n"}
            return 200, {}, json.dumps({"data": {"runOrError": result}})
        return 400, {}, json.dumps({"data": None, "errors": [{"message": "unexpected query"}]})
