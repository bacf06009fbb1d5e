"""Following runs live: pushed over the webserver's websocket, polled, reconnected, and `run-events tail`.

Every follower here ends with the same frame as ``client.events(run_id)`` fetched after
the run: every event exactly once, in storage order, with the same dtypes, and as many
events as Dagster's own storage holds (tests/truth.py).
"""

from __future__ import annotations

import json
import sys
import threading
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from runlens import Client, TransportError, concat_events
from runlens.cli import main
from tests.truth import dagster_truth

from .fault_proxy import FaultProxy
from .tcp_relay import TcpRelay

SLOW_STEPS = ("slow_start", "slow_middle", "slow_end")


def slow_config(seconds: float) -> dict:
    return {"ops": {op: {"config": {"seconds": seconds}} for op in SLOW_STEPS}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def lags(received: list[tuple[float, pd.DataFrame]]) -> list[float]:
    """Seconds from each event's timestamp to its batch being in the follower's hands."""
    return [at - ts.timestamp() for at, batch in received for ts in batch["timestamp"]]


def test_pushed_and_polled_followers_of_a_live_run_both_equal_the_stored_events(demo):
    client = Client(demo.url, progress=False)
    run_id = demo.dagster.launch("slow_job", slow_config(1.5))
    polled: list[tuple[float, pd.DataFrame]] = []
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            for batch in Client(demo.url, progress=False).follow(run_id, push=False, interval=1.0, timeout=300):
                polled.append((time.time(), batch))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    pushed = [(time.time(), batch) for batch in client.follow(run_id, timeout=300)]
    poller.join(300)
    assert not poller.is_alive() and not errors, errors
    status = demo.dagster.wait(run_id, timeout=120)
    stored = client.events(run_id)
    truth = dagster_truth(demo.dagster.home, run_id)

    assert {b.attrs["transport"] for _, b in pushed} == {"websocket"}
    assert {b.attrs["transport"] for _, b in polled} == {"polling"}
    assert len(stored) == truth["n_events"]
    for batches in (pushed, polled):
        frame = concat_events(b for _, b in batches)
        pd.testing.assert_frame_equal(frame, stored)
        assert batches[-1][1].attrs["cursor"] == stored.attrs["cursor"]
        assert batches[-1][1].attrs["status"] == status == "SUCCESS"
    # Pushed as it ran: many batches, the first long before the run's end.
    assert len(pushed) >= 10
    assert "RUN_SUCCESS" not in set(pushed[0][1]["event_type"].dropna().astype(str))
    push_lags, poll_lags = lags(pushed[1:]), lags(polled[1:])
    print(f"\nfollow latency over {len(stored)} events: push p50 {percentile(push_lags, 0.5):.3f} s "
          f"p95 {percentile(push_lags, 0.95):.3f} s ({len(pushed)} batches); polling (interval 1 s) "
          f"p50 {percentile(poll_lags, 0.5):.3f} s p95 {percentile(poll_lags, 0.95):.3f} s ({len(polled)} batches)",
          file=sys.stderr)


def test_a_proxy_that_refuses_websockets_is_detected_once_and_followed_by_polling(demo, client):
    run_id = demo.runs["etl"]
    stored = client.events(run_id)
    with FaultProxy(demo.base_url) as proxy:
        through = Client(proxy.url, progress=False, backoff=0.05)
        started = time.monotonic()
        batches = list(through.follow(run_id, interval=0.5))
        took = time.monotonic() - started
        assert {b.attrs["transport"] for b in batches} == {"polling"}
        pd.testing.assert_frame_equal(concat_events(batches), stored)
        # The proxy strips the upgrade: the webserver answers the GET as a plain request.
        upgrades = [s for s in proxy.seen if s.method == "GET" and s.path.endswith("/graphql")]
        assert len(upgrades) == 1 and "upgrade" not in {k.lower() for k in upgrades[0].headers if k != "Upgrade"}
        # Found out once per client: the second follow polls without trying again.
        again = list(through.follow(run_id, interval=0.5))
        pd.testing.assert_frame_equal(concat_events(again), stored)
        assert len([s for s in proxy.seen if s.method == "GET" and s.path.endswith("/graphql")]) == 1
        with pytest.raises(TransportError, match="websocket upgrade"):
            list(through.follow(run_id, push=True))
    print(f"\nfallback to polling through a proxy without websockets: {took:.2f} s for {len(stored)} events",
          file=sys.stderr)


def test_a_websocket_cut_mid_run_resumes_from_its_cursor_without_gap_or_duplicate(demo):
    run_id = demo.dagster.launch("slow_job", slow_config(1.5))
    with TcpRelay(demo.base_url) as relay:
        client = Client(relay.url, progress=False, backoff=0.05)
        batches = []
        for batch in client.follow(run_id, timeout=300):
            batches.append(batch)
            if len(batches) in (3, 8):
                assert relay.cut() >= 1  # the websocket (and any idle HTTP connection) is gone
    demo.dagster.wait(run_id, timeout=120)
    stored = Client(demo.url, progress=False).events(run_id)
    pd.testing.assert_frame_equal(concat_events(batches), stored)
    assert {b.attrs["transport"] for b in batches} == {"websocket"}
    # One websocket per cut and the first: each reconnect resumed from the last cursor.
    assert relay.cuts == 2 and relay.websockets == 3
    assert len(stored) == dagster_truth(demo.dagster.home, run_id)["n_events"]


def tail(demo, run_id: str, *args: str):
    return CliRunner().invoke(main, ["run-events", "tail", run_id, *args, "--url", demo.base_url])


def test_tail_prints_a_live_run_as_run_events_get_does_and_exits_0_when_it_succeeds(demo, client):
    run_id = demo.dagster.launch("slow_job", slow_config(1.0))
    result = tail(demo, run_id, "--json", "--timeout", "300")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    demo.dagster.wait(run_id, timeout=120)
    get = CliRunner().invoke(main, ["run-events", "get", run_id, "--json", "--limit", "100000", "--url", demo.base_url])
    assert lines == json.loads(get.stdout)["events"]
    assert len(lines) == dagster_truth(demo.dagster.home, run_id)["n_events"]
    # Filters as run-events get's: the text rows of the step events of slow_middle.
    text = tail(demo, run_id, "--step", "middle", "--type", "STEP_START,STEP_SUCCESS")
    assert text.exit_code == 0, text.output
    rows = text.stdout.splitlines()[2:]
    assert [r.split()[2] for r in rows] == ["STEP_START", "STEP_SUCCESS"] and all("slow_middle" in r for r in rows)
    assert "ended: SUCCESS" in text.stderr


def test_tail_exits_6_for_a_failed_run_and_7_for_one_canceled_while_tailed(demo):
    failed = tail(demo, demo.runs["failing"], "--level", "ERROR")
    assert failed.exit_code == 6, failed.output
    assert "STEP_FAILURE" in failed.stdout and "RUN_FAILURE" in failed.stdout

    run_id = demo.dagster.launch("slow_job", slow_config(30.0))

    def cancel() -> None:
        demo.dagster.wait_for_event(run_id, "STEP_START", timeout=120)
        demo.dagster.terminate(run_id)

    canceler = threading.Thread(target=cancel)
    canceler.start()
    canceled = tail(demo, run_id, "--json", "--timeout", "300")
    canceler.join(60)
    assert canceled.exit_code == 7, canceled.output
    types = [json.loads(line)["eventType"] for line in canceled.stdout.splitlines()]
    assert "STEP_START" in types and "RUN_CANCELED" in types


def test_tail_of_a_run_that_never_starts_ends_at_the_timeout_with_5(demo):
    started = time.monotonic()
    result = tail(demo, demo.runs["not_started"], "--timeout", "3")
    took = time.monotonic() - started
    assert result.exit_code == 5 and result.stdout == ""
    assert "has not ended after 3 s (status NOT_STARTED)" in result.stderr
    assert 3 <= took < 30
    as_json = tail(demo, demo.runs["queued"], "--timeout", "2", "--json")
    assert as_json.exit_code == 5
    error = json.loads(as_json.stderr)
    assert error["code"] == "TIMEOUT" and error["run_id"] == demo.runs["queued"] and "QUEUED" in error["error"]


def test_the_timeline_widget_follows_a_log_storm_pushed_with_few_redraws(demo, client):
    from runlens.widgets import timeline

    # 1500 lines: Dagster stores about 15 a second on a busy 2-core machine, each pushed on its own.
    run_id = demo.dagster.launch("log_storm_job", {"ops": {"storm": {"config": {"n": 1500}}}})
    live = timeline(run_id, client=Client(demo.url, progress=False), follow=True)
    try:
        assert live.wait(timeout=600), "the widget did not see the run end"
        assert live.error is None, live.error
        demo.dagster.wait(run_id, timeout=120)
        stored = client.events(run_id)
        pd.testing.assert_frame_equal(live.events, stored, check_categorical=False)
        assert live.transport == "websocket" and "over a websocket" in live.status_bar.value
        seconds = (live.batches[-1]["received"] - live.batches[0]["received"]).total_seconds()
        # Redrawn at most about twice a second (plus the first and the last), however many batches came.
        assert live.redraws <= 3 + 2 * seconds + 1 and len(live.batches) > live.redraws
        print(f"\nlog storm: {len(stored)} events in {len(live.batches)} batches over {seconds:.1f} s, "
              f"{live.redraws} redraws", file=sys.stderr)
    finally:
        live.close()


def test_an_idle_run_costs_no_request_when_pushed_and_two_a_second_when_polled(demo):
    from runlens.config import resolve
    from runlens.transport import Transport

    class Counting(Transport):
        def send(self, payload):
            self.sent.append(payload["query"].split("(")[0].split()[-1])
            return super().send(payload)

    def counted() -> tuple[Client, list[str]]:
        transport = Counting(resolve(demo.url))
        transport.sent = []
        return Client(transport=transport, progress=False), transport.sent

    run_id = demo.runs["queued"]  # held in the queue: nothing happens to it, for good
    (pushed, push_sent), (polled, poll_sent) = counted(), counted()
    results: dict[str, list] = {}
    poller = threading.Thread(target=lambda: results.update(
        polled=list(polled.follow(run_id, push=False, interval=1.0, timeout=8))))
    poller.start()
    results["pushed"] = list(pushed.follow(run_id, timeout=8))
    poller.join(60)
    stored = Client(demo.url, progress=False).events(run_id)
    for name in ("pushed", "polled"):
        pd.testing.assert_frame_equal(concat_events(results[name]), stored)
    # Pushed: the status once at the start, then nothing for 8 s; polled: events and status every second.
    assert push_sent == ["RunlensRunStatus"]
    assert len(poll_sent) >= 2 * 6 and set(poll_sent) == {"RunlensEvents", "RunlensRunStatus"}
    print(f"\nidle run followed 8 s: push sent {len(push_sent)} request(s), polling (interval 1 s) "
          f"{len(poll_sent)}", file=sys.stderr)
