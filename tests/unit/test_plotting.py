"""runlens.plotting: the geometry of what is drawn, not just that a figure exists."""

from __future__ import annotations

import io
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from runlens.frames import concat_events  # noqa: E402
from runlens.plotting import COLORS, plot_step_durations, plot_timeline  # noqa: E402
from runlens.steps import step_durations  # noqa: E402

from .test_steps import T0, RunBuilder, etl_run, live_run  # noqa: E402

RUN_START_A = pd.Timestamp(T0 + 1000, unit="ms", tz="UTC")


@pytest.fixture(autouse=True)
def _close_figures():
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
    assert "2 skipped or running not shown" in ax.get_title(loc="left")


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
