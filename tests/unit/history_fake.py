"""A fake Dagster deployment for the History tests: many runs, ``runsOrError`` with its filters, ``logsForRun``.

Not a test module. Run times are epoch seconds; the ``runsOrError`` filter bounds are strict,
as Dagster's are, and results come newest first, paged by run id.
"""

from __future__ import annotations

import json

import runlens
from tests.builders import T0, canceled_run, cursor_for, etl_run, storage_id
from tests.unit.fake_dagster import FakeAssets

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


class FakeDeployment:
    def __init__(self) -> None:
        self.runs: dict[str, dict] = {}
        self.events: dict[str, list[dict]] = {}
        self.requests: list[dict] = []
        # Its assets (none unless a test adds events): assetsOrError and assetEventHistory.
        self.assets = FakeAssets([])

    def add(self, run_id: str, records: list[dict], *, job: str = "etl_job", status: str = "SUCCESS",
            created: float | None = None, tags: dict | None = None) -> FakeDeployment:
        created = created if created is not None else int(records[0]["timestamp"]) / 1000 if records else T0 / 1000
        end = int(records[-1]["timestamp"]) / 1000 if records else created
        self.runs[run_id] = {"id": run_id, "status": status, "jobName": job, "pipelineName": job, "mode": "default",
                             "creationTime": created, "startTime": created + 1,
                             "endTime": end if status in TERMINAL else None,
                             "updateTime": float(int(end)),  # whole seconds, as Dagster stores some
                             "rootRunId": None, "parentRunId": None,
                             "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        self.events[run_id] = list(records)
        return self

    def finish(self, run_id: str, status: str, records: list[dict] = ()) -> None:
        """The run goes on: more events, a new status, an update time later than any before (it is now)."""
        self.events[run_id].extend(records)
        run = self.runs[run_id]
        end = int(self.events[run_id][-1]["timestamp"]) / 1000
        now = max(r["updateTime"] for r in self.runs.values()) + 2
        run.update(status=status, endTime=end if status in TERMINAL else None, updateTime=now)

    def client(self) -> runlens.Client:
        return runlens.Client(transport=runlens.MockTransport(self.handle), progress=False)

    def handle(self, body: dict):
        self.requests.append(body)
        query, variables = body["query"], body["variables"]
        if "assetsOrError" in query or "assetOrError" in query:
            return self.assets.handle(body)
        if "runsOrError" in query:
            flt = variables.get("filter") or {}
            runs = sorted(self.runs.values(), key=lambda r: (r["creationTime"], r["id"]), reverse=True)

            def keep(r: dict) -> bool:
                return ((flt.get("pipelineName") in (None, r["jobName"]))
                        and (flt.get("runIds") is None or r["id"] in flt["runIds"])
                        and (flt.get("statuses") is None or r["status"] in flt["statuses"])
                        and (flt.get("createdAfter") is None or r["creationTime"] > flt["createdAfter"])
                        and (flt.get("createdBefore") is None or r["creationTime"] < flt["createdBefore"])
                        and (flt.get("updatedAfter") is None or r["updateTime"] > flt["updatedAfter"])
                        and all(t in r["tags"] for t in flt.get("tags") or []))

            runs = [r for r in runs if keep(r)]
            if variables.get("cursor"):
                ids = [r["id"] for r in runs]
                runs = runs[ids.index(variables["cursor"]) + 1:]
            limit = variables.get("limit") or len(runs)
            results = runs[:limit]
            if "stepStats" in query:
                results = [{**r, "stepStats": self.step_stats(r["id"])} for r in results]
            return {"data": {"runsOrError": {"__typename": "Runs", "count": len(runs), "results": results}}}
        if "logsForRun" in query:
            run_id = variables["runId"]
            if run_id not in self.events:
                return {"data": {"logsForRun": {"__typename": "RunNotFoundError", "message": "not found"}}}
            events = self.events[run_id]
            start = storage_id(variables.get("afterCursor")) + 1
            limit = min(variables.get("limit") or 1000, 1000)
            page = events[start:start + limit]
            cursor = cursor_for(start + len(page) - 1) if page else variables.get("afterCursor")
            return {"data": {"logsForRun": {"__typename": "EventConnection", "events": page, "cursor": cursor,
                                            "hasMore": len(page) == limit}}}
        if "runOrError" in query:
            run = self.runs.get(variables["runId"])
            if run is None:
                return {"data": {"runOrError": {"__typename": "RunNotFoundError", "message": "not found"}}}
            if "stepStats" in query:
                run = {**run, "stepStats": self.step_stats(run["id"])}
            return {"data": {"runOrError": {"__typename": "Run", **run}}}
        return 400, {"data": None, "errors": [{"message": "unexpected query"}]}


    def step_stats(self, run_id: str) -> list[dict]:
        """``Run.stepStats`` as Dagster computes them (its replay: the tests' reference), times in float seconds."""
        from tests.unit.test_steps import reference_step_stats

        def seconds(ms: int | None) -> float | None:
            return None if ms is None else ms / 1000

        return [{"stepKey": key, "status": s["status"], "startTime": seconds(s["start"]), "endTime": seconds(s["end"]),
                 "attempts": [{"startTime": seconds(a), "endTime": seconds(b)} for a, b in s["attempts"]]}
                for key, s in reference_step_stats(self.events[run_id]).items()]


def deployment() -> FakeDeployment:
    """Three finished runs of two jobs in two months, and one queued run."""
    fake = FakeDeployment()
    fake.add("run-a", etl_run("run-a").records, status="FAILURE", tags={"team": "data"})
    fake.add("run-x", canceled_run("run-x").records, job="slow_job", status="CANCELED")
    october = T0 - 40 * 86_400_000
    fake.add("run-old", etl_run("run-old", t0=october).records, status="FAILURE")
    fake.add("run-q", [], status="QUEUED", created=T0 / 1000 + 100)
    return fake


# October and November of the runs' year, in epoch milliseconds: asset events of two months.
NOVEMBER_MS = 1_795_000_000_000
OCTOBER_MS = NOVEMBER_MS - 40 * 86_400_000


def asset_events_of_deployment() -> list[dict]:
    """Asset events as ``assetEventHistory`` serves them: a partitioned asset with metadata of every
    kind (a label of mixed types among them) and a failure, a two-part key, an observed source; two months."""
    from tests.unit.fake_dagster import asset_event, int_entry

    def entry(typename: str, label: str, **fields) -> dict:
        return {"__typename": typename, "label": label, **fields}

    events = []
    for i in range(8):
        meta = [int_entry("row_count", 1000 + 10 * i), entry("FloatMetadataEntry", "seconds", floatRepr=str(1.5 + i)),
                entry("JsonMetadataEntry", "schema", jsonString=json.dumps({"columns": ["a", "b"], "version": i})),
                entry("BoolMetadataEntry", "complete", boolValue=i % 2 == 0),
                entry("TimestampMetadataEntry", "as_of", timestamp=1_794_000_000.25 + i),
                entry("IntMetadataEntry", "big", intRepr=str(2**70 + i))]
        if i == 5:
            meta.append(entry("TextMetadataEntry", "row_count", text="unknown"))  # mixed: text with a note
        if i == 6:
            meta[1] = entry("FloatMetadataEntry", "seconds", floatRepr="nan")
        millis = (OCTOBER_MS if i < 3 else NOVEMBER_MS) + i * 60_000
        events.append(asset_event(i + 1, asset="daily_orders", partition=f"2026-11-0{i % 3 + 1}", millis=millis,
                                  metadata=meta, run_id=f"run-{i}"))
    events.append(asset_event(9, asset="daily_orders", typename="FailedToMaterializeEvent", partition="2026-11-01",
                              millis=NOVEMBER_MS + 9 * 60_000, run_id="run-9"))
    events.append(asset_event(10, asset="warehouse/orders", millis=NOVEMBER_MS + 10 * 60_000,
                              metadata=[entry("UrlMetadataEntry", "dashboard", url="https://example.com/x"),
                                        entry("WeirdMetadataEntry", "future", payload=1)]))
    events.append(asset_event(11, asset="raw_orders", typename="ObservationEvent", millis=NOVEMBER_MS + 11 * 60_000,
                              metadata=[entry("TextMetadataEntry", "version", text="v1")], run_id=""))
    return events


def asset_deployment() -> FakeDeployment:
    """:func:`deployment` with assets and their events (:func:`asset_events_of_deployment`)."""
    fake = deployment()
    fake.assets = FakeAssets(asset_events_of_deployment(),
                             {"daily_orders": {"groupName": "sales", "isPartitioned": True},
                              "warehouse/orders": {"groupName": "sales", "isPartitioned": False},
                              "never_run": {"groupName": "sales", "isPartitioned": False}})
    return fake


def add_asset_events(fake: FakeDeployment, events: list[dict]) -> None:
    """New events stored by the deployment (storage ids above every earlier one)."""
    fake.assets.events = sorted(fake.assets.events + events, key=lambda e: e["storage_id"], reverse=True)
