"""Answers like Dagster's, and unlike: the unit tests' fake server and malformed answers.

* ``FakeDagster`` answers runlens's GraphQL queries like Dagster would. Its ``handle`` is
  a :class:`runlens.MockTransport` handler (``runlens.Client(transport=fake.transport())``);
  calling the fake itself answers a `responses` callback. Used for the paths a real
  server cannot be made to produce on demand; every happy path is also tested against
  the live demo server and cassettes.
* Well-formed records (``record``, ``make_events``, runs) are built in ``tests/builders.py``.
* The Hypothesis strategies (``EVENT``, ``PAGE``, ``RUN``, ``envelope``) make what a
  broken server or proxy might answer: missing fields, nulls, wrong types, unknown
  names, odd timestamps, lone UTF-16 surrogates, non-object JSON.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import runlens
from runlens.event_types import EVENT_TYPES
from runlens.vocabulary import LEVELS, RUN_STATUSES
from tests.builders import cursor_for, log_line, storage_id

#: Where the unit tests' fake Dagster answers (``responses`` intercepts it; nothing listens).
BASE_URL = "http://dagster.test:3000"
URL = BASE_URL + "/graphql"
RUN_ID = "run-1"


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


# ------------------------------------------------------------ Hypothesis strategies

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HTTP_SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ODD_TEXT = st.sampled_from(["", " ", "\ud800", "a\udfffb", "\ud83d", "🚀 naïve", "\x00", "null", "NaN",
                            "line\nbreak\ttab \\ \"q\"", "x" * 300])
TEXT = st.one_of(st.text(max_size=12), ODD_TEXT)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                   st.floats(allow_nan=True, allow_infinity=True), TEXT)
JUNK = st.one_of(SCALAR, st.lists(SCALAR, max_size=3), st.dictionaries(st.text(max_size=4), SCALAR, max_size=3))

TIMESTAMPS = st.one_of(
    st.integers(1_500_000_000_000, 2_000_000_000_000).map(str),  # what Dagster sends
    st.integers(-(2**70), 2**70).map(str),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e16, 1e16).map(repr),
    st.sampled_from(["", " ", "abc", "1e3", "1795667190783.5", " 1795667190783", "-1", "0", "9" * 25,
                     "NaN", "inf", "-inf", "2026-11-26T04:26:30Z", "9223372036854775807", "-9223372036854775808",
                     "253402300800000", "-62135596800001"]),
    JUNK,
)
LEVEL = st.one_of(st.sampled_from(LEVELS), st.sampled_from(["TRACE", "info", "", "FATAL", "\ud800"]), JUNK)
EVENT_TYPE = st.one_of(st.none(), st.sampled_from(EVENT_TYPES),
                       st.sampled_from(["BRAND_NEW_EVENT", "", "step_start", "PIPELINE_START"]), JUNK)
TYPENAME = st.one_of(st.sampled_from(["LogMessageEvent", "ExecutionStepFailureEvent", "MaterializationEvent",
                                      "BrandNewEvent", "EngineEvent", ""]), JUNK)
STEP_KEY = st.one_of(st.none(), st.sampled_from(["extract", "process_region[emea]", "", "\ud800"]), JUNK)

PYTHON_ERROR = st.recursive(
    st.fixed_dictionaries({}, optional={"message": st.one_of(TEXT, JUNK), "className": st.one_of(TEXT, JUNK),
                                        "stack": st.one_of(st.lists(TEXT, max_size=3), JUNK)}),
    lambda inner: st.fixed_dictionaries({}, optional={"message": TEXT, "className": TEXT, "cause": inner}),
    max_leaves=4,
)
ASSET_KEY = st.one_of(JUNK, st.fixed_dictionaries({}, optional={"path": st.one_of(st.lists(SCALAR, max_size=3),
                                                                                   JUNK)}))

EVENT = st.fixed_dictionaries(
    {},
    optional={
        "__typename": TYPENAME,
        "message": st.one_of(TEXT, JUNK),
        "timestamp": TIMESTAMPS,
        "level": LEVEL,
        "stepKey": STEP_KEY,
        "eventType": EVENT_TYPE,
        "error": st.one_of(PYTHON_ERROR, JUNK),
        "assetKey": ASSET_KEY,
        "runId": st.one_of(st.just(RUN_ID), JUNK),
    },
)


EVENTS = st.lists(st.one_of(EVENT, st.integers(0, 5).map(log_line)), max_size=8)

PAGE = st.one_of(
    st.fixed_dictionaries(
        {"__typename": st.one_of(st.just("EventConnection"), TYPENAME)},
        optional={"events": st.one_of(EVENTS, st.lists(st.one_of(EVENT, JUNK), max_size=3), JUNK),
                  "cursor": st.one_of(st.just("Y3Vyc29y"), st.none(), JUNK),
                  "hasMore": st.one_of(st.booleans(), JUNK)},
    ),
    st.fixed_dictionaries({"__typename": st.sampled_from(["RunNotFoundError", "PythonError"])},
                          optional={"message": st.one_of(TEXT, JUNK), "className": st.one_of(TEXT, JUNK),
                                    "stack": st.one_of(st.lists(TEXT, max_size=2), JUNK)}),
    JUNK,
)

RUN_STATUS = st.one_of(st.sampled_from(RUN_STATUSES),
                       st.sampled_from(["HIBERNATING", "", "success"]), JUNK)
SECONDS = st.one_of(st.none(), st.floats(0, 4e9), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-(2**70), 2**70), st.sampled_from(["", "abc", "1.5", "1795667190.5"]), JUNK)
RUN = st.fixed_dictionaries(
    {"__typename": st.one_of(st.just("Run"), TYPENAME)},
    optional={
        "id": st.one_of(st.just(RUN_ID), JUNK),
        "status": RUN_STATUS,
        "jobName": st.one_of(TEXT, JUNK),
        "pipelineName": st.one_of(TEXT, JUNK),
        "mode": st.one_of(TEXT, JUNK),
        "creationTime": SECONDS,
        "startTime": SECONDS,
        "endTime": SECONDS,
        "updateTime": SECONDS,
        "rootRunId": st.one_of(TEXT, JUNK),
        "parentRunId": st.one_of(TEXT, JUNK),
        "tags": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({"key": TEXT, "value": TEXT}), JUNK),
                                   max_size=3), JUNK),
        "runConfigYaml": st.one_of(TEXT, JUNK),
        "stats": st.one_of(JUNK, st.fixed_dictionaries(
            {"__typename": st.one_of(st.just("RunStatsSnapshot"), TYPENAME)},
            optional={"stepsSucceeded": st.one_of(st.integers(0, 10), JUNK), "stepsFailed": JUNK,
                      "materializations": JUNK, "expectations": JUNK, "enqueuedTime": SECONDS,
                      "launchTime": SECONDS, "startTime": SECONDS, "endTime": SECONDS})),
    },
)

# An answer as a whole: the HTTP status and the JSON document around the result.
def envelope(field: str, result: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.builds(lambda r, s: (s, {"data": {field: r}}), result, st.sampled_from([200, 200, 200, 500])),
        st.builds(lambda e, s: (s, {"data": None, "errors": e}),
                  st.one_of(st.lists(st.fixed_dictionaries({"message": st.one_of(TEXT, JUNK)}), max_size=2), JUNK),
                  st.sampled_from([200, 400, 500])),
        st.builds(lambda r, e: (200, {"data": {field: r}, "errors": e}), result, st.lists(JUNK, max_size=2)),
        st.builds(lambda d, s: (s, {"data": d}), JUNK, st.sampled_from([200, 500])),
        st.builds(lambda d: (200, d), JUNK),
    )


# ------------------------------------------------------------------ assets

class FakeAssets:
    """Serves ``assetOrError { assetEventHistory }`` and ``assetsOrError`` as Dagster 1.13 does.

    ``events`` are ``assetEventHistory`` records, each with a ``storage_id`` (not sent)
    and ``asset``; the history runs newest first (storage id descending), the cursor is
    the storage id of the last record returned, a page holds exactly ``limit`` records
    while more exist, time bounds are strict whole milliseconds (``"0"``: none), and an
    unknown key answers an ``Asset`` with no definition and no ``latestEventSortKey``.
    """

    SELECTOR = {"MaterializationEvent": "MATERIALIZATION", "FailedToMaterializeEvent": "FAILED_TO_MATERIALIZE",
                "ObservationEvent": "OBSERVATION"}

    def __init__(self, events: list[dict], definitions: dict[str, dict] | None = None):
        self.events = sorted(events, key=lambda e: e["storage_id"], reverse=True)
        self.definitions = definitions or {}
        self.requests: list[dict] = []
        self.fail_after: int | None = None  # answer 502 to every request after this many

    def transport(self, **options) -> runlens.MockTransport:
        return runlens.MockTransport(self.handle, **options)

    def handle(self, body: dict):
        self.requests.append(body)
        if self.fail_after is not None and len(self.requests) > self.fail_after:
            return 502, "bad gateway"
        variables = body["variables"]
        if "assetsOrError" in body["query"]:
            return {"data": {"assetsOrError": self._assets(variables)}}
        if "assetOrError" in body["query"]:
            return {"data": {"assetOrError": self._asset(variables)}}
        return 400, {"data": None, "errors": [{"message": "unexpected query"}]}

    def _keys(self) -> list[str]:
        return sorted({e["asset"] for e in self.events} | set(self.definitions))

    def _assets(self, variables: dict) -> dict:
        prefix = variables.get("prefix") or []
        keys = [k for k in self._keys() if k.split("/")[: len(prefix)] == prefix]
        if variables.get("cursor"):
            keys = [k for k in keys if k > variables["cursor"]]
        keys = keys[: variables.get("limit") or None]
        nodes = []
        for key in keys:
            times = [int(e["timestamp"]) for e in self.events if e["asset"] == key
                     and e["__typename"] == "MaterializationEvent"]
            ids = [e["storage_id"] for e in self.events if e["asset"] == key]
            nodes.append({"key": {"path": key.split("/")}, "definition": self.definitions.get(key),
                          "latestMaterializationTimestamp": float(max(times)) if times else None,
                          "latestEventSortKey": str(max(ids)) if ids else None})
        return {"__typename": "AssetConnection", "nodes": nodes, "cursor": keys[-1] if keys else None}

    def _asset(self, variables: dict) -> dict:
        key = "/".join(variables["assetKey"]["path"])
        mine = [e for e in self.events if e["asset"] == key]
        if not mine and key not in self.definitions:
            return {"__typename": "Asset", "latestEventSortKey": None, "definition": None,
                    "assetEventHistory": {"results": [], "cursor": cursor_for(-1)}}
        wanted = {s for s in variables["selectors"]}
        before_id = storage_id(variables["cursor"]) if variables.get("cursor") else None
        after_ms = int(variables["after"]) if variables.get("after") else None
        before_ms = int(variables["before"]) if variables.get("before") else None
        partitions = variables.get("partitions")
        page = [e for e in mine if self.SELECTOR[e["__typename"]] in wanted
                and (before_id is None or e["storage_id"] < before_id)
                and (after_ms is None or int(e["timestamp"]) > after_ms)
                and (before_ms is None or int(e["timestamp"]) < before_ms)
                and (partitions is None or e.get("partition") in partitions)][: variables["limit"]]
        return {"__typename": "Asset", "latestEventSortKey": str(mine[0]["storage_id"]) if mine else None,
                "definition": self.definitions.get(key),
                "assetEventHistory": {
                    "results": [{k: v for k, v in e.items() if k not in ("storage_id", "asset")} for e in page],
                    "cursor": cursor_for(page[-1]["storage_id"] if page else -1)}}


def asset_event(storage: int, *, asset: str = "daily", typename: str = "MaterializationEvent",
                partition: str | None = None, millis: int | None = None, metadata: list[dict] | None = None,
                run_id: str = "run-a") -> dict:
    """One ``assetEventHistory`` record (plus the fake's ``storage_id`` and ``asset``)."""
    event_type = {"MaterializationEvent": "ASSET_MATERIALIZATION",
                  "FailedToMaterializeEvent": "ASSET_FAILED_TO_MATERIALIZE",
                  "ObservationEvent": "ASSET_OBSERVATION"}[typename]
    record = {"storage_id": storage, "asset": asset, "__typename": typename, "runId": run_id,
              "timestamp": str(millis if millis is not None else 1_795_000_000_000 + storage * 1000),
              "stepKey": asset.replace("/", "__"), "partition": partition, "eventType": event_type,
              "description": None, "metadataEntries": metadata or []}
    if typename == "FailedToMaterializeEvent":
        record["materializationFailureReason"] = "FAILED_TO_MATERIALIZE"
    return record


def int_entry(label: str, value: int) -> dict:
    return {"__typename": "IntMetadataEntry", "label": label, "intRepr": str(value)}
