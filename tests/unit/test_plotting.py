"""runlens.plotting: the geometry of what is drawn, not just that a figure exists.

The timeline's layout is plain data (``timeline_layout``): most checks read it without
drawing; the drawing tests check that the axes show that layout.
"""

from __future__ import annotations

import io
import subprocess
import sys

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from runlens.errors import InvalidArgument
from runlens.frames import concat_events, empty_events_frame, runs_frame, step_stats_frame
from runlens.plotting import COLORS, plot_step_comparison, plot_step_durations, plot_timeline, timeline_layout
from runlens.plotting._trend import OTHERS, trend_highlights
from runlens.steps import step_durations
from runlens.trends import compare_step_durations, duration_trend
from tests.builders import T0, RunBuilder, etl_run, live_run

RUN_START_A = pd.Timestamp(T0 + 1000, unit="ms", tz="UTC")


def pyplot():
    import matplotlib.pyplot as plt  # Agg: tests/conftest.py chose it before any import

    return plt


@pytest.fixture(autouse=True)
def _close_figures():
    plt = pyplot()
    yield
    plt.close("all")


def patches(ax, gid: str) -> list:
    return [p for p in ax.patches if p.get_gid() == gid]


def row_of(patch) -> int:
    return round(patch.get_y() + patch.get_height() / 2)


def seconds(t: pd.Timestamp, origin: pd.Timestamp = RUN_START_A) -> float:
    return (t - origin).total_seconds()


def test_one_bar_per_attempt_with_the_attempts_extent():
    steps = step_durations(etl_run().frame())
    ax = plot_timeline(etl_run().frame())
    bars = patches(ax, "attempt")
    assert len(bars) == steps["attempts"].sum() == 7
    for y, row in enumerate(steps.itertuples()):
        mine = sorted((b for b in bars if row_of(b) == y), key=lambda b: b.get_x())
        assert len(mine) == row.attempts, row.step_key
        for bar, (start, end) in zip(mine, row.attempt_spans, strict=True):
            assert bar.get_x() == pytest.approx(seconds(start), abs=1e-3)
            assert bar.get_width() == pytest.approx((end - start).total_seconds(), abs=1e-3)


def test_colours_say_how_each_attempt_ended():
    ax = plot_timeline(etl_run().frame())
    keys = [t.get_text() for t in ax.get_yticklabels()]
    by_row = {keys[row_of(b)]: [] for b in patches(ax, "attempt")}
    for b in sorted(patches(ax, "attempt"), key=lambda b: b.get_x()):
        by_row[keys[row_of(b)]].append(b.get_facecolor())
    red = by_row["process[apac]"][0]
    assert red == to_rgba(COLORS["FAILURE"])
    assert red[0] > 0.8 and red[1] < 0.45 and red[2] < 0.45  # it is red
    assert by_row["transform"] == [to_rgba(COLORS["RETRIED"]), to_rgba(COLORS["SUCCESS"])]
    assert by_row["extract"] == [to_rgba(COLORS["SUCCESS"])]
    tick = {t.get_text(): t.get_color() for t in ax.get_yticklabels()}
    assert to_rgba(tick["process[apac]"]) == to_rgba(COLORS["FAILURE"])


def test_retry_waits_and_worker_startups_are_drawn_apart():
    ax = plot_timeline(etl_run().frame())
    keys = [t.get_text() for t in ax.get_yticklabels()]
    waits = patches(ax, "retry_wait")
    assert len(waits) == 1 and keys[row_of(waits[0])] == "transform"
    assert waits[0].get_x() == pytest.approx(4.5 - 1.0, abs=1e-3)  # UP_FOR_RETRY, from RUN_START
    assert waits[0].get_width() == pytest.approx(1.8, abs=1e-3)
    assert waits[0].get_hatch() and waits[0].get_facecolor() != to_rgba(COLORS["SUCCESS"])
    workers = patches(ax, "worker_startup")
    assert len(workers) == 7  # one per process: transform has two
    transform = sorted((w for w in workers if keys[row_of(w)] == "transform"), key=lambda w: w.get_x())
    assert [(round(w.get_x(), 3), round(w.get_width(), 3)) for w in transform] == [(2.2, 0.7), (4.5, 0.7)]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"retry wait", "worker start-up", "skipped", "attempt: failure"} <= set(labels)


def test_skipped_steps_are_marked():
    ax = plot_timeline(etl_run().frame())
    keys = [t.get_text() for t in ax.get_yticklabels()]
    (marks,) = [line for line in ax.get_lines() if line.get_gid() == "skipped"]
    assert marks.get_marker() == "x"
    assert [keys[int(y)] for y in marks.get_ydata()] == ["load", "report"]
    assert list(marks.get_xdata()) == pytest.approx([8.3, 8.31])  # when Dagster logged the skip
    assert not [b for b in ax.patches if b.get_gid() == "attempt" and keys[row_of(b)] in ("load", "report")]
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("skipped") == 2


def test_y_labels_are_the_step_keys_in_start_order_top_first():
    ax = plot_timeline(etl_run().frame())
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "extract", "extract_customers", "transform", "process[emea]", "process[amer]", "process[apac]",
        "load", "report",
    ]
    bottom, top = ax.get_ylim()
    assert top < bottom  # row 0 at the top
    assert ax.get_xlabel() == "seconds since run start"


def test_the_axes_passed_in_is_the_one_drawn_on_and_returned():
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2)
    n_figures = len(plt.get_fignums())
    assert plot_timeline(etl_run().frame(), ax=right) is right
    assert plot_step_durations(step_durations(etl_run().frame()), ax=left) is left
    assert len(plt.get_fignums()) == n_figures
    assert patches(right, "attempt") and not patches(left, "attempt")


def test_absolute_mode_uses_utc_dates():
    steps = step_durations(etl_run().frame())
    ax = plot_timeline(etl_run().frame(), absolute=True)
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    first = min(patches(ax, "attempt"), key=lambda b: b.get_x())
    start = steps.loc[0, "start"]
    assert first.get_x() == pytest.approx(mdates.date2num(start.tz_localize(None).to_pydatetime()), abs=1e-3 / 86400)
    assert first.get_width() * 86400 == pytest.approx(1.05, abs=1e-3)
    assert ax.get_xlabel() == "time (UTC)"
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(text.count(":") == 2 for text in labels), labels  # 20:26:31, never a bare "31"


def test_a_steps_frame_draws_the_same_chart_as_the_events():
    from_events = plot_timeline(etl_run().frame())
    from_steps = plot_timeline(step_durations(etl_run().frame()))
    for gid in ("attempt", "retry_wait", "worker_startup"):
        a = [v for p in patches(from_events, gid) for v in (p.get_x(), p.get_y(), p.get_width())]
        b = [v for p in patches(from_steps, gid) for v in (p.get_x(), p.get_y(), p.get_width())]
        assert a and a == pytest.approx(b), gid


def test_run_in_progress_bars_end_at_the_last_event():
    frame = live_run().frame()
    ax = plot_timeline(frame)
    origin = pd.Timestamp(T0 + 60_000 + 500, unit="ms", tz="UTC")
    now = seconds(frame["timestamp"].max(), origin)
    keys = [t.get_text() for t in ax.get_yticklabels()]
    assert keys == ["a", "b", "c", "e", "d"]
    bars = patches(ax, "attempt")
    assert len(bars) == 5  # a: 1; b: 1 done + 1 running; c: 1 running; e: 1 done, waiting to retry
    running = [b for b in bars if b.get_facecolor() == to_rgba(COLORS["IN_PROGRESS"])]
    assert sorted(keys[row_of(b)] for b in running) == ["b", "c"]
    assert all(b.get_x() + b.get_width() == pytest.approx(now) for b in running)
    waits = {keys[row_of(w)]: (w.get_x(), w.get_x() + w.get_width()) for w in patches(ax, "retry_wait")}
    assert waits["b"] == pytest.approx((1.9, 2.4))
    assert waits["e"] == pytest.approx((2.7, now))  # up for retry right now
    (arrows,) = [line for line in ax.get_lines() if line.get_gid() == "running"]
    assert len(arrows.get_xdata()) == 3


def _sixty_steps() -> pd.DataFrame:
    b = RunBuilder("wide").event(0, "RUN_START")
    for i in range(60):
        key = f"process_item[{i:02d}]"
        b.event(100 + 50 * i, "STEP_START", key).event(400 + 50 * i + 7 * i, "STEP_SUCCESS", key)
    return b.frame()


def test_sixty_steps_render_readably():
    ax = plot_timeline(_sixty_steps())
    labels = ax.get_yticklabels()
    assert [t.get_text() for t in labels] == [f"process_item[{i:02d}]" for i in range(60)]
    assert labels[0].get_fontsize() <= 8
    assert ax.figure.get_figheight() >= 60 * 0.2  # grows with the steps
    assert len(patches(ax, "attempt")) == 60
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=60)
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_one_run_only():
    frame = concat_events([etl_run().frame(), live_run().frame()])
    with pytest.raises(ValueError, match="one run"):
        plot_timeline(frame)


def test_nothing_shown(monkeypatch):
    plt = pyplot()
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show() called"))
    plot_timeline(etl_run().frame())
    plot_step_durations(step_durations(etl_run().frame()))


def test_importing_does_not_import_matplotlib():
    code = "import sys, runlens.plotting, runlens.steps; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- durations


def test_durations_of_one_run_are_sorted_bars():
    steps = step_durations(etl_run().frame())
    ax = plot_step_durations(steps)
    bars = patches(ax, "duration")
    timed = steps.dropna(subset=["duration"]).sort_values("duration", ascending=False)
    assert len(bars) == len(timed) == 6
    assert [b.get_width() for b in sorted(bars, key=row_of)] == pytest.approx(
        timed["duration"].dt.total_seconds().tolist(), abs=1e-3)
    assert [t.get_text() for t in ax.get_yticklabels()] == timed["step_key"].astype(str).tolist()
    assert "seconds" in ax.get_xlabel()
    assert "2 without a duration not shown" in ax.get_title(loc="left")


def _three_runs() -> pd.DataFrame:
    return concat_events([etl_run(f"run-{i}", T0 + i * 3_600_000).frame() for i in range(3)])


def test_durations_of_many_runs_are_distributions():
    steps = step_durations(_three_runs())
    ax = plot_step_durations(steps)  # kind="auto"
    keys = [t.get_text() for t in ax.get_yticklabels()]
    assert keys[0] == "transform" and len(keys) == 6
    points = [c for c in ax.collections if c.get_gid() == "run_point"]
    assert sum(len(c.get_offsets()) for c in points) == 18  # 6 timed steps × 3 runs
    assert "3 runs" in ax.get_title(loc="left") and "seconds" in ax.get_xlabel()
    with pytest.raises(ValueError, match="one run"):
        plot_step_durations(steps, kind="bar")


def test_duration_trend_lines():
    steps = step_durations(_three_runs())
    ax = plot_step_durations(steps, kind="trend")
    lines = [line for line in ax.get_lines() if line.get_gid() == "trend"]
    assert len(lines) == 6
    transform = next(line for line in lines if line.get_label() == "transform")
    assert list(transform.get_ydata()) == pytest.approx([3.2, 3.2, 3.2])
    xs = mdates.date2num(transform.get_xdata())
    assert xs[1] - xs[0] == pytest.approx(1 / 24, abs=1e-6)  # runs an hour apart
    assert "seconds" in ax.get_ylabel()
    with pytest.raises(ValueError, match="kind"):
        plot_step_durations(steps, kind="pie")


# --------------------------------------------------------------------------- layout (no drawing)


def test_the_layout_is_plain_data_built_without_matplotlib():
    code = ("import sys; from tests.builders import etl_run; from runlens.plotting import timeline_layout; "
            "layout = timeline_layout(etl_run().frame()); assert layout.bars; "
            "assert 'matplotlib' not in sys.modules, 'the layout imported matplotlib'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_layout_of_a_retried_step_and_a_failed_one():
    layout = timeline_layout(etl_run().frame())
    assert layout.rows[:3] == ["extract", "extract_customers", "transform"]
    assert layout.x_label == "seconds since run start" and layout.origin == RUN_START_A
    transform = layout.rows.index("transform")
    mine = sorted((b.start, b.kind, b.look) for b in layout.bars if b.row == transform)
    assert [(round(x, 3), kind, look) for x, kind, look in mine] == [
        (2.2, "worker_startup", "worker_startup"), (3.0, "attempt", "RETRIED"),
        (3.5, "retry_wait", "retry_wait"), (4.5, "worker_startup", "worker_startup"),
        (5.3, "attempt", "SUCCESS"),
    ]
    notes = {layout.rows[n.row]: (n.text, n.look) for n in layout.notes}
    assert notes["transform"] == ("3.200 s · 2 attempts", "text")  # runlens.text.duration_text
    assert notes["process[apac]"] == ("0.480 s · ValueError", "FAILURE")
    assert notes["load"] == ("skipped", "SKIPPED")
    assert [layout.rows[m.row] for m in layout.marks] == ["load", "report"]
    assert layout.run_end == pytest.approx(8.4) and layout.last_event is None
    assert layout.done_at == pytest.approx(8.2)
    assert layout.looks == {"SUCCESS", "FAILURE", "RETRIED", "retry_wait", "worker_startup", "SKIPPED"}


def test_the_axis_starts_at_the_run_start_not_at_the_queue():
    # etl_run is enqueued 1 s before RUN_START: the queue is not drawn beside the steps,
    # so it must not stretch the axis into negative seconds.
    lo, hi = timeline_layout(etl_run().frame()).x_range()
    assert -0.1 < lo <= 0 and hi > 8.4


def test_layout_of_a_run_in_progress_ends_open_bars_at_the_last_event():
    layout = timeline_layout(live_run().frame())
    now = layout.last_event
    assert now == pytest.approx(3.0)  # 3.5 s after RUN_STARTING, RUN_START at 0.5 s
    open_bars = [b for b in layout.bars if b.look == "IN_PROGRESS"]
    assert sorted(layout.rows[b.row] for b in open_bars) == ["b", "c"]
    assert all(b.end == now for b in open_bars)
    assert sorted(layout.rows[m.row] for m in layout.marks if m.kind == "running") == ["b", "c", "e"]


def test_the_twin_pipeline_events_set_the_clock_like_run_events():
    b = RunBuilder("legacy").event(0, "PIPELINE_START").event(500, "STEP_START", "a")
    b.event(1500, "STEP_SUCCESS", "a").event(1600, "PIPELINE_SUCCESS")
    layout = timeline_layout(b.frame())
    assert layout.x_label == "seconds since run start"
    assert [(round(b.start, 3), round(b.end, 3)) for b in layout.bars] == [(0.5, 1.5)]
    assert layout.run_end == pytest.approx(1.6)


# --------------------------------------------------------------------------- #12 defect 3: frame kinds


def _step_stats_of(events: pd.DataFrame) -> pd.DataFrame:
    """What Client.step_stats returns for a run: Dagster's stepStats rows (no abandoned steps)."""

    def seconds(t):
        return None if t is None or pd.isna(t) else t.timestamp()

    records = []
    for row in step_durations(events).itertuples():
        if pd.isna(row.start):
            continue
        records.append((str(row.run_id), {
            "stepKey": str(row.step_key), "status": str(row.status), "startTime": seconds(row.start),
            "endTime": seconds(row.end), "markers": [],
            "attempts": [{"startTime": seconds(s), "endTime": seconds(e)} for s, e in row.attempt_spans],
        }))
    return step_stats_frame(records)


def test_a_step_stats_frame_draws_the_same_attempts():
    stats = _step_stats_of(etl_run().frame())
    ax = plot_timeline(stats)  # was AttributeError: 'Pandas' object has no attribute 'error_class'
    keys = [t.get_text() for t in ax.get_yticklabels()]
    assert keys == ["extract", "extract_customers", "transform", "process[emea]", "process[amer]",
                    "process[apac]"]
    bars = patches(ax, "attempt")
    assert len(bars) == 7 and not patches(ax, "worker_startup")  # stepStats has no worker spans here
    first_step = pd.Timestamp(T0 + 2050, unit="ms", tz="UTC")  # no RUN_START: the first step event
    transform = sorted((b for b in bars if keys[row_of(b)] == "transform"), key=lambda b: b.get_x())
    assert [b.get_x() for b in transform] == pytest.approx([seconds(pd.Timestamp(T0 + t, unit="ms", tz="UTC"),
                                                                    first_step) for t in (4000, 6300)], abs=2e-3)
    assert ax.get_xlabel() == "seconds since the first step event"
    assert plot_step_durations(stats).get_yticklabels()[0].get_text() == "transform"


@pytest.mark.parametrize("frame, got", [
    (pd.DataFrame({"x": [1]}), "without the column"),
    (runs_frame([{"id": "r1", "status": "SUCCESS", "jobName": "j"}]), "a runs frame"),
])
def test_a_frame_of_another_kind_is_an_invalid_argument_naming_what_was_expected(frame, got):
    with pytest.raises(InvalidArgument, match=r"plot_timeline\(\) expects an events frame .*" + got):
        plot_timeline(frame)
    with pytest.raises(InvalidArgument, match=r"plot_step_durations\(\) expects an events frame"):
        plot_step_durations(frame)
    trend = duration_trend(step_durations(etl_run().frame()))
    with pytest.raises(InvalidArgument, match="got a duration_trend frame"):
        plot_step_durations(trend, kind="box")
    with pytest.raises(InvalidArgument, match="expects an events frame"):
        plot_timeline("run-a")


# --------------------------------------------------------------------------- #12 defect 6: canceled steps


def _canceled_run() -> pd.DataFrame:
    """The etl run as step_durations reports a cancellation: process[apac] stopped by the run
    (Dagster says FAILURE, DagsterExecutionInterruptedError), process[amer] cut mid-attempt."""
    steps = step_durations(etl_run().frame())
    apac = steps["step_key"] == "process[apac]"
    steps.loc[apac, "status"] = "CANCELED"
    steps.loc[apac, "error_class"] = pd.NA
    amer = steps.index[steps["step_key"] == "process[amer]"][0]
    steps.loc[amer, ["status", "end", "duration"]] = ["CANCELED", pd.NaT, pd.NaT]
    steps.at[amer, "attempt_spans"] = [(steps.at[amer, "start"], None)]
    return steps


def test_canceled_steps_have_their_own_colour_and_no_error_mark():
    steps = _canceled_run()
    layout = timeline_layout(steps)
    notes = {layout.rows[n.row]: (n.text, n.look) for n in layout.notes}
    assert notes["process[apac]"] == ("0.480 s · canceled", "CANCELED")
    # Cut mid-attempt: the bar runs to the run's end, not on as if still running.
    assert notes["process[amer]"] == ("canceled after 1.300 s", "CANCELED")
    amer = [b for b in layout.bars if layout.rows[b.row] == "process[amer]" and b.kind == "attempt"]
    assert [(b.end, b.look) for b in amer] == [(pytest.approx(8.4), "CANCELED")]
    assert not [m for m in layout.marks if m.kind == "running"]

    ax = plot_timeline(steps)
    keys = [t.get_text() for t in ax.get_yticklabels()]
    colours = {keys[row_of(b)]: b.get_facecolor() for b in patches(ax, "attempt")}
    assert colours["process[apac]"] == to_rgba(COLORS["CANCELED"]) != to_rgba(COLORS["FAILURE"])
    assert not any("Error" in t.get_text() for t in ax.texts)
    tick = {t.get_text(): to_rgba(t.get_color()) for t in ax.get_yticklabels()}
    assert tick["process[apac]"] == to_rgba(COLORS["CANCELED"])
    assert "attempt: canceled with the run" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "2 canceled" in ax.get_title(loc="left") and "failed" not in ax.get_title(loc="left")
    bar_colours = [p.get_facecolor() for p in patches(plot_step_durations(steps), "duration")]
    assert to_rgba(COLORS["CANCELED"]) in bar_colours


# --------------------------------------------------------------------------- #12 defect 10: no steps yet


def test_a_queued_run_says_so_over_a_sane_axis():
    frame = RunBuilder("0a1b2c3d-queued").event(0, "RUN_ENQUEUED").frame()
    ax = plot_timeline(frame)
    assert ax.get_title(loc="left") == "Run 0a1b2c3d · queued since 2026-11-26T04:26:30Z, no steps yet"
    lo, hi = ax.get_xlim()
    assert hi - lo >= 1.0  # not a 0.0002 s axis
    assert ax.get_xlabel() == "seconds since the run was enqueued"
    assert [t.get_text() for t in ax.texts if t.get_gid() == "no_steps"] == ["no steps yet"]
    assert ax.get_yticks().size == 0
    assert timeline_layout(step_durations(frame)).state == "no steps"  # no events: cannot say it is queued
    assert plot_timeline(frame, absolute=True).get_xlabel() == "time (UTC)"


def test_a_run_that_never_launched_is_not_started():
    ax = plot_timeline(empty_events_frame("0a1b2c3d-never"))
    assert ax.get_title(loc="left") == "Run 0a1b2c3d · not started (no events)"
    assert timeline_layout(empty_events_frame("r")).state == "not started (no events)"


def test_a_run_canceled_while_queued_says_so():
    frame = RunBuilder("c").event(0, "RUN_ENQUEUED").event(62_000, "RUN_CANCELING").event(62_050, "RUN_CANCELED")
    layout = timeline_layout(frame.frame())
    assert layout.state == "canceled while queued, at 2026-11-26T04:27:32Z after 1 min 02.0 s in the queue"
    assert [phase for phase, _ in layout.run_events] == ["enqueued", "canceling", "canceled"]
    started = RunBuilder("s").event(0, "RUN_ENQUEUED").event(100, "RUN_STARTING").event(900, "RUN_START")
    assert timeline_layout(started.frame()).state == "started at 2026-11-26T04:26:30Z, no steps yet"


# --------------------------------------------------------------------------- #12 defect 11: plain pd.concat


def test_plots_accept_plain_pd_concat_of_several_runs():
    runs = [etl_run("run-a").frame(), live_run("run-b").frame()]
    events = pd.concat(runs)  # categories differ: columns turn to text, attrs are gone, index repeats
    steps = pd.concat([step_durations(f) for f in runs])
    assert steps.attrs == {} and not isinstance(steps["step_key"].dtype, pd.CategoricalDtype)
    for frame in (events, steps):
        for kind in ("auto", "strip", "trend"):
            assert plot_step_durations(frame, kind=kind).get_lines() or kind != "trend"
    one = plot_timeline(events[events["run_id"] == "run-a"])
    assert len(patches(one, "attempt")) == 7 and one.get_xlabel() == "seconds since run start"
    from_steps = timeline_layout(steps[steps["run_id"] == "run-b"])
    assert from_steps.rows == ["a", "b", "c", "e", "d"]  # attrs gone: the first step event is x = 0


def test_one_run_glued_by_pd_concat_draws_each_step_once():
    steps = step_durations(etl_run().frame())
    glued = pd.concat([steps.iloc[:4], steps.iloc[4:].reset_index(drop=True)])  # index 0..3 twice
    ax = plot_timeline(glued)  # was 16 rows and 14 bars: every step twice
    assert len(ax.get_yticklabels()) == 8 and len(patches(ax, "attempt")) == 7
    assert len(patches(plot_step_durations(glued), "duration")) == 6


# --------------------------------------------------------------------------- #12 defect 9: the trend chart


def _many_runs(n_steps: int, n_runs: int, *, changed: dict[int, float], seconds_apart: float = 3600.0):
    """A duration_trend frame: steady noisy steps, and `changed` steps whose duration grows."""
    rng = np.random.default_rng(1)
    start = pd.Timestamp("2026-11-01", tz="UTC")
    rows = []
    for r in range(n_runs):
        run_start = start + pd.Timedelta(seconds=seconds_apart * r)
        for s in range(n_steps):
            base = 2.0 + 0.2 * s + rng.normal(0, 0.15)
            growth = changed.get(s, 0.0) * r / max(n_runs - 1, 1)
            rows.append((f"run-{r:03d}", f"step_{s:02d}", "SUCCESS", run_start, run_start, base + growth))
    return pd.DataFrame(rows, columns=["run_id", "step_key", "status", "start", "run_start", "duration"])


def test_the_steps_that_changed_most_are_highlighted():
    trend = _many_runs(50, 200, changed={7: 6.0, 31: -3.0, 44: 2.0})
    picked = trend_highlights(trend, "run_start")
    assert [h.step_key for h in picked[:3]] == ["step_07", "step_31", "step_44"]
    assert picked[0].change == pytest.approx(4.0, abs=0.5) and picked[1].change == pytest.approx(-2.0, abs=0.5)
    assert len(picked) == 3 and len({h.color for h in picked}) == 3  # noise is not highlighted
    spread = {7: 6.0, 31: -3.0, 44: 2.0, 3: 5.0, 9: 4.0, 12: 3.5, 20: -2.5, 40: 2.2}
    assert len(trend_highlights(_many_runs(50, 30, changed=spread), "run_start")) == 6  # a handful at most
    few = trend_highlights(_many_runs(3, 5, changed={}), "run_start")
    assert len(few) == 3 and len({h.color for h in few}) == 3  # a few steps: every one in colour


def test_fifty_steps_over_two_hundred_runs_stay_readable():
    ax = plot_step_durations(_many_runs(50, 200, changed={7: 6.0, 31: -3.0, 44: 2.0}), kind="trend")
    lines = [line for line in ax.get_lines() if line.get_gid() == "trend"]
    assert len(lines) == 50
    coloured = [line for line in lines if line.get_color() != OTHERS]
    assert len(coloured) == 3 and len({line.get_color() for line in coloured}) == 3  # no colour twice
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("step_07  +") and legend[-1] == "47 other steps"
    names = [text.split()[0] for text in legend[:-1]]
    assert names == ["step_07", "step_31", "step_44"]  # each highlighted line named once
    assert "3 of 50 steps that changed most" in ax.get_title(loc="left")


def test_the_time_axis_reads_at_a_glance():
    ax = plot_step_durations(_many_runs(3, 5, changed={1: 2.0}, seconds_apart=20.0), kind="trend")
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(len(text) == len("13:14:30") and text.count(":") == 2 for text in labels), labels
    assert ax.xaxis.get_major_formatter().get_offset() == "2026 Nov 01"


# --------------------------------------------------------------------------- comparison


def test_step_comparison_draws_on_the_axes_given():
    a = etl_run("run-a").frame()
    b = RunBuilder("run-b").event(0, "STEP_START", "extract").event(2500, "STEP_SUCCESS", "extract").frame()
    comparison = compare_step_durations(a, b)
    plt = pyplot()
    _, ax = plt.subplots()
    assert plot_step_comparison(comparison, ax, labels=("old", "new")) is ax
    keys = [t.get_text() for t in ax.get_yticklabels()]
    assert keys[:2] == ["extract", "extract_customers"]
    (old, *_), (new, *_) = patches(ax, "duration_a"), patches(ax, "duration_b")
    assert (old.get_width(), new.get_width()) == pytest.approx((1.05, 2.5))
    deltas = [t.get_text() for t in ax.texts if t.get_gid() == "delta"]
    assert deltas == ["+1.450 s"]  # runlens.text.duration_text, with the sign
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["old", "new"]
    with pytest.raises(InvalidArgument, match="compare_step_durations frame"):
        plot_step_comparison(step_durations(a))
    with pytest.raises(InvalidArgument, match="labels must name the two runs"):
        plot_step_comparison(comparison, labels="AB")


@pytest.mark.filterwarnings("error")  # notebook 02 met "singular ylims" warnings on an empty run
@pytest.mark.parametrize("draw", [
    lambda q: plot_step_durations(step_durations(q)),
    lambda q: plot_step_durations(q, kind="box"),
    lambda q: plot_step_durations(q, kind="trend"),
    lambda q: plot_step_comparison(compare_step_durations(q, q)),
    lambda q: plot_timeline(q),
    lambda q: plot_timeline(empty_events_frame()),
], ids=["bar", "box", "trend", "comparison", "timeline", "timeline-no-events"])
def test_a_run_without_steps_draws_without_warnings_and_says_why(draw):
    ax = draw(RunBuilder("q").event(0, "RUN_ENQUEUED").frame())
    said = [t.get_text() for t in ax.texts if t.get_gid() in ("no_data", "no_steps")]
    assert len(said) == 1 and said[0].startswith(("no step", "neither run", "no steps"))


def test_steps_with_no_time_at_all_still_draw():
    stats = step_stats_frame([("r", {"stepKey": "a", "status": "SKIPPED", "startTime": None, "endTime": None,
                                     "attempts": [], "markers": []})])
    layout = timeline_layout(stats)
    assert layout.rows == ["a"] and [(m.kind, m.x) for m in layout.marks] == [("skipped", 0.0)]
    assert plot_timeline(stats).get_yticklabels()[0].get_text() == "a"
