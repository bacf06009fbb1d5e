"""Property tests: whatever a server (or a broken proxy) answers, the parser returns a typed
frame or raises a RunlensError, never another exception.

Hypothesis feeds GraphQL answers with missing fields, nulls, values of the wrong type,
unknown ``__typename``s, unknown levels, event types and run statuses, odd timestamps,
lone UTF-16 surrogates and non-object JSON to:

* ``frames.events_frame`` directly;
* ``Client._fetch_page`` and ``Client.events`` through a ``responses`` callback (so the
  JSON goes through the transport's decoding, as it would from a server);
* ``Client.run`` and ``Client.runs`` (run records and statuses).

"Typed" means the documented columns in the documented order, with the documented
dtypes (see ``runlens.frames``), every category a ``str``, and every text encodable as
UTF-8.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import responses
from hypothesis import example, given
from hypothesis import strategies as st

import runlens
from runlens import frames
from runlens.errors import RunlensError
from runlens.event_types import EVENT_TYPES
from runlens.frames import EVENT_COLUMNS
from runlens.models import LEVELS, EventPage, Run
from tests.builders import log_line

from .fake_dagster import BASE_URL, EVENT, HTTP_SETTINGS, JUNK, PAGE, RUN, SETTINGS, URL, envelope

RUN_ID = "run-1"

# -------------------------------------------------------------------------------- checks

def assert_typed_events(frame: pd.DataFrame) -> None:
    """The documented events frame: columns, order, dtypes; str categories; UTF-8 text."""
    assert list(frame.columns) == list(EVENT_COLUMNS)
    assert frame["seq"].dtype == "int64"
    assert str(frame["timestamp"].dtype) == "datetime64[ms, UTC]"
    level = frame["level"].dtype
    assert isinstance(level, pd.CategoricalDtype) and level.ordered
    assert list(level.categories[: len(LEVELS)]) == list(LEVELS)
    assert list(frame["event_type"].cat.categories[: len(EVENT_TYPES)]) == list(EVENT_TYPES)
    for column, dtype in EVENT_COLUMNS.items():
        if dtype == "category" or isinstance(dtype, pd.CategoricalDtype):
            assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
            assert all(isinstance(c, str) for c in frame[column].cat.categories), column
            text = list(frame[column].cat.categories)
        elif dtype is frames.STRING:
            assert frame[column].dtype == "string", column
            text = [v for v in frame[column].tolist() if isinstance(v, str)]
        else:
            continue
        "".join(text).encode("utf-8")  # no lone surrogate survives
    assert frame["message"].notna().all()


def serve(status_and_doc: tuple[int, object]):
    """A responses mock answering every POST with this document."""
    status, doc = status_and_doc
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    mock.add_callback(responses.POST, URL, callback=lambda request: (status, {"Content-Type": "application/json"},
                                                                     json.dumps(doc)))
    mock.add(responses.GET, f"{BASE_URL}/server_info", json={"dagster_version": "9.9.9"})
    return mock


def client() -> runlens.Client:
    return runlens.Client(URL, max_retries=1, backoff=0, progress=False)


# --------------------------------------------------------------------------------- tests

@SETTINGS
@given(records=st.lists(EVENT, max_size=10), start=st.integers(0, 10**6))
@example(records=[{"timestamp": "9" * 25, "level": "TRACE", "stepKey": 5}, {"stepKey": "a"}], start=0)
@example(records=[{"level": ["DEBUG"], "eventType": {"x": 1}, "__typename": 3.5}], start=0)
@example(records=[{"timestamp": "253402300800000"}, {"timestamp": -1}], start=0)
@example(records=[{"message": "a\ud800b", "error": {"message": "\udfff", "stack": "not a list"}}], start=0)
@example(records=[{"assetKey": {"path": ["a", 1, None]}}, {"assetKey": "a/b"}], start=0)
@example(records=[{"timestamp": [False, False]}], start=0)  # became a 2-D array
def test_events_frame_is_always_typed(records, start):
    frame = frames.events_frame(records, RUN_ID, start_seq=start)
    assert len(frame) == len(records)
    assert frame["seq"].tolist() == list(range(start, start + len(records)))
    assert_typed_events(frame)


@SETTINGS
@given(pages=st.lists(st.lists(EVENT, max_size=5), min_size=2, max_size=4))
def test_concatenated_pages_stay_typed(pages):
    parts, seq = [], 0
    for records in pages:
        parts.append(frames.events_frame(records, RUN_ID, start_seq=seq))
        seq += len(records)
    frame = frames.concat_events(parts)
    assert_typed_events(frame)
    assert frame["seq"].tolist() == list(range(seq))


@HTTP_SETTINGS
@given(answer=envelope("logsForRun", PAGE))
@example(answer=(200, {"data": {"logsForRun": {"__typename": "EventConnection", "events": None, "cursor": 5}}}))
@example(answer=(200, {"data": {"logsForRun": {"__typename": "EventConnection", "events": [None, 1]}}}))
@example(answer=(200, {"data": {"logsForRun": {"__typename": "EventConnection", "events": {"a": 1}}}}))
@example(answer=(200, {"data": {}}))
@example(answer=(200, {"data": []}))
@example(answer=(200, {"data": {"logsForRun": None}, "errors": [{"message": "boom"}]}))
@example(answer=(500, {"data": {"logsForRun": {"__typename": "PythonError", "message": "x", "stack": 3}}}))
@example(answer=(200, {"data": {"logsForRun": {"__typename": "EventConnection", "events": [], "hasMore": "no"}}}))
@example(answer=(400, {"data": None, "errors": "not a list"}))
@example(answer=(400, {"data": None, "errors": [{"message": 'Cannot query field "x" on type "Run".'}]}))
def test_fetch_page_returns_a_page_or_a_runlens_error(answer):
    with serve(answer):
        try:
            page = client()._fetch_page(RUN_ID, None, 100)
        except RunlensError:
            return
    assert isinstance(page, EventPage)
    assert all(isinstance(e, dict) for e in page.events)
    assert page.cursor is None or isinstance(page.cursor, str)
    assert_typed_events(frames.events_frame(page.events, RUN_ID))


@pytest.mark.filterwarnings("ignore::runlens.filters.UnknownEventTypeWarning")
@HTTP_SETTINGS
@given(answer=envelope("logsForRun", PAGE), limit=st.one_of(st.none(), st.integers(1, 5)),
       types=st.one_of(st.none(), st.just("STEP_START,BRAND_NEW_EVENT")))
def test_events_returns_a_typed_frame_or_a_runlens_error(answer, limit, types):
    # hasMore is forced off: a page that never ends would loop (the mock answers the same page).
    status, doc = answer
    result = (doc.get("data") or {}).get("logsForRun") if isinstance(doc, dict) and isinstance(
        doc.get("data"), dict) else None
    if isinstance(result, dict):
        result["hasMore"] = False
    with serve((status, doc)):
        try:
            frame = client().events(RUN_ID, limit=limit, types=types)
        except RunlensError:
            return
    assert_typed_events(frame)
    assert frame.attrs["run_ids"] == [RUN_ID]


@HTTP_SETTINGS
@given(answer=envelope("runOrError", RUN))
@example(answer=(200, {"data": {"runOrError": {"__typename": "Run", "id": "r", "status": None}}}))
@example(answer=(200, {"data": {"runOrError": {"__typename": "Run", "id": "r", "status": "X",
                                               "creationTime": "abc"}}}))
@example(answer=(200, {"data": {"runOrError": {"__typename": "Run", "id": "r", "status": "SUCCESS",
                                               "tags": [{"key": "a"}]}}}))
@example(answer=(200, {"data": {"runOrError": {"__typename": "Run", "id": "r", "status": "SUCCESS",
                                               "startTime": 1e300}}}))
def test_run_returns_a_run_or_a_runlens_error(answer):
    with serve(answer):
        try:
            run = client().run(RUN_ID)
        except RunlensError:
            return
    assert isinstance(run, Run)
    assert isinstance(run.status, str)  # a RunStatus, or the raw name of an unknown one
    str(run.status).encode("utf-8")
    run.is_finished, run.duration  # noqa: B018 - properties must not raise


@HTTP_SETTINGS
@given(answer=envelope("runsOrError", st.one_of(
    st.fixed_dictionaries({"__typename": st.just("Runs")},
                          optional={"results": st.one_of(st.lists(st.one_of(RUN, JUNK), max_size=4), JUNK),
                                    "count": JUNK}),
    PAGE)))
@example(answer=(200, {"data": {"runsOrError": {"__typename": "Runs", "results": [{"status": "NEW", "id": 3}]}}}))
@example(answer=(200, {"data": {"runsOrError": {"__typename": "Runs", "results": [
    {"id": "a", "creationTime": {}, "tags": [None, {"key": "k"}]}, {"id": "b", "creationTime": ""},
    {"id": "c", "creationTime": 9.2e18, "startTime": 9223372036855.0, "endTime": []}]}}}))
def test_runs_returns_a_typed_frame_or_a_runlens_error(answer):
    with serve(answer):
        try:
            frame = client().runs(limit=10)
        except RunlensError:
            return
    assert list(frame.columns[:7]) == frames.RUN_COLUMNS
    assert frame["run_id"].dtype == "string"
    for column in ("job_name", "status"):
        assert isinstance(frame[column].dtype, pd.CategoricalDtype)
        assert all(isinstance(c, str) for c in frame[column].cat.categories)
    for column in ("created", "started", "ended"):
        assert str(frame[column].dtype) == "datetime64[ms, UTC]"
    assert list(frame["status"].cat.categories[:10]) == list(frames.RUN_STATUS_DTYPE.categories)


@pytest.mark.parametrize("body", [b'{"data": {"logsForRun": {"__typename": "EventConnection", "events": [{"message": '
                                  b'"bad \xff\xfe utf-8", "level": "INFO", "timestamp": "1"}], "hasMore": false}}}'])
@responses.activate
def test_invalid_utf8_in_a_body_is_replaced_not_retried(body):
    responses.post(URL, body=body, content_type="application/json")
    frame = client().events(RUN_ID)
    assert frame["message"].iloc[0] == "bad \ufffd\ufffd utf-8"
    assert len(responses.calls) == 1


@responses.activate
def test_lone_surrogate_escapes_become_replacement_characters_everywhere():
    event = {"__typename": "ExecutionStepFailureEvent", "message": "a\ud800b", "timestamp": "1", "level": "ERROR",
             "stepKey": "st\udfffep", "eventType": "STEP_FAILURE",
             "error": {"message": "\ud800", "className": "E\udc00", "stack": ["x\ud800"]}}
    body = json.dumps({"data": {"logsForRun": {"__typename": "EventConnection", "events": [event],
                                               "cursor": None, "hasMore": False}}})
    assert "\\ud800" in body
    responses.post(URL, body=body, content_type="application/json")
    frame = client().events(RUN_ID)
    row = frame.iloc[0]
    assert row["message"] == "a\ufffdb" and row["step_key"] == "st\ufffdep"
    assert row["error_message"] == "\ufffd" and row["error_class"] == "E\ufffd"
    assert_typed_events(frame)


@responses.activate
def test_valid_surrogate_pairs_are_kept():
    body = json.dumps({"data": {"logsForRun": {"__typename": "EventConnection", "cursor": None, "hasMore": False,
                                               "events": [log_line(0) | {"message": "🚀 ok"}]}}})
    assert "\\ud83d\\ude80" in body
    responses.post(URL, body=body, content_type="application/json")
    assert client().events(RUN_ID)["message"].iloc[0] == "🚀 ok"
