"""The typed fast path (``runlens.event_decoder``) against the general one.

The fast path must give exactly the frame the general path (``json.loads``, then
``EventColumns.add`` of the dicts) gives, or decline the body so the general path
handles it: on real Dagster answers (the cassettes), on hand-picked odd bodies, and on
every answer Hypothesis makes.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from hypothesis import example, given

from runlens.event_decoder import decode_events_page
from runlens.frames import EventColumns, events_frame
from tests.builders import log_line, record
from tests.vcr_setup import CASSETTES

from .fake_dagster import PAGE, SETTINGS, envelope

RUN_ID = "run-1"


def general_frame(body: bytes, run_id: str = RUN_ID) -> pd.DataFrame:
    return EventColumns(run_id).add(json.loads(body)["data"]["logsForRun"]["events"]).frame()


def recorded_event_bodies() -> list[tuple[str, bytes]]:
    """Every ``logsForRun`` answer the cassettes hold, as the server sent it."""
    found = []
    for path in sorted(CASSETTES.glob("*.yaml")):
        for i, interaction in enumerate(yaml.safe_load(path.read_text())["interactions"]):
            if "RunlensEvents" in (interaction["request"]["body"] or ""):  # a GET (a log download) has none
                found.append((f"{path.stem}[{i}]", interaction["response"]["body"]["string"].encode()))
    return found


RECORDED = recorded_event_bodies()


def test_the_cassettes_hold_event_pages_of_both_kinds():
    kinds = {json.loads(body)["data"]["logsForRun"]["__typename"] for _, body in RECORDED}
    assert {"EventConnection", "RunNotFoundError"} <= kinds


@pytest.mark.parametrize("name,body", RECORDED, ids=[name for name, _ in RECORDED])
def test_recorded_answers_decode_as_the_general_path_does(name, body):
    connection = json.loads(body)["data"]["logsForRun"]
    page = decode_events_page(body, RUN_ID)
    if connection["__typename"] != "EventConnection":
        assert page is None  # reported by the general path (RunNotFound)
        return
    assert page is not None, "a real Dagster page must take the fast path"
    assert (page.cursor, page.has_more, len(page)) == (connection["cursor"], connection["hasMore"],
                                                       len(connection["events"]))
    pd.testing.assert_frame_equal(page.columns.frame(), general_frame(body))


def test_error_and_asset_events_keep_their_fields():
    events = [log_line(0),
              record(1, "STEP_FAILURE", "extract", "line 1",
                     error={"message": "ValueError: bad\n", "className": "ValueError", "stack": ["  File x\n"],
                            "cause": {"message": "KeyError: 'k'\n", "className": "KeyError", "stack": [],
                                      "cause": None}}),
              record(2, "ASSET_MATERIALIZATION", "extract", "line 2", level="INFO", asset="warehouse/orders")]
    body = json.dumps({"data": {"logsForRun": {"__typename": "EventConnection", "events": events,
                                               "cursor": "c", "hasMore": False}}}).encode()
    frame = decode_events_page(body, RUN_ID).columns.frame()
    pd.testing.assert_frame_equal(frame, general_frame(body))
    assert frame["error_class"].tolist()[1] == "ValueError"
    assert frame["error_cause"].tolist()[1] == "KeyError: 'k'"
    assert frame["asset_key"].tolist()[2] == "warehouse/orders"


def test_a_step_failure_keeps_the_user_code_stack_of_its_cause():
    # Dagster wraps the user's exception: the wrapper's stack is Dagster's own code, the
    # cause's stack is where the user's op raised (issue 12, defect 5).
    wrapper_stack = ["  File \"/site-packages/dagster/_core/execution/plan/utils.py\", line 54\n"]
    user_stack = ["  File \"/repo/pipelines/ops.py\", line 12, in flaky\n", "    raise ValueError('bad row')\n"]
    failure = record(0, "STEP_FAILURE", "extract", "line 0",
                     error={"message": "dagster._core.errors.DagsterExecutionStepExecutionError: Error in op\n",
                            "className": "DagsterExecutionStepExecutionError", "stack": wrapper_stack,
                            "cause": {"message": "ValueError: bad row\n", "className": "ValueError",
                                      "stack": user_stack, "cause": None}})
    no_cause = {**failure, "error": {**failure["error"], "cause": None}}
    body = page_body([failure, no_cause, log_line(2)])
    frame = decode_events_page(body, RUN_ID).columns.frame()
    pd.testing.assert_frame_equal(frame, general_frame(body))
    assert frame["error_stack"].tolist()[0] == "".join(wrapper_stack)
    assert frame["error_cause_stack"].tolist()[0] == "".join(user_stack)
    assert frame["error_cause_stack"].isna().tolist() == [False, True, True]
    assert str(frame["error_cause_stack"].dtype) == "string"


def page_body(events: list, **connection) -> bytes:
    doc = {"__typename": "EventConnection", "events": events, "cursor": "Y3Vyc29y", "hasMore": False, **connection}
    return json.dumps({"data": {"logsForRun": doc}}).encode()


@pytest.mark.parametrize(
    "body",
    [
        page_body([{**log_line(0), "message": None}]),
        page_body([{**log_line(0), "message": 7}]),
        page_body([{**log_line(0), "level": None}]),
        page_body([{k: v for k, v in log_line(0).items() if k != "timestamp"}]),
        page_body([{**log_line(0), "timestamp": True}]),
        page_body([{**log_line(0), "stepKey": ["a"]}]),
        page_body([log_line(0)], cursor=5),
        page_body([log_line(0)], hasMore="yes"),
        page_body([log_line(0)], hasMore="true"),
        page_body([log_line(0)], hasMore=1),
        page_body([log_line(0)], __typename="BrandNewConnection"),
        json.dumps({"data": {"logsForRun": {"__typename": "RunNotFoundError", "message": "no run"}}}).encode(),
        json.dumps({"data": {"logsForRun": {"__typename": "EventConnection", "events": [], "cursor": None,
                                            "hasMore": False}}, "errors": [{"message": "partial"}]}).encode(),
        b'{"data": {"logsForRun": {"__typename": "EventConnection", "events": [{"message": "a\\ud800b"}]}}}',
        page_body([log_line(0)]).replace(b"line 0", b"line \xff"),  # invalid UTF-8
        page_body([log_line(0)])[:-5],  # cut short
        b"<html>502 Bad Gateway</html>",
        b"[1, 2]",
        b"",
    ],
)
def test_bodies_the_fast_path_declines(body):
    # Declined means handed to the general path, which repairs or reports each of these.
    assert decode_events_page(body, RUN_ID) is None


def test_escaped_pairs_unknown_fields_and_pretty_printing_take_the_fast_path():
    event = {**log_line(0), "message": "launch 🚀 naïve", "solidHandleID": "x", "runId": "r"}
    for body in (json.dumps({"data": {"logsForRun": {"__typename": "EventConnection", "events": [event],
                                                     "cursor": "c", "hasMore": True}}}, indent=2).encode(),
                 page_body([event])):  # ensure_ascii: the emoji as an escaped surrogate pair
        page = decode_events_page(body, RUN_ID)
        assert page is not None
        assert page.columns.frame()["message"].tolist() == ["launch 🚀 naïve"]
        pd.testing.assert_frame_equal(page.columns.frame(), general_frame(body))


@SETTINGS
@given(answer=envelope("logsForRun", PAGE))
@example(answer=(200, {"data": {"logsForRun": {"__typename": "EventConnection", "cursor": "c", "hasMore": False,
                                               "events": [{**log_line(0), "stepKey": "null"}]}}}))
@example(answer=(200, {"data": {"logsForRun": {"__typename": "EventConnection", "cursor": "c", "hasMore": False,
                                               "events": [{**log_line(0), "timestamp": 1795667190783.0}]}}}))
@example(answer=(200, {"data": {"logsForRun": {"__typename": "EventConnection", "cursor": "c", "hasMore": False,
                                               "events": [{**log_line(0), "timestamp": "1e3"}]}}}))
@example(answer=(200, {"data": {"logsForRun": {"__typename": "EventConnection", "cursor": "c", "hasMore": False,
                                               "events": [{**log_line(0), "timestamp": "1795667190783.5"}]}}}))
@example(answer=(200, {"data": {"logsForRun": {"__typename": "EventConnection", "cursor": "c", "hasMore": 1,
                                               "events": [log_line(0)]}}}))
def test_whatever_the_fast_path_accepts_it_decodes_as_the_general_path(answer):
    _, doc = answer
    body = json.dumps(doc).encode()
    page = decode_events_page(body, RUN_ID)
    if page is None:
        return
    connection = json.loads(body)["data"]["logsForRun"]
    # As the general path reads them (client._checked_page): hasMore only if exactly true.
    assert page.cursor == connection["cursor"] and page.has_more is (connection["hasMore"] is True)
    pd.testing.assert_frame_equal(page.columns.frame(), general_frame(body))


def test_extend_cuts_pages_and_their_rare_fields_like_one_frame_of_the_records():
    records = [log_line(i) for i in range(12)]
    records[3] = {**records[3], "error": {"message": "boom", "className": "RuntimeError"}}
    records[9] = {**records[9], "assetKey": {"path": ["a", "b"]}}
    first, second = EventColumns(RUN_ID).add(records[:5]), EventColumns(RUN_ID).add(records[5:])
    for rows in (0, 3, 4, 5, 7, 12, 99):
        both = EventColumns(RUN_ID).extend(EventColumns(RUN_ID).extend(first).extend(second), rows)
        pd.testing.assert_frame_equal(both.frame(), events_frame(records[:rows], RUN_ID))


def test_columns_of_unequal_length_are_refused():
    with pytest.raises(ValueError, match="one value per event"):
        EventColumns(RUN_ID).add_columns(timestamp=[1], level=["INFO"], event_type=[None], step_key=[None],
                                         message=["a", "b"], kind=["LogMessageEvent"])


def test_a_json_body_sent_as_html_is_reported_not_decoded():
    # The general path's check (a web page, not GraphQL) comes before the fast path.
    from runlens import Client, MockTransport
    from runlens.errors import ConfigError

    def handler(request):
        return 200, page_body([log_line(0)]), {"Content-Type": "text/html; charset=utf-8"}

    with pytest.raises(ConfigError, match="HTML page"):
        Client(transport=MockTransport(handler), progress=False).events(RUN_ID)
