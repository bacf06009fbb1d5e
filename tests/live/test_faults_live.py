"""Faults between runlens and a real Dagster: retries heal them, or the error says how far
the fetch got and the fetch resumes from there.

Every test goes through :mod:`tests.live.fault_proxy` in front of the live demo
webserver, and compares with a fault-free fetch of the same run: same rows, same order,
no duplicates, no gaps.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
from click.testing import CliRunner

import runlens
import runlens.cli
import runlens.client
from runlens import errors
from tests.live.fault_proxy import (
    DROP,
    RESET,
    TRUNCATE,
    FaultProxy,
    always,
    cycle,
    every,
    from_request,
    slow,
    status,
)

TIMEOUT = 1.0  # the client's read timeout; a "slow" answer comes later than this
SLOW = slow(TIMEOUT + 0.6)
RETRIES = 4

HEALABLE = {
    "reset": RESET,
    "drop": DROP,
    "502": status(502, "bad gateway"),
    "503": status(503, "unavailable"),
    "504": status(504, "gateway timeout"),
    "429": status(429, "slow down", retry_after=0),
    "slow": SLOW,
    "truncate": TRUNCATE,
    # urllib3 raised InvalidHeader on these (a raw requests exception, no retry).
    "503-garbage-retry-after": status(503, retry_after="soon"),
    "429-http-date-retry-after": status(429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
}


def fast_client(url: str, **kw) -> runlens.Client:
    kw.setdefault("max_retries", RETRIES)
    return runlens.Client(url, backoff=0.05, timeout=TIMEOUT, progress=False, **kw)


def flat(pages) -> list[dict]:
    return [event for page in pages for event in page.events]


@pytest.fixture(scope="module")
def run_id(demo) -> str:
    return demo.runs["etl"]


@pytest.fixture(scope="module")
def baseline(demo, run_id) -> list[runlens.EventPage]:
    """The run's pages of 100, fetched straight from the webserver."""
    pages = list(runlens.Client(demo.url, progress=False).iter_event_pages(run_id, page_size=100))
    assert len(pages) >= 4, "the etl run should span several pages of 100"
    return pages


@pytest.fixture
def proxy(demo):
    with FaultProxy(demo.base_url, lifetime=90) as p:
        yield p


def test_the_proxy_alone_changes_nothing(proxy, run_id, baseline):
    pages = list(fast_client(proxy.url).iter_event_pages(run_id, page_size=100))
    assert flat(pages) == flat(baseline)
    assert [p.cursor for p in pages] == [p.cursor for p in baseline]
    assert proxy.faults_injected() == 0 and len(proxy.graphql_requests()) == len(baseline)


@pytest.mark.parametrize("fault", HEALABLE.values(), ids=HEALABLE.keys())
def test_every_third_request_faulted_still_gives_exactly_the_same_pages(proxy, run_id, baseline, fault):
    proxy.set_schedule(every(3, fault))
    pages = list(fast_client(proxy.url).iter_event_pages(run_id, page_size=100))
    assert proxy.faults_injected() >= 2
    assert flat(pages) == flat(baseline)  # same rows, same order: no duplicate, no gap
    assert [p.cursor for p in pages] == [p.cursor for p in baseline]


def test_mixed_faults_through_events_with_small_pages(proxy, demo, run_id, monkeypatch):
    expected = runlens.Client(demo.url, progress=False).events(run_id)
    # events() has no page-size knob: shrink Dagster's cap to get many small pages.
    monkeypatch.setattr(runlens.client, "MAX_PAGE_SIZE", 50)
    proxy.set_schedule(cycle(list(HEALABLE.values()), every=2))
    got = fast_client(proxy.url).events(run_id)
    assert proxy.faults_injected() >= 5
    assert len(proxy.graphql_requests()) >= len(expected) // 50
    pd.testing.assert_frame_equal(got, expected)
    assert got["seq"].tolist() == list(range(len(expected)))
    assert got.attrs["complete"] is True and got.attrs["cursor"] == expected.attrs["cursor"]


EXHAUSTING = {
    "503": (status(503), errors.TransportError, "answered HTTP 503 after 4 retries"),
    "429": (status(429, retry_after=0), errors.RateLimited, "rate-limiting requests (HTTP 429)"),
    "reset": (RESET, errors.TransportError, "closed the connection without a complete answer (connection reset"),
    "drop": (DROP, errors.TransportError, "closed the connection without a complete answer (closed without"),
    "slow": (SLOW, errors.TransportError, f"did not answer within {TIMEOUT:g} s (5 attempts)"),
    "truncate": (TRUNCATE, errors.TransportError, "kept sending incomplete answers"),
}


@pytest.mark.parametrize("fault, error, says", EXHAUSTING.values(), ids=EXHAUSTING.keys())
def test_exhausted_retries_say_how_far_the_fetch_got_and_it_resumes(proxy, run_id, baseline, fault, error, says):
    # Pages 1 and 2 arrive (the second by prefetch); page 3 fails on every attempt.
    proxy.set_schedule(from_request(3, fault))
    client = fast_client(proxy.url)
    received = []
    with pytest.raises(error) as info:
        for page in client.iter_event_pages(run_id, page_size=100):
            received.append(page)
    err = info.value
    assert len(proxy.graphql_requests()) == 2 + RETRIES + 1
    assert len(received) == 2 and err.events_fetched == 200
    assert err.cursor == baseline[1].cursor == received[-1].cursor
    message = str(err)
    assert says in message, message
    assert "fetched 200 events before the failure" in message and err.cursor in message
    assert err.exit_code == 5 and err.run_id == run_id

    proxy.set_schedule(None)
    rest = list(client.iter_event_pages(run_id, page_size=100, after_cursor=err.cursor))
    assert flat(received) + flat(rest) == flat(baseline)  # exactly the rest
    assert [p.cursor for p in rest] == [p.cursor for p in baseline[2:]]


def test_a_failure_on_the_first_page_resumes_from_the_start(proxy, run_id, baseline):
    proxy.set_schedule(from_request(1, status(502), until=RETRIES + 1))
    client = fast_client(proxy.url)
    with pytest.raises(errors.TransportError, match="the start of the log") as info:
        list(client.iter_event_pages(run_id, page_size=100))
    assert info.value.events_fetched == 0 and info.value.cursor is None
    assert flat(client.iter_event_pages(run_id, page_size=100, after_cursor=info.value.cursor)) == flat(baseline)


def test_events_failing_midway_resumes_with_events_after_cursor(proxy, demo, run_id, monkeypatch):
    expected = runlens.Client(demo.url, progress=False).events(run_id)
    monkeypatch.setattr(runlens.client, "MAX_PAGE_SIZE", 100)
    proxy.set_schedule(from_request(4, status(504), until=4 + RETRIES))
    client = fast_client(proxy.url)
    with pytest.raises(errors.TransportError) as info:
        client.events(run_id)
    err = info.value
    assert err.events_fetched == 300 and err.cursor
    head = client.events(run_id, limit=err.events_fetched)
    rest = client.events(run_id, after_cursor=err.cursor)
    assert len(head) + len(rest) == len(expected)
    for column in ("message", "event_type", "timestamp", "step_key"):
        assert head[column].tolist() + rest[column].tolist() == expected[column].tolist(), column


def test_retry_after_is_honoured(proxy, run_id, baseline):
    proxy.set_schedule(every(3, status(429, retry_after=1), limit=1))
    started = time.monotonic()
    pages = list(fast_client(proxy.url).iter_event_pages(run_id, page_size=100))
    assert time.monotonic() - started >= 1.0
    assert proxy.faults_injected() == 1 and flat(pages) == flat(baseline)


@pytest.mark.parametrize("code, error", [(429, errors.RateLimited), (503, errors.TransportError)])
def test_a_retry_after_of_an_hour_fails_at_once_saying_when_to_come_back(proxy, run_id, code, error):
    # Before: urllib3 honours Retry-After up to 6 hours, so this slept 3600 s per retry.
    proxy.set_schedule(always(status(code, retry_after=3600)))
    started = time.monotonic()
    with pytest.raises(error, match="3600 s") as info:
        fast_client(proxy.url).run(run_id)
    assert time.monotonic() - started < 5
    assert len(proxy.graphql_requests()) == 1  # no retry: waiting is the caller's decision
    assert info.value.exit_code == 5


@pytest.fixture
def quick_cli(monkeypatch):
    """The CLI's client with a short backoff, so exhausting retries takes a second, not seven."""
    monkeypatch.setattr(runlens.cli, "_client",
                        lambda url: runlens.Client(url, progress=False, backoff=0.05, timeout=TIMEOUT, max_retries=1))


@pytest.mark.parametrize("fault", [status(503), RESET, SLOW], ids=["503", "reset", "slow"])
def test_cli_exits_5_when_retries_are_exhausted(proxy, run_id, quick_cli, fault):
    proxy.set_schedule(always(fault))
    result = CliRunner().invoke(runlens.cli.main, ["run-events", "get", run_id, "--url", proxy.url])
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert proxy.url in result.stderr and "Traceback" not in result.output


def test_cli_output_through_faults_equals_a_fault_free_one(proxy, demo, run_id, quick_cli, monkeypatch):
    args = ["run-events", "get", run_id, "--json", "--limit", "100000"]
    direct = CliRunner().invoke(runlens.cli.main, [*args, "--url", demo.url])
    monkeypatch.setattr(runlens.client, "MAX_PAGE_SIZE", 100)
    proxy.set_schedule(cycle([TRUNCATE, RESET, status(502)], every=2))
    faulty = CliRunner().invoke(runlens.cli.main, [*args, "--url", proxy.url])
    assert direct.exit_code == faulty.exit_code == 0
    assert faulty.stdout == direct.stdout and proxy.faults_injected() >= 1


def test_the_proxy_is_bounded_and_stops_by_itself(demo):
    proxy = FaultProxy(demo.base_url, lifetime=1.5, max_requests=2).start()
    client = fast_client(proxy.url, max_retries=0)
    client.run_status(demo.runs["etl"])
    client.run_status(demo.runs["etl"])
    with pytest.raises(errors.TransportError):  # over budget: closed without an answer
        client.run_status(demo.runs["etl"])
    deadline = time.monotonic() + 5
    while proxy.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proxy.running
    # Its listening socket goes last: until it is closed the kernel may still accept a
    # connection into its backlog, then drop it ("closed the connection", seen in a CI run).
    # The proxy must have closed it within the same deadline.
    while time.monotonic() < deadline and _accepts(proxy.url):
        time.sleep(0.05)
    assert not _accepts(proxy.url)
    # A new client: the old one's pooled keep-alive connection may still be in the middle of
    # being reset by the stopping proxy (seen under load), which is another error than this one.
    with pytest.raises(errors.TransportError, match="cannot reach"):
        fast_client(proxy.url, max_retries=0).run_status(demo.runs["etl"])


def _accepts(url: str) -> bool:
    """Whether something accepts TCP connections at ``url``'s host and port."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False
