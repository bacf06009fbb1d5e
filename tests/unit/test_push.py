"""runlens.push: the graphql-ws follower against a websocket server in this process.

The server (tests/unit/fake_websocket.py) speaks the protocol as dagster-webserver does;
the HTTP side (the run's status, and logsForRun when polling) is a MockTransport over the
same run. The live tests (tests/live/test_push_live.py) do the same against a real Dagster.
"""

from __future__ import annotations

import logging
import re
import threading
import time

import pandas as pd
import pytest
import responses
from click.testing import CliRunner

import runlens.push as push
from runlens import AuthError, Client, MockTransport, ServerError, TransportError, concat_events
from runlens.cli import main
from runlens.config import Settings
from runlens.frames import events_frame
from runlens.queries import EVENTS
from tests.builders import cursor_for, etl_run, storage_id

from .fake_websocket import FakeWebsocketDagster, LiveRun


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    """Short waits: a handshake gives up after 1 s, reconnects back off from 10 ms."""
    monkeypatch.setattr(push, "OPEN_TIMEOUT", 1.0)
    monkeypatch.setattr(push, "RECONNECT_BASE", 0.01)


def client_of(server: FakeWebsocketDagster, **options) -> Client:
    return Client(transport=MockTransport(server.run.answer, url=server.url, websocket=True, **options))


def ending(status: str) -> list[dict]:
    """The records of etl_run (tests/builders.py), ending with the run event of ``status``."""
    records = etl_run().records
    return [{**r, "eventType": f"RUN_{status}"} if r.get("eventType") == "RUN_FAILURE" else r for r in records]


def grow(run: LiveRun, records: list[dict], *, every: float = 0.01, status: str = "FAILURE") -> threading.Thread:
    """Append ``records`` one by one in a thread, then set the final status."""

    def work() -> None:
        for record in records[:-1]:
            time.sleep(every)
            run.append(record)
        run.append(records[-1], status=status)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_the_subscription_selects_exactly_the_event_fields_logsForRun_does():
    def selection(document: str, field: str) -> str:
        body = document[document.index(field + " {"):]
        return re.sub(r"\s+", " ", body[: body.index("}\n    }") + 1])

    assert selection(push.SUBSCRIPTION, "messages").replace("messages", "events") == selection(EVENTS, "events")


def test_pushed_batches_concatenate_to_the_one_shot_frame_in_storage_order():
    records = etl_run().records
    half = len(records) // 2
    run = LiveRun(records[:half])
    with FakeWebsocketDagster(run, chunk=7) as server:
        client = client_of(server)
        grower = grow(run, records[half:])
        batches = list(client.follow("run-a", grace=0.3, timeout=30))
        grower.join()
    expected = events_frame(records, "run-a")
    pd.testing.assert_frame_equal(concat_events(batches), expected)
    assert {b.attrs["transport"] for b in batches} == {"websocket"}
    assert batches[-1].attrs["cursor"] == cursor_for(len(records) - 1) and batches[-1].attrs["status"] == "FAILURE"
    assert [b["seq"].iloc[0] for b in batches] == [0, *[b["seq"].iloc[-1] + 1 for b in batches[:-1]]]
    # One subscription from the start; stopped by the client (the server never ends it).
    assert server.starts == [{"runId": "run-a", "cursor": None}] and server.stops == 1
    assert server.headers[0]["Sec-WebSocket-Protocol"] == "graphql-ws" and server.headers[0]["User-Agent"] == "runlens"
    # The HTTP side: the status at the start and once at the end, nothing while events streamed.
    assert len(client.transport.requests) == 2


def test_following_goes_on_after_a_cursor_with_continuous_seq():
    records = etl_run().records
    with FakeWebsocketDagster(LiveRun(records, status="FAILURE")) as server:
        batches = list(client_of(server).follow("run-a", after_cursor=cursor_for(9), start_seq=10, grace=0.1))
    rest = concat_events(batches)
    assert rest["seq"].tolist() == list(range(10, len(records)))
    assert rest["message"].tolist() == [r["message"] for r in records[10:]]
    assert server.starts[0]["cursor"] == cursor_for(9)


def test_a_websocket_cut_again_and_again_resumes_from_the_last_cursor_without_gap_or_duplicate():
    records = etl_run().records
    run = LiveRun(records[:5])
    with FakeWebsocketDagster(run, cut_after=4) as server:
        client = client_of(server, max_retries=3)
        grower = grow(run, records[5:], every=0.005)
        batches = list(client.follow("run-a", grace=0.3, timeout=60))
        grower.join()
    pd.testing.assert_frame_equal(concat_events(batches), events_frame(records, "run-a"))
    assert {b.attrs["transport"] for b in batches} == {"websocket"}
    cursors = [start["cursor"] for start in server.starts]
    assert len(cursors) > 5 and cursors[0] is None
    # Each reconnect asked for the events after the last one received: strictly forward.
    positions = [storage_id(c) for c in cursors]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


def test_a_websocket_that_keeps_dropping_without_progress_hands_over_to_polling():
    records = etl_run().records
    run = LiveRun(records[:-1])
    # Every connection is cut after its first message: after the first, none brings anything new.
    with FakeWebsocketDagster(run, cut_after=1) as server:
        client = client_of(server, max_retries=2)
        seen: list[str] = []
        threading.Timer(0.5, run.append, args=(records[-1],), kwargs={"status": "FAILURE"}).start()
        batches = list(client.follow("run-a", grace=0.1, interval=0.05, on_transport=seen.append))
    pd.testing.assert_frame_equal(concat_events(batches), events_frame(records, "run-a"))
    # The stored events came pushed, the last one polled from their cursor.
    assert [b.attrs["transport"] for b in batches] == ["websocket", "polling"] and len(batches[1]) == 1
    assert seen == ["websocket", "polling"] and len(server.starts) == 3  # the first, then max_retries


@pytest.mark.parametrize("refuse", [404, 400])
def test_a_refused_upgrade_is_found_out_once_and_followed_by_polling(refuse):
    records = etl_run().records
    with FakeWebsocketDagster(LiveRun(records, status="FAILURE"), refuse=refuse) as server:
        client = client_of(server)
        first = list(client.follow("run-a", grace=0.05, interval=0.05))
        second = list(client.follow("run-a", grace=0.05, interval=0.05))
        assert server.handshakes == 1
        with pytest.raises(TransportError, match=f"refused the websocket upgrade \\(HTTP {refuse}\\)"):
            list(client.follow("run-a", push=True))
    for batches in (first, second):
        assert {b.attrs["transport"] for b in batches} == {"polling"}
        pd.testing.assert_frame_equal(concat_events(batches), events_frame(records, "run-a"))


def test_an_upgrade_refused_for_the_credentials_is_an_auth_error_when_push_is_forced():
    with FakeWebsocketDagster(LiveRun([], status="SUCCESS"), refuse=403) as server:
        with pytest.raises(AuthError, match="HTTP 403"):
            list(client_of(server).follow("run-a", push=True))


def test_a_server_that_never_acknowledges_is_given_up_within_the_open_timeout():
    records = etl_run().records
    with FakeWebsocketDagster(LiveRun(records, status="FAILURE"), ack=False) as server:
        started = time.monotonic()
        batches = list(client_of(server).follow("run-a", grace=0.05, interval=0.05))
        took = time.monotonic() - started
    assert {b.attrs["transport"] for b in batches} == {"polling"} and sum(map(len, batches)) == len(records)
    assert 1.0 <= took < 5.0


def test_no_websocket_is_tried_for_a_mock_without_a_server():
    fake = Client(transport=MockTransport(LiveRun([], status="SUCCESS").answer))
    assert list(fake.follow("run-a", grace=0.01, interval=0.01)) == []
    with pytest.raises(ValueError, match="push=True needs a client that talks to a server"):
        list(fake.follow("run-a", push=True))
    with pytest.raises(ValueError, match="push must be None"):
        list(fake.follow("run-a", push="yes"))


def test_a_run_that_never_starts_sends_no_request_while_idle_and_ends_at_the_timeout():
    with FakeWebsocketDagster(LiveRun([], status="NOT_STARTED")) as server:
        client = client_of(server)
        started = time.monotonic()
        batches = list(client.follow("run-a", timeout=1.5))
        took = time.monotonic() - started
    assert batches == [] and 1.5 <= took < 3.0
    assert len(client.transport.requests) == 1  # the status at the start; then nothing until the timeout
    assert server.stops == 1


def test_stop_ends_following_at_once():
    with FakeWebsocketDagster(LiveRun([], status="STARTED")) as server:
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        assert list(client_of(server).follow("run-a", stop=stop)) == []
        assert time.monotonic() - started < 1.5


def test_a_cursor_the_server_cannot_read_is_a_server_error_that_says_so():
    with FakeWebsocketDagster(LiveRun([], status="SUCCESS")) as server:
        with pytest.raises(ServerError, match="could not read events after the cursor 'bad'"):
            list(client_of(server).follow("run-a", after_cursor="bad"))


def test_the_token_travels_in_its_header_and_never_into_a_log(caplog):
    token = "s3cret-token-value"
    with FakeWebsocketDagster(LiveRun([], status="SUCCESS")) as server:
        settings = Settings(server.url, token=token, organization="org", deployment="prod")
        with caplog.at_level(logging.DEBUG, logger="websockets"):
            with push.RunLogSubscription(settings, "run-a", None) as subscription:
                assert subscription.open()[0]["messages"] == []
    assert server.headers[0]["Dagster-Cloud-Api-Token"] == token
    assert server.headers[0]["Dagster-Cloud-Deployment"] == "prod"
    client_log = "\n".join(r.getMessage() for r in caplog.records if r.name == "websockets.client")
    assert "Dagster-Cloud-Api-Token: [secure]" in client_log and token not in client_log


def test_websocket_urls_keep_the_path_and_switch_the_scheme():
    assert push.websocket_url("http://h:3000/x/graphql") == "ws://h:3000/x/graphql"
    assert push.websocket_url("https://org.dagster.cloud/prod/graphql") == "wss://org.dagster.cloud/prod/graphql"


# ------------------------------------------------------------------------------ run-events tail


def serve_http(run: LiveRun, url: str) -> None:
    import json

    responses.add_callback(responses.POST, url, callback=lambda request: (
        200, {"Content-Type": "application/json"}, json.dumps(run.answer(json.loads(request.body)))))


@responses.activate
@pytest.mark.parametrize("status, code", [("SUCCESS", 0), ("FAILURE", 6), ("CANCELED", 7)])
def test_tail_prints_the_events_as_they_come_and_exits_with_the_outcome(status, code):
    records = ending(status)
    run = LiveRun(records[:3])
    with FakeWebsocketDagster(run) as server:
        serve_http(run, server.url)
        grow(run, records[3:], status=status)
        result = CliRunner().invoke(main, ["run-events", "tail", "run-a", "--json", "--url", server.url])
    assert result.exit_code == code, result.output
    import json

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["message"] for line in lines] == [r["message"] for r in records]
    assert set(lines[0]) == {"runId", "message", "timestamp", "level", "stepKey", "eventType"}


@responses.activate
def test_tail_filters_as_run_events_get_and_times_out_with_5():
    records = etl_run().records[:-2]  # still running: no RUN_FAILURE yet
    run = LiveRun(records, status="STARTED")
    with FakeWebsocketDagster(run) as server:
        serve_http(run, server.url)
        result = CliRunner().invoke(main, ["run-events", "tail", "run-a", "--type", "STEP_START", "--step", "extract",
                                           "--timeout", "1", "--url", server.url])
    assert result.exit_code == 5
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["TIMESTAMP", "LEVEL", "TYPE", "STEP_KEY", "MESSAGE"]
    expected = [r for r in records if r.get("eventType") == "STEP_START" and "extract" in (r.get("stepKey") or "")]
    assert len(rows[2:]) == len(expected) > 0 and all("STEP_START" in row for row in rows[2:])
    assert "has not ended after 1 s (status STARTED)" in result.stderr


def test_a_password_in_the_url_never_shows_in_a_websocket_error():
    with FakeWebsocketDagster(LiveRun([], status="SUCCESS"), refuse=404) as server:
        url = server.url.replace("http://", "http://user:hunter2@")
        client = Client(transport=MockTransport(server.run.answer, url=url, websocket=True))
        with pytest.raises(TransportError) as caught:
            list(client.follow("run-a", push=True))
    assert "hunter2" not in str(caught.value) and "ws://user:[secure]@127.0.0.1" in str(caught.value)
    assert server.headers[0]["Authorization"].startswith("Basic ")  # sent, as requests sends it
