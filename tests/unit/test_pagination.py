"""Pagination over a fake Dagster that caps pages at 1000, like the real one.

The fake answers through the public seam, ``Client(transport=MockTransport(handler))``:
every answer is read by runlens as a server's would be.
"""

from __future__ import annotations

import threading

import pytest

import runlens
from runlens import errors
from tests.builders import make_events

from .fake_dagster import FakeDagster, FakeDagsters


def serve(n_events: int) -> FakeDagster:
    return FakeDagster(make_events(n_events))


def client(fake, **options) -> runlens.Client:
    return runlens.Client(transport=fake.transport(), progress=options.pop("progress", False), **options)


@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001, 2500, 3000])
def test_every_event_in_storage_order(n):
    fake = serve(n)
    events = client(fake).events("run-1")
    assert len(events) == n
    assert events["seq"].tolist() == list(range(n))
    assert events["message"].tolist() == [e["message"] for e in fake.events]
    # a multiple of the page size ends with one empty page; no request is wasted otherwise
    assert len(fake.requests) == n // 1000 + 1
    assert events.attrs["complete"] is True and events.attrs["run_ids"] == ["run-1"]
    assert events.attrs["has_more"] is False


def test_limit_without_filter_stops_fetching_early_and_says_more_exist():
    fake = serve(5000)
    events = client(fake).events("run-1", limit=1500)
    assert len(events) == 1500 and events["seq"].iloc[-1] == 1499
    # the pages end at the limit; one event more tells that the log goes on
    assert [r["variables"]["limit"] for r in fake.requests] == [1000, 500, 1]
    assert events.attrs["has_more"] is True and events.attrs["complete"] is False
    rest = client(fake).events("run-1", after_cursor=events.attrs["cursor"])
    assert rest["message"].tolist() == [e["message"] for e in fake.events[1500:]]


@pytest.mark.parametrize("n, limit, more", [(100, 100, False), (101, 100, True), (99, 100, False),
                                            (1000, 1000, False), (1001, 1000, True), (2000, 1000, True)])
def test_has_more_tells_whether_the_limit_cut_the_result(n, limit, more):
    events = client(serve(n)).events("run-1", limit=limit)
    assert len(events) == min(n, limit)
    assert events.attrs["has_more"] is more and events.attrs["complete"] is (not more)


def test_filter_then_limit_scans_past_pages_until_enough_matches():
    events = make_events(3500)
    # The only matches lie past the first three pages: the scan must go on to find them.
    for i in (3100, 3200, 3300, 3400):
        events[i] = {**events[i], "eventType": "STEP_FAILURE", "level": "ERROR"}
    fake = FakeDagster(events)
    found = client(fake).events("run-1", types="STEP_FAILURE", limit=3)
    assert found["seq"].tolist() == [3100, 3200, 3300]
    assert found.attrs["has_more"] is True and found.attrs["complete"] is False
    rest = client(fake).events("run-1", types="STEP_FAILURE", after_cursor=found.attrs["cursor"])
    assert rest["message"].tolist() == [events[3400]["message"]]


@pytest.mark.parametrize("limit, more", [(3, True), (4, False), (5, False)])
def test_a_filtered_limit_says_whether_more_match(limit, more):
    events = make_events(2500)
    for i in (10, 1500, 1999, 2400):
        events[i] = {**events[i], "eventType": "STEP_FAILURE"}
    found = client(FakeDagster(events)).events("run-1", types="STEP_FAILURE", limit=limit)
    assert found["seq"].tolist() == [10, 1500, 1999, 2400][:limit]
    assert found.attrs["has_more"] is more and found.attrs["complete"] is (not more)


def test_a_match_just_past_the_limit_on_the_next_page_keeps_the_cursor_before_it():
    events = make_events(2500)
    for i in (998, 999, 1000):
        events[i] = {**events[i], "eventType": "STEP_FAILURE"}
    fake = FakeDagster(events)
    first = client(fake).events("run-1", types="STEP_FAILURE", limit=2)
    assert first["seq"].tolist() == [998, 999] and first.attrs["has_more"] is True
    rest = client(fake).events("run-1", types="STEP_FAILURE", after_cursor=first.attrs["cursor"])
    assert rest["message"].tolist() == [events[1000]["message"]]


def test_rare_match_at_the_end_is_found_with_limit_1():
    fake = FakeDagster(make_events(4321))
    fake.events[-1] = {**fake.events[-1], "eventType": "RUN_SUCCESS", "stepKey": None}
    events = client(fake).events("run-1", types="RUN_SUCCESS", limit=1)
    assert events["seq"].tolist() == [4320]
    assert events.attrs["has_more"] is False


def test_iter_event_pages_resumes_from_a_cursor():
    c = client(serve(2500))
    pages = list(c.iter_event_pages("run-1"))
    assert [len(p) for p in pages] == [1000, 1000, 500]
    assert [p.start_seq for p in pages] == [0, 1000, 2000]
    assert pages[1].frame()["seq"].tolist() == list(range(1000, 2000))
    resumed = list(c.iter_event_pages("run-1", after_cursor=pages[0].cursor))
    assert sum(len(p) for p in resumed) == 1500
    assert resumed[0].events[0] == pages[1].events[0]


def test_pages_of_both_decoders_are_the_same_page():
    from runlens.event_decoder import decode_events_page
    from runlens.models import EventPage

    fake = serve(5)
    typed = next(client(fake).iter_event_pages("run-1"))
    body = fake.handle({"query": "logsForRun", "variables": {"runId": "run-1", "limit": 5}})
    general = EventPage("run-1", events=body["data"]["logsForRun"]["events"], cursor=typed.cursor,
                        has_more=typed.has_more)
    assert isinstance(typed, EventPage) and typed.events == general.events == fake.events
    assert typed.frame().equals(general.frame())
    assert decode_events_page(b"not json", "run-1") is None


def test_error_mid_pagination_says_how_far_it_got():
    fake = FakeDagster(make_events(2500))
    calls = {"n": 0}

    def flaky(request):
        calls["n"] += 1
        if calls["n"] >= 2:
            return 400, {"data": None, "errors": [{"message": "boom"}]}
        return fake.handle(request)

    with pytest.raises(errors.GraphQLError) as info:
        runlens.Client(transport=runlens.MockTransport(flaky), progress=False).events("run-1")
    assert info.value.events_fetched == 1000 and info.value.cursor is not None
    assert "after_cursor" in str(info.value)


def test_run_not_found_on_events_gives_no_resume_advice():
    with pytest.raises(errors.RunNotFound) as info:
        client(serve(10)).events("other-run")
    # a missing run is not a failed fetch: nothing to resume
    assert "resume" not in str(info.value) and "iter_event_pages" not in str(info.value)
    assert "other-run" in str(info.value)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True])
def test_limit_must_be_a_whole_number_from_one(bad):
    with pytest.raises(errors.InvalidArgument, match="limit"):
        client(serve(1)).events("run-1", limit=bad)


@pytest.mark.parametrize("bad", [0, 5000, "100"])
def test_page_size_is_checked(bad):
    with pytest.raises(errors.InvalidArgument, match="page_size"):
        next(client(serve(1)).iter_event_pages("run-1", page_size=bad))


def test_progress_bar_on_multi_page_fetch_only(capsys):
    fake = serve(2500)
    client(fake, progress=True).events("run-1")
    assert "events" in capsys.readouterr().err
    client(fake, progress=False).events("run-1")
    assert capsys.readouterr().err == ""


def test_no_progress_bar_for_a_single_page(capsys):
    client(serve(10), progress=True).events("run-1")
    assert capsys.readouterr().err == ""


def test_module_level_shortcuts_take_client_options():
    fake = serve(5)
    assert len(runlens.events("run-1", transport=fake.transport())) == 5
    assert runlens.run("run-1", transport=fake.transport()).id == "run-1"


def test_events_many_keeps_run_order_dtypes_and_attrs():
    fakes = FakeDagsters(FakeDagster(make_events(1500), run_id="a"), FakeDagster(make_events(10), run_id="b"))
    both = client(fakes).events_many(["b", "a"], max_workers=2)
    assert both["run_id"].astype(str).tolist() == ["b"] * 10 + ["a"] * 1500
    assert both.attrs["run_ids"] == ["b", "a"] and both.attrs["complete"] is True
    assert both.attrs["skipped"] == {} and both.attrs["has_more"] is False
    assert set(both.attrs["cursors"]) == {"a", "b"}
    assert str(both["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert isinstance(both["event_type"].dtype, __import__("pandas").CategoricalDtype)


def test_events_many_skips_runs_not_found_when_asked():
    fakes = FakeDagsters(FakeDagster(make_events(20), run_id="a"), FakeDagster(make_events(5), run_id="b"))
    found = client(fakes).events_many(["a", "gone", "b", "  "], errors="skip")
    assert found["run_id"].astype(str).tolist() == ["a"] * 20 + ["b"] * 5
    assert found.attrs["run_ids"] == ["a", "b"]
    assert set(found.attrs["skipped"]) == {"gone", "  "}
    assert "not found" in found.attrs["skipped"]["gone"]
    with pytest.raises(errors.RunNotFound):
        client(fakes).events_many(["a", "gone"])  # errors="raise" is the default


def test_events_many_with_every_run_skipped_is_an_empty_typed_frame():
    found = client(FakeDagsters()).events_many(["x", "y"], errors="skip")
    assert len(found) == 0 and list(found.attrs["skipped"]) == ["x", "y"] and found.attrs["run_ids"] == []
    assert list(found.columns) == list(runlens.frames.EVENT_COLUMNS)


@pytest.mark.parametrize("bad", ["ignore", None, "Skip"])
def test_events_many_errors_must_be_raise_or_skip(bad):
    with pytest.raises(errors.InvalidArgument, match="raise.*skip"):
        client(FakeDagsters()).events_many(["a"], errors=bad)


def test_cursor_of_a_filtered_limited_fetch_resumes_without_losing_matches():
    fake = serve(2500)
    c = client(fake)
    first = c.events("run-1", step="step_1", limit=5)
    rest = c.events("run-1", step="step_1", after_cursor=first.attrs["cursor"])
    everything = c.events("run-1", step="step_1")
    assert first["message"].tolist() + rest["message"].tolist() == everything["message"].tolist()
    assert first.attrs["complete"] is False and first.attrs["filtered"] is True and first.attrs["has_more"] is True
    # first: a page, one small page to place the cursor, and the prefetch of the next
    # page unless it was cancelled before it was sent; then 3 + 3.
    small = [r["variables"] for r in fake.requests if r["variables"]["limit"] < 1000]
    assert len(small) == 1 and small[0]["afterCursor"] is None
    assert len(fake.requests) in (2 + 3 + 3, 3 + 3 + 3)


def test_events_many_raises_at_once_when_one_run_fails():
    big = FakeDagster(make_events(5000), run_id="big")
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def handler(request):
        if request["variables"]["runId"] != "big":
            started.wait(10)  # fail only once "big" is being fetched
            return big.handle(request)  # RunNotFoundError
        started.set()
        release.wait(10)  # "big" is slow until the test lets it go
        finished.set()
        return big.handle(request)

    c = runlens.Client(transport=runlens.MockTransport(handler), progress=False)
    try:
        with pytest.raises(errors.RunNotFound):
            c.events_many(["missing", "big"], max_workers=2)
        assert not finished.is_set()  # raised while "big" was still being fetched
    finally:
        release.set()
        # The abandoned fetch finishes in the background: let it, before another test runs.
        for thread in threading.enumerate():
            if thread.name.startswith(("runlens-run", "runlens-prefetch")):
                thread.join(10)
