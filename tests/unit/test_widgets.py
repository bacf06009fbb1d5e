"""runlens.widgets on synthetic runs: controls drive the same filters as the CLI."""

from __future__ import annotations

import base64
import html
import json
import re
import threading

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from runlens.client import Client
from runlens.filters import filter_events
from runlens.frames import concat_events, runs_frame
from runlens.models import Run
from runlens.steps import step_durations
from runlens.transport import MockTransport
from runlens.trends import compare_step_durations
from runlens.widgets import RunsBrowser, Timeline, timeline
from tests.builders import T0, RunBuilder, cursor_for, etl_run, live_run, storage_id


@pytest.fixture(autouse=True)
def _no_figures_left():
    before = plt.get_fignums()
    yield
    # The widgets draw on figures pyplot never sees: none may be left behind.
    assert plt.get_fignums() == before
    plt.close("all")


@pytest.fixture
def events() -> pd.DataFrame:
    return etl_run().frame()


def table_seqs(html: str) -> list[int]:
    """The ``seq`` column of an events table rendered by the widget."""
    return [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", html)]


def png(widget: Timeline) -> bytes:
    (output,) = widget.plot.outputs
    return base64.b64decode(output["data"]["image/png"])


FILTERS = [
    {},
    {"types": ["STEP_START", "STEP_SUCCESS"]},
    {"step": "process"},
    {"step": "PROCESS[A"},
    {"levels": ["ERROR"]},
    {"levels": ["DEBUG", "INFO"], "step": "transform"},
    {"types": ["STEP_FAILURE", "RUN_FAILURE"], "levels": ["ERROR"]},
    {"types": ["LOADED_INPUT"], "step": "nothing-matches"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "none")
def test_table_shows_exactly_what_filter_events_keeps(events, filters):
    w = timeline(events)
    w.types.value = tuple(filters.get("types", ()))
    w.levels.value = tuple(filters.get("levels", ()))
    w.step.value = filters.get("step", "")
    expected = filter_events(events, **{k: v for k, v in filters.items()})
    assert len(w.filtered) == len(expected)
    assert w.filtered["seq"].tolist() == expected["seq"].tolist()
    assert table_seqs(w.table.value) == expected["seq"].tolist()
    if len(expected):
        assert f"{len(expected):,} " in w.table.value
    else:
        assert "no " in w.table.value


def test_table_is_capped_with_a_note(events):
    w = timeline(events, max_rows=7)
    assert table_seqs(w.table.value) == events["seq"].tolist()[:7]
    assert f"{len(events)} events; showing the first 7" in w.table.value
    w.types.value = ("STEP_START",)
    assert len(table_seqs(w.table.value)) == len(filter_events(events, types="STEP_START"))


def test_type_options_are_the_types_present_with_counts(events):
    w = timeline(events)
    counts = events["event_type"].value_counts()
    assert [v for _, v in w.types.options] == sorted(counts[counts > 0].index)
    labels = dict((v, label) for label, v in w.types.options)
    assert labels["STEP_START"] == f"STEP_START ({counts['STEP_START']})"
    assert list(w.levels.options) == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    steps = step_durations(events)
    assert [v for _, v in w.step_select.options] == [None, *steps["step_key"].astype(str)]


def test_step_filter_redraws_the_gantt_without_leaking_figures(events):
    w = timeline(events)
    assert w.redraws == 1
    first_png, first_figure = png(w), w.figure
    all_keys = [t.get_text() for t in w.figure.axes[0].get_yticklabels()]
    assert set(all_keys) == set(step_durations(events)["step_key"].astype(str))

    w.step.value = "process"
    assert w.redraws == 2
    assert png(w) != first_png
    assert w.figure is not first_figure and first_figure.axes == []  # the old one was cleared
    keys = [t.get_text() for t in w.figure.axes[0].get_yticklabels()]
    assert sorted(keys) == ["process[amer]", "process[apac]", "process[emea]"]

    for i in range(10):  # many redraws: still no pyplot figure (checked by the fixture)
        w.step.value = "x" if i % 2 else "t"
    assert w.redraws == 12
    w.step.value = "no-such-step"
    assert w.figure is None
    assert "no step matches 'no-such-step'" in w.plot.outputs[0]["data"]["text/plain"]


def gantt_data(widget: Timeline) -> dict:
    """The JSON of the hidden element a browser test reads the Gantt from."""
    return json.loads(html.unescape(re.search(r"data-gantt='([^']*)'", widget.gantt_data.value).group(1)))


def test_gantt_data_says_what_the_figure_shows(events):
    w = timeline(events)
    steps = step_durations(events)
    data = gantt_data(w)
    drawn = [p for p in w.figure.axes[0].patches if p.get_gid() == "attempt"]
    assert data["rows"] == [t.get_text() for t in w.figure.axes[0].get_yticklabels()]
    assert dict(zip(data["rows"], data["attempts"])) == dict(zip(steps["step_key"].astype(str),
                                                                  steps["attempt_spans"].map(len)))
    assert data["attempts"][data["rows"].index("transform")] == 2  # failed once, retried
    assert data["bars"] == len(drawn) == 7 and data["running"] == 0
    assert data["redraws"] == 1 and data["events"] == len(events)
    w.step.value = "process"
    assert gantt_data(w)["rows"] == ["process[emea]", "process[amer]", "process[apac]"]
    assert gantt_data(w)["redraws"] == 2
    w.step.value = "no-such-step"
    assert gantt_data(w)["rows"] == [] and gantt_data(w)["bars"] == 0


def test_gantt_data_counts_running_attempts():
    w = timeline(live_run().frame())
    data = gantt_data(w)
    running = step_durations(live_run().frame())["status"].astype(str).eq("IN_PROGRESS").sum()
    assert data["running"] == running >= 2


def test_widget_parts_carry_css_classes(events):
    w = timeline(events)
    assert "runlens-timeline" in w._dom_classes
    assert "runlens-gantt" in w.plot._dom_classes and "runlens-events" in w.table._dom_classes
    assert "runlens-types" in w.types._dom_classes and "runlens-step-select" in w.step_select._dom_classes
    # Timestamps and event types do not wrap in a browser; messages do.
    assert ".runlens-table td{white-space:nowrap" in w.table.value
    assert ".runlens-table td:nth-child(6){white-space:pre-wrap}" in w.table.value


def test_type_and_level_changes_only_update_the_table(events):
    w = timeline(events)
    w.types.value = ("STEP_START",)
    w.levels.value = ("DEBUG",)
    assert w.redraws == 1


def test_choosing_a_step_shows_its_events_and_its_error(events):
    w = timeline(events)
    w.step_select.value = "process[apac]"
    assert set(w.step_events["step_key"].astype(str)) == {"process[apac]"}
    assert len(w.step_events) == (events["step_key"] == "process[apac]").sum()
    (error,) = w.step_errors.itertuples()
    assert error.event_type == "STEP_FAILURE" and error.error_class == "DagsterExecutionStepExecutionError"
    assert "ValueError: bad region apac" in error.error_cause and "KeyError" in error.error_cause
    html = w.detail.value
    assert "Step process[apac]" in html and "FAILURE" in html
    assert "ValueError: bad region apac" in html and "KeyError" in html
    assert table_seqs(html) == w.step_events["seq"].tolist()
    # The Gantt marks the chosen step.
    assert w.redraws == 2
    ax = w.figure.axes[0]
    (band,) = [p for p in ax.patches if p.get_gid() == "selected_step"]
    bold = [t.get_text() for t in ax.get_yticklabels() if t.get_fontweight() == "bold"]
    assert bold == ["process[apac]"]
    w.step_select.value = None
    assert w.detail.value == "" and w.step_events.empty


def test_step_filter_is_a_literal_substring_like_the_cli(events):
    w = timeline(events)
    w.step.value = "process[a"  # brackets are literal, not a regular expression
    assert set(w.filtered["step_key"].astype(str)) == {"process[amer]", "process[apac]"}


def test_clear_button_resets_every_filter(events):
    w = timeline(events)
    w.types.value = ("STEP_START",)
    w.step.value = "extract"
    w.levels.value = ("DEBUG",)
    w.clear_button.click()
    assert w.filters == {"types": None, "step": None, "levels": None}
    assert len(w.filtered) == len(events)


def test_repr_and_done(events):
    w = timeline(events)
    assert w.done.is_set() and w.wait(0)
    w.step.value = "extract"
    text = repr(w)
    assert text.startswith("Timeline(run=run-a") and f"events={len(events)}" in text
    assert "'step': 'extract'" in text and "complete" in text


def test_one_run_per_timeline(events):
    from runlens.errors import InvalidArgument

    two = concat_events([events, etl_run("run-b").frame()])
    with pytest.raises(ValueError, match="one run"):
        timeline(two)
    with pytest.raises(InvalidArgument, match="run id or an events frame"):
        timeline(42)
    with pytest.raises(InvalidArgument, match="Timeline\\(\\) expects an events frame"):
        timeline(step_durations(events))


def test_empty_run_draws_a_message():
    w = Timeline(run_id="run-x")
    assert w.figure is None and "no step has started yet" in w.plot.outputs[0]["data"]["text/plain"]
    assert "no events" in w.table.value


# --------------------------------------------------------------------------- follow


class GrowingRun(Client):
    """A real Client over a run whose log grows by ``step`` events per poll.

    Only the network is replaced, through the public seam (``MockTransport``): it answers
    ``logsForRun`` with a JSON body of one page (decoded by runlens as any server's), and the run's
    status is set here, so the widget follows through :meth:`Client.follow` exactly as
    against a server. The run turns SUCCESS once every event but the last is visible;
    the last (the ENGINE_EVENT Dagster stores after the terminal event) appears one
    poll later.
    """

    def __init__(self, records: list[dict], run_id: str = "run-a", step: int = 7, page_size: int = 5):
        super().__init__(transport=MockTransport(self._answer, url="http://fake/graphql"), progress=False)
        self.records, self.run_id, self.step, self.page_size = records, run_id, step, page_size
        self.visible = min(step, len(records))
        self.cursors: list[str | None] = []
        self.status_calls = 0
        self.lock = threading.Lock()

    def _answer(self, payload):
        variables = payload["variables"]
        assert variables["runId"] == self.run_id
        cursor = variables["afterCursor"]
        with self.lock:
            self.cursors.append(cursor)
            visible = self.visible
        start = storage_id(cursor) + 1
        page = self.records[start : min(start + self.page_size, visible, start + variables["limit"])]
        next_cursor = cursor_for(start + len(page) - 1) if page else cursor
        return {"data": {"logsForRun": {"__typename": "EventConnection", "events": page, "cursor": next_cursor,
                                        "hasMore": len(page) == self.page_size}}}

    def run_status(self, run_id):
        self.status_calls += 1
        with self.lock:
            status = "SUCCESS" if self.visible >= len(self.records) - 1 else "STARTED"
            self.visible = min(len(self.records), self.visible + self.step)  # the next poll sees more
        return status


def test_follow_polls_from_the_last_cursor_until_the_end(events):
    records = etl_run().records
    fake = GrowingRun(records)
    w = Timeline(run_id="run-a", client=fake, follow=True, interval=0.01, grace=0.05, redraw_every=0)
    assert w.wait(30), "the follow thread did not finish"
    assert w.error is None
    assert not w.following and w.status == "SUCCESS" and w.transport == "polling"
    # Every event exactly once, seq continuous across batches, same frame as a one-shot build.
    assert w.events["seq"].tolist() == list(range(len(records)))
    pd.testing.assert_frame_equal(w.events.reset_index(drop=True), events.reset_index(drop=True),
                                  check_categorical=False)
    # No re-fetch: each poll starts where the previous one ended.
    assert fake.cursors[0] is None
    seen = [storage_id(c) for c in fake.cursors[1:]]
    assert seen == sorted(seen) and seen[-1] == len(records) - 1
    # The widget updated along the way, and kept batch records to measure its lag.
    assert len(w.batches) == -(-len(records) // fake.step) and w.redraws == len(w.batches) + 1
    assert sum(b["n"] for b in w.batches) == len(records)
    assert [b["first_seq"] for b in w.batches] == [0, *[b["last_seq"] + 1 for b in w.batches[:-1]]]
    assert table_seqs(w.table.value) == list(range(len(records)))
    assert w.events.attrs["cursor"] == cursor_for(len(records) - 1)
    assert "followed to the end" in w.status_bar.value


def test_redraws_while_following_are_throttled_and_the_last_batches_still_land(events):
    records = etl_run().records
    fake = GrowingRun(records, step=2)
    w = Timeline(run_id="run-a", client=fake, follow=True, interval=0.01, grace=0.05, redraw_every=60)
    assert w.wait(30) and w.error is None
    # Many batches, two redraws: the first batch's and the last flush's (a log storm cannot freeze it).
    assert len(w.batches) > 10 and w.redraws == 2 + 1
    pd.testing.assert_frame_equal(w.events.reset_index(drop=True), events.reset_index(drop=True),
                                  check_categorical=False)
    assert table_seqs(w.table.value) == list(range(len(records)))
    assert "followed to the end" in w.status_bar.value and "polls" in w.status_bar.value


def test_stop_ends_following_early(events):
    fake = GrowingRun(etl_run().records, step=1)
    w = Timeline(run_id="run-a", client=fake, follow=True, interval=0.05)
    w.stop()
    assert w.done.is_set() and w.error is None
    assert len(w.events) < len(fake.records)
    w.close()


def test_follow_errors_are_kept_and_shown():
    class Broken(GrowingRun):
        def run_status(self, run_id):
            from runlens.errors import TransportError

            raise TransportError("cannot reach http://fake/graphql")

    w = Timeline(run_id="run-a", client=Broken(etl_run().records), follow=True, interval=0.01)
    assert w.wait(10)
    assert "cannot reach" in str(w.error) and "stopped following" in w.status_bar.value


def test_follow_needs_a_client_and_a_complete_frame(events):
    with pytest.raises(ValueError, match="needs a run id and a client"):
        Timeline(run_id="run-a", follow=True)
    with pytest.raises(ValueError, match="complete, unfiltered"):
        Timeline(events, client=GrowingRun([]), follow=True)


# --------------------------------------------------------------------------- compare


def slower_run(run_id: str, t0: int, extra_ms: int) -> RunBuilder:
    b = RunBuilder(run_id, t0)
    b.event(0, "RUN_START")
    b.event(100, "STEP_START", "extract").event(1100, "STEP_SUCCESS", "extract")
    b.event(1200, "STEP_START", "load").event(1700 + extra_ms, "STEP_SUCCESS", "load")
    if extra_ms:
        b.event(1800 + extra_ms, "STEP_START", "report").event(1900 + extra_ms, "STEP_SUCCESS", "report")
    b.event(2000 + extra_ms, "RUN_SUCCESS")
    return b


def test_compare_step_durations_side_by_side():
    a = slower_run("run-a", T0, 0).frame()
    b = slower_run("run-b", T0 + 60_000, 2500).frame()
    out = compare_step_durations(a, b)
    assert out.columns.tolist() == ["step_key", "status_a", "status_b", "duration_a", "duration_b", "delta"]
    assert out["step_key"].tolist() == ["extract", "load", "report"]
    assert out["duration_a"].tolist()[:2] == pytest.approx([1.0, 0.5])
    assert out["duration_b"].tolist() == pytest.approx([1.0, 3.0, 0.1])
    assert out["delta"].tolist()[:2] == pytest.approx([0.0, 2.5])
    assert pd.isna(out.loc[2, "duration_a"]) and pd.isna(out.loc[2, "delta"])
    assert out.attrs == {"run_a": "run-a", "run_b": "run-b"}
    # A step_durations frame is accepted as well.
    pd.testing.assert_frame_equal(compare_step_durations(step_durations(a), b), out)
    with pytest.raises(ValueError, match="one run"):
        compare_step_durations(concat_events([a, b]), b)


class FakeRunsClient:
    """``runs``/``run``/``events`` over synthetic runs, newest first.

    A run is ``(run_id, job, builder)``, SUCCESS, or ``(run_id, job, builder, status)``:
    QUEUED and NOT_STARTED runs have no start or end, a CANCELED one without a
    RUN_START event was canceled while queued (Dagster gives it start == end).
    """

    url = "http://fake/graphql"

    def __init__(self, runs: list[tuple]):
        self.builders = {run_id: b for run_id, _, b, *_ in runs}
        self.records = []
        for i, (run_id, job, builder, *status) in enumerate(runs):
            status = status[0] if status else "SUCCESS"
            created = (T0 / 1000) - i * 60
            start, end = created, created + 5
            if status in ("QUEUED", "NOT_STARTED"):
                start = end = None
            elif status == "CANCELED" and not any(r["eventType"] == "RUN_START" for r in builder.records):
                start = end = created + 1
            self.records.append({"id": run_id, "jobName": job, "status": status, "creationTime": created,
                                 "startTime": start, "endTime": end, "tags": []})
        self.fetched: list[str] = []

    def runs(self, *, job=None, statuses=None, limit=None):
        records = [r for r in self.records if job is None or r["jobName"] == job][:limit]
        frame = runs_frame(records)
        frame.attrs["count"] = len(records)
        return frame

    def run(self, run_id):
        record = next(r for r in self.records if r["id"] == run_id)
        return Run.model_validate(record)

    def events(self, run_id):
        self.fetched.append(run_id)
        return self.builders[run_id].frame()

    def run_status(self, run_id):
        return self.run(run_id).status


def test_runs_browser_compares_nothing_by_default_when_no_job_ran_twice():
    client = FakeRunsClient([
        ("run-c", "etl_job", slower_run("run-c", T0, 2500)),
        ("run-x", "other_job", slower_run("run-x", T0 - 60_000, 0)),
    ])
    browser = RunsBrowser(client)
    assert browser.run_select.value == "run-c"
    assert (browser.run_a.value, browser.run_b.value) == (None, "run-c")
    assert browser.comparison is None and "choose two runs" in browser.compare_table.value
    browser.close()


def test_runs_browser_shows_the_newest_run_and_compares_it_with_the_previous_of_its_job():
    client = FakeRunsClient([
        ("run-y", "other_job", slower_run("run-y", T0 + 60_000, 0)),
        ("run-c", "etl_job", slower_run("run-c", T0, 2500)),
        ("run-x", "another_job", slower_run("run-x", T0 - 60_000, 0)),
        ("run-b", "etl_job", slower_run("run-b", T0 - 120_000, 0)),
    ])
    browser = RunsBrowser(client)
    assert [v for _, v in browser.run_select.options] == ["run-y", "run-c", "run-x", "run-b"]
    assert browser.run_select.value == "run-y"
    assert "run-y" in browser.summary.value and "SUCCESS" in browser.summary.value
    assert browser.timeline is not None and browser.timeline.run_id == "run-y"
    assert (browser.run_a.value, browser.run_b.value) == ("run-b", "run-c")
    assert browser.comparison is not None and browser.comparison.attrs == {"run_a": "run-b", "run_b": "run-c"}
    assert "2.500" in browser.compare_table.value
    assert browser.figure is not None and browser.compare_plot.outputs[0]["data"]["image/png"]

    previous = browser.timeline
    browser.select("run-x", a="run-x", b="run-c")
    assert previous.done.is_set() and browser.timeline.run_id == "run-x"
    assert browser.comparison.attrs == {"run_a": "run-x", "run_b": "run-c"}
    # Finished runs are fetched once, however often they are shown or compared.
    assert sorted(set(client.fetched)) == sorted(client.fetched)
    browser.run_a.value = None
    assert browser.comparison is None and "choose two runs" in browser.compare_table.value
    assert "RunsBrowser(4 runs, showing run-x" in repr(browser)
    browser.close()


def test_client_follow_continues_after_a_cursor_with_continuous_seq():
    records = etl_run().records
    fake = GrowingRun(records, step=len(records))  # everything visible at once
    first = next(fake.iter_event_pages("run-a", page_size=5))
    polls = []
    batches = list(fake.follow("run-a", after_cursor=first.cursor, start_seq=5, interval=0.01, grace=0.02,
                               on_poll=lambda n, status: polls.append((n, status))))
    rest = concat_events(batches)
    assert rest["seq"].tolist() == list(range(5, len(records)))
    assert rest["message"].tolist() == [r["message"] for r in records[5:]]
    assert polls[-1][1] == "SUCCESS" and batches[-1].attrs["cursor"] == cursor_for(len(records) - 1)


def test_client_follow_stops_when_asked():
    fake = GrowingRun(etl_run().records, step=1)
    stop = threading.Event()
    seen = []
    for batch in fake.follow("run-a", interval=30, stop=stop):
        seen.append(batch)
        stop.set()  # the 30 s wait must end at once
    assert len(seen) == 1 and len(seen[0]) == 1


def never_ran(run_id: str, *types: str) -> RunBuilder:
    """A run with only run-level events (or none): queued, never launched, canceled in the queue."""
    b = RunBuilder(run_id, T0)
    for i, event_type in enumerate(types):
        b.event(i, event_type)
    return b


def test_runs_browser_compares_runs_that_ran_not_the_newest_runs_of_a_job():
    # Newest first, as a real server lists them: the newest etl_job runs never ran a step.
    client = FakeRunsClient([
        ("run-n", "etl_job", never_ran("run-n"), "NOT_STARTED"),
        ("run-q", "etl_job", never_ran("run-q", "RUN_ENQUEUED"), "QUEUED"),
        ("run-k", "etl_job", never_ran("run-k", "RUN_ENQUEUED", "RUN_CANCELING", "RUN_CANCELED"), "CANCELED"),
        ("run-c", "etl_job", slower_run("run-c", T0, 2500)),
        ("run-f", "etl_job", slower_run("run-f", T0 - 60_000, 1000), "FAILURE"),
        ("run-b", "etl_job", slower_run("run-b", T0 - 120_000, 0)),
    ])
    browser = RunsBrowser(client)
    try:
        assert browser.run_select.value == "run-n"  # the newest run is still the one shown
        assert (browser.run_a.value, browser.run_b.value) == ("run-f", "run-c")
        comparison = browser.comparison
        assert comparison is not None and comparison["duration_a"].notna().all()
        assert comparison["duration_b"].notna().all()
        # Runs that never ran were not fetched for the comparison.
        assert not {"run-q", "run-k"} & set(client.fetched)
    finally:
        browser.close()


def test_runs_browser_falls_back_to_canceled_runs_that_ran_then_to_nothing():
    canceled = slower_run("run-x", T0, 0)  # RUN_START, steps, then canceled
    canceled.event(2500, "RUN_CANCELED")
    client = FakeRunsClient([
        ("run-n", "slow_job", never_ran("run-n"), "NOT_STARTED"),
        ("run-x", "slow_job", canceled, "CANCELED"),
        ("run-y", "slow_job", slower_run("run-y", T0 - 60_000, 0), "CANCELED"),
    ])
    browser = RunsBrowser(client)
    assert (browser.run_a.value, browser.run_b.value) == ("run-y", "run-x")
    browser.close()
    only_waiting = FakeRunsClient([
        ("run-q", "etl_job", never_ran("run-q", "RUN_ENQUEUED"), "QUEUED"),
        ("run-n", "etl_job", never_ran("run-n"), "NOT_STARTED"),
    ])
    browser = RunsBrowser(only_waiting)
    assert (browser.run_a.value, browser.run_b.value) == (None, "run-q")
    assert browser.comparison is None and "choose two runs" in browser.compare_table.value
    browser.close()


def test_run_labels_use_utc_text_and_give_no_duration_to_runs_that_never_ran():
    client = FakeRunsClient([
        ("run-k", "etl_job", never_ran("run-k", "RUN_ENQUEUED", "RUN_CANCELING", "RUN_CANCELED"), "CANCELED"),
        ("run-c", "etl_job", slower_run("run-c", T0, 2500)),
    ])
    browser = RunsBrowser(client)
    labels = dict((v, label) for label, v in browser.run_select.options)
    assert labels["run-c"].endswith("· etl_job · SUCCESS · 5.000 s · run-c")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ · ", labels["run-c"])
    assert labels["run-k"].endswith("· etl_job · CANCELED · run-k")  # start == end: it never ran
    browser.close()


@pytest.mark.parametrize(("status", "note"), [
    ("QUEUED", "queued: waiting in the run queue"),
    ("NOT_STARTED", "not started: created but not launched"),
])
def test_a_run_without_steps_says_why(status, note):
    w = Timeline(run_id="run-x", status=status)
    assert note in w.status_bar.value
    assert note in w.plot.outputs[0]["data"]["text/plain"]
    canceled = never_ran("run-k", "RUN_ENQUEUED", "RUN_CANCELING", "RUN_CANCELED").frame()
    w = Timeline(canceled, status="CANCELED")
    assert "canceled before it started" in w.status_bar.value


class NeverStarts(GrowingRun):
    """A run created and never launched: no events, NOT_STARTED on every poll."""

    def run_status(self, run_id):
        self.status_calls += 1
        return "NOT_STARTED"


def test_following_a_run_that_never_starts_keeps_polling_says_so_and_wait_times_out():
    fake = NeverStarts([])
    w = Timeline(run_id="run-a", client=fake, follow=True, interval=0.01, status="NOT_STARTED")
    try:
        assert w.wait(0.3) is False  # does not block for ever
        assert fake.status_calls > 3 and w.following and not w.done.is_set()
        assert "not started" in w.status_bar.value and "following every" in w.status_bar.value
        assert "not started" in w.plot.outputs[0]["data"]["text/plain"]
    finally:
        w.stop()
    assert w.done.is_set() and w.error is None


def test_step_panel_shows_the_steps_stderr_tail_next_to_its_error(events):
    from tests.unit.test_logs import FakeLogs

    stderr = "".join(f"noise {i}\n" for i in range(100)) + "\x1b[31mValueError: bad region apac\x1b[0m\n"
    fake = FakeLogs({"k1": (["extract"], b"", b"extract ok\n"), "k2": (["process[apac]"], b"", stderr.encode())},
                    run_id="run-a")
    client = Client(transport=MockTransport(fake), progress=False)
    w = Timeline(events, client=client)
    w.step_select.value = "process[apac]"
    lines, note = w.step_stderr("process[apac]")
    assert lines == [f"noise {i}" for i in range(81, 100)] + ["ValueError: bad region apac"] and note is None
    html = w.detail.value
    assert html.index("ValueError: bad region apac") < html.index("<b>stderr</b>")  # the error, then its stderr
    assert "noise 99\nValueError: bad region apac</pre>" in html
    gets = len(fake.gets)
    w.step_select.value = None
    w.step_select.value = "process[apac]"
    assert len(fake.gets) == gets  # cached: the run is complete
    assert fake.gets[-1]["headers"] == {"Range": "bytes=-32000"}  # only the tail is read


def test_step_panel_without_a_client_or_logs_says_so(events):
    w = Timeline(events)
    w.step_select.value = "process[apac]"
    assert "compute logs need a client" in w.detail.value
    from tests.unit.test_logs import FakeLogs

    w = Timeline(events, client=Client(transport=MockTransport(FakeLogs({}, run_id="run-a")), progress=False))
    w.step_select.value = "process[apac]"
    assert "has no captured compute logs" in w.detail.value
