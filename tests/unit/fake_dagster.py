"""A fake Dagster answering runlens's GraphQL queries like Dagster would.

``FakeDagster.handle`` is a :class:`runlens.MockTransport` handler
(``runlens.Client(transport=fake.transport())``); calling the fake itself answers a
`responses` callback. Used for the paths a real server cannot be made to produce on
demand; every happy path is also tested against the live demo server and cassettes.
"""

from __future__ import annotations

import base64
import json

import runlens


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
    """Serves ``logsForRun`` pages over a list of events, capping pages at 1000, and ``runOrError``."""

    def __init__(self, events: list[dict], run_id: str = "run-1"):
        self.events = events
        self.run_id = run_id
        self.requests: list[dict] = []

    def transport(self, **options) -> runlens.MockTransport:
        return runlens.MockTransport(self.handle, **options)

    def handle(self, body: dict):
        """The answer to one request payload: a JSON document, or (400, document)."""
        self.requests.append(body)
        variables = body["variables"]
        if "logsForRun" in body["query"]:
            if variables["runId"] != self.run_id:
                return {"data": {"logsForRun": {"__typename": "RunNotFoundError", "message": "not found"}}}
            start = storage_id(variables.get("afterCursor")) + 1
            limit = variables.get("limit") or 1000
            limit = min(limit, 1000) if limit > 0 else len(self.events)
            page = self.events[start : start + limit]
            cursor = cursor_for(start + len(page) - 1) if page else variables.get("afterCursor")
            return {"data": {"logsForRun": {"__typename": "EventConnection", "events": page, "cursor": cursor,
                                            "hasMore": len(page) == limit}}}
        if "runOrError" in body["query"]:
            if variables["runId"] != self.run_id:
                result = {"__typename": "RunNotFoundError", "message": "not found"}
            else:
                result = {"__typename": "Run", "id": self.run_id, "status": "SUCCESS", "jobName": "j",
                          "pipelineName": "j", "mode": "default", "creationTime": 1795667190.5,
                          "startTime": 1795667191.25, "endTime": 1795667200.0, "updateTime": 1795667200.0,
                          "tags": [{"key": "team", "value": "data"}], "rootRunId": None, "parentRunId": None,
                          "runConfigYaml": "{}\n"}
            return {"data": {"runOrError": result}}
        return 400, {"data": None, "errors": [{"message": "unexpected query"}]}

    def __call__(self, request):
        """As a `responses` callback."""
        answer = self.handle(json.loads(request.body))
        status, doc = answer if isinstance(answer, tuple) else (200, answer)
        return status, {}, json.dumps(doc)


class FakeDagsters:
    """Several runs, each its own :class:`FakeDagster`, behind one endpoint."""

    def __init__(self, *fakes: FakeDagster):
        self.fakes = {fake.run_id: fake for fake in fakes}
        self.missing = FakeDagster([], run_id="\0")  # answers RunNotFoundError to every run id

    def handle(self, body: dict):
        return self.fakes.get(body["variables"].get("runId"), self.missing).handle(body)

    def transport(self, **options) -> runlens.MockTransport:
        return runlens.MockTransport(self.handle, **options)
