"""Pagination over a fake Dagster that caps pages at 1000, like the real one."""

from __future__ import annotations

import pytest
import responses

import runlens
from runlens import errors

from .fake_dagster import FakeDagster, make_events

URL = "http://dagster.test:3000/graphql"


def serve(n_events: int) -> FakeDagster:
    fake = FakeDagster(make_events(n_events))
    responses.add_callback(responses.POST, URL, callback=fake)
    return fake


def client():
    return runlens.Client(URL, max_retries=1, backoff=0, progress=False)


@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001, 2500, 3000])
@responses.activate
def test_every_event_in_storage_order(n):
    fake = serve(n)
    events = client().events("run-1")
    assert len(events) == n
    assert events["seq"].tolist() == list(range(n))
    assert events["message"].tolist() == [e["message"] for e in fake.events]
    # a multiple of the page size ends with one empty page; no request is wasted otherwise
    assert len(fake.requests) == n // 1000 + 1
    assert events.attrs["complete"] is True and events.attrs["run_ids"] == ["run-1"]


@responses.activate
def test_limit_without_filter_stops_fetching_early():
    fake = serve(5000)
    events = client().events("run-1", limit=1500)
    assert len(events) == 1500 and events["seq"].iloc[-1] == 1499
    assert [r["variables"]["limit"] for r in fake.requests] == [1000, 500]
    assert events.attrs["complete"] is False


@responses.activate
def test_filter_then_limit_scans_until_enough_matches():
    fake = serve(5000)
    # only the last events are log lines at step_4 past seq 4000
    events = client().events("run-1", types="STEP_START", step="step_3", limit=3)
    expected = [i for i, e in enumerate(fake.events) if e["eventType"] == "STEP_START" and e["stepKey"] == "step_3"]
    assert events["seq"].tolist() == expected[:3]


@responses.activate
def test_rare_match_at_the_end_is_found_with_limit_1():
    fake = FakeDagster(make_events(4321))
    fake.events[-1] = {**fake.events[-1], "eventType": "RUN_SUCCESS", "stepKey": None}
    responses.add_callback(responses.POST, URL, callback=fake)
    events = client().events("run-1", types="RUN_SUCCESS", limit=1)
    assert events["seq"].tolist() == [4320]


@responses.activate
def test_iter_event_pages_resumes_from_a_cursor():
    serve(2500)
    c = client()
    pages = list(c.iter_event_pages("run-1"))
    assert [len(p) for p in pages] == [1000, 1000, 500]
    resumed = list(c.iter_event_pages("run-1", after_cursor=pages[0].cursor))
    assert sum(len(p) for p in resumed) == 1500
    assert resumed[0].events[0] == pages[1].events[0]


@responses.activate
def test_error_mid_pagination_says_how_far_it_got():
    fake = FakeDagster(make_events(2500))
    calls = {"n": 0}

    def flaky(request):
        calls["n"] += 1
        if calls["n"] >= 2:
            return 400, {}, '{"data": null, "errors": [{"message": "boom"}]}'
        return fake(request)

    responses.add_callback(responses.POST, URL, callback=flaky)
    with pytest.raises(errors.GraphQLError) as info:
        client().events("run-1")
    assert info.value.events_fetched == 1000 and info.value.cursor is not None
    assert "after_cursor" in str(info.value)


@responses.activate
def test_run_not_found_on_events():
    serve(10)
    with pytest.raises(errors.RunNotFound):
        client().events("other-run")


@pytest.mark.parametrize("bad", [0, -1])
def test_limit_below_one_is_invalid(bad):
    with pytest.raises(errors.InvalidArgument):
        client().events("run-1", limit=bad)


def test_page_size_is_checked():
    with pytest.raises(errors.InvalidArgument):
        next(client().iter_event_pages("run-1", page_size=5000))


@responses.activate
def test_progress_bar_on_multi_page_fetch_only(capsys):
    serve(2500)
    runlens.Client(URL, progress=True, backoff=0).events("run-1")
    assert "events" in capsys.readouterr().err
    runlens.Client(URL, progress=False, backoff=0).events("run-1")
    assert capsys.readouterr().err == ""


@responses.activate
def test_no_progress_bar_for_a_single_page(capsys):
    serve(10)
    runlens.Client(URL, progress=True, backoff=0).events("run-1")
    assert capsys.readouterr().err == ""


@responses.activate
def test_module_level_shortcuts_use_a_configured_client(monkeypatch):
    serve(5)
    monkeypatch.setenv("RUNLENS_URL", "http://dagster.test:3000")
    assert len(runlens.events("run-1")) == 5
    assert runlens.run("run-1").id == "run-1"


@responses.activate
def test_events_many_keeps_run_order_and_dtypes():
    fake_a = FakeDagster(make_events(1500), run_id="a")
    fake_b = FakeDagster(make_events(10), run_id="b")

    def route(request):
        import json

        run_id = json.loads(request.body)["variables"]["runId"]
        return (fake_a if run_id == "a" else fake_b)(request)

    responses.add_callback(responses.POST, URL, callback=route)
    both = client().events_many(["b", "a"], max_workers=2)
    assert both["run_id"].astype(str).tolist() == ["b"] * 10 + ["a"] * 1500
    assert both.attrs["run_ids"] == ["b", "a"] and both.attrs["complete"] is True
    assert str(both["timestamp"].dtype) == "datetime64[ms, UTC]"


@responses.activate
def test_cursor_of_a_filtered_limited_fetch_resumes_without_losing_matches():
    fake = serve(2500)
    c = client()
    first = c.events("run-1", step="step_1", limit=5)
    rest = c.events("run-1", step="step_1", after_cursor=first.attrs["cursor"])
    everything = c.events("run-1", step="step_1")
    assert first["message"].tolist() + rest["message"].tolist() == everything["message"].tolist()
    assert first.attrs["complete"] is False and first.attrs["filtered"] is True
    # first: a page, one small page to place the cursor, and the prefetch of the next
    # page unless it was cancelled before it was sent; then 3 + 3.
    small = [r["variables"] for r in fake.requests if r["variables"]["limit"] < 1000]
    assert len(small) == 1 and small[0]["afterCursor"] is None
    assert len(fake.requests) in (2 + 3 + 3, 3 + 3 + 3)


@responses.activate
def test_events_many_raises_at_once_when_one_run_fails():
    import time

    fake = FakeDagster(make_events(5000), run_id="big")

    def slow(request):
        time.sleep(0.2)
        return fake(request)

    responses.add_callback(responses.POST, URL, callback=slow)
    started = time.monotonic()
    with pytest.raises(errors.RunNotFound):
        client().events_many(["missing", "big"], max_workers=2)
    assert time.monotonic() - started < 0.8  # not after all five pages of "big"
    # The abandoned fetch finishes in the background: let it, before another test's mocks.
    import threading

    for thread in threading.enumerate():
        if thread.name.startswith(("runlens-run", "runlens-prefetch")):
            thread.join(10)
