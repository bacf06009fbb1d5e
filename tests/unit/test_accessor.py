"""runlens.accessor: ``df.runlens`` on each kind of frame, and on frames that are none."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import runlens  # noqa: F401  registers df.runlens
from runlens.errors import InvalidArgument
from runlens.filters import filter_events
from runlens.frames import concat_events, runs_frame, step_stats_frame
from runlens.steps import step_durations
from runlens.summary import run_summary
from runlens.trends import duration_trend
from tests.builders import etl_run


@pytest.fixture(autouse=True)
def _agg():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


@pytest.fixture
def events() -> pd.DataFrame:
    return etl_run().frame()


def test_each_runlens_frame_has_its_kind(events):
    stats = step_stats_frame([("r1", {"stepKey": "a", "status": "SUCCESS", "startTime": 1.0e9, "endTime": 1.0e9 + 2,
                                      "attempts": [{"startTime": 1.0e9, "endTime": 1.0e9 + 2}], "markers": []})])
    steps = step_durations(events)
    frames = {"events": events, "steps": steps, "step_stats": stats, "trend": duration_trend(steps),
              "runs": runs_frame([{"id": "r1", "status": "SUCCESS", "jobName": "j"}])}
    assert {kind: frame.runlens.kind for kind, frame in frames.items()} == {k: k for k in frames}


@pytest.mark.parametrize("frame", [pd.DataFrame({"x": [1]}), pd.DataFrame({"step_key": ["a"], "status": ["SUCCESS"]})])
def test_a_frame_of_no_runlens_kind_has_no_accessor(frame):
    with pytest.raises(AttributeError, match="df.runlens expects an events frame"):
        frame.runlens  # noqa: B018
    assert not hasattr(frame, "runlens")  # what pandas accessors promise


def test_the_methods_are_the_library_functions(events):
    pd.testing.assert_frame_equal(events.runlens.filter(types="STEP_FAILURE"),
                                  filter_events(events, types="STEP_FAILURE"))
    pd.testing.assert_frame_equal(events.runlens.step_durations(), step_durations(events))
    assert str(events.runlens.summary()) == str(run_summary(events))
    errors = events.runlens.errors()
    assert set(errors["event_type"].dropna().astype(str)) == {"STEP_FAILURE", "STEP_UP_FOR_RETRY", "RUN_FAILURE"}
    assert len(errors) == 5  # with the two "Not executing." ERROR log lines


def test_errors_reads_levels_by_name_when_they_arrive_as_plain_text(events):
    plain = events.astype({"level": str, "event_type": str, "step_key": str, "error_class": object})
    assert plain.runlens.errors()["seq"].tolist() == events.runlens.errors()["seq"].tolist()
    assert "WARNING" not in set(plain.runlens.errors()["level"])


def test_a_method_for_another_kind_is_an_invalid_argument(events):
    steps = step_durations(events)
    with pytest.raises(InvalidArgument, match=r"df.runlens.filter\(\) expects an events frame .*got a step_durations"):
        steps.runlens.filter(types="STEP_START")
    with pytest.raises(InvalidArgument, match="df.runlens.step_durations"):
        steps.runlens.step_durations()


def test_plots_from_every_frame_that_has_steps(events):
    stats = step_stats_frame([("r1", {"stepKey": "a", "status": "FAILURE", "startTime": 1.0e9, "endTime": 1.0e9 + 2,
                                      "attempts": [{"startTime": 1.0e9, "endTime": 1.0e9 + 2}], "markers": []})])
    for frame in (events, step_durations(events), stats):
        ax = frame.runlens.plot_timeline()
        assert [p for p in ax.patches if p.get_gid() == "attempt"]
        assert frame.runlens.plot_step_durations().get_title(loc="left").startswith("Step durations")
    trend = duration_trend(step_durations(concat_events([etl_run("a").frame(), etl_run("b").frame()])))
    assert trend.runlens.plot_step_durations(kind="trend").get_lines()


def test_plain_pd_concat_output_keeps_the_accessor():
    frame = pd.concat([etl_run("a").frame(), etl_run("b").frame()])
    assert frame.runlens.kind == "events" and frame.attrs == {}
    assert frame.runlens.step_durations()["run_id"].nunique() == 2


def test_importing_the_accessor_stays_light():
    code = ("import sys, pandas, runlens.accessor; "
            "heavy = {'runlens.frames', 'runlens.plotting', 'matplotlib', 'pydantic'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
