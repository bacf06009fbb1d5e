"""``runlens.frames``: concatenating events frames of several runs (issue 12, defect 11)."""

from __future__ import annotations

import pandas as pd
import pytest

import runlens
from runlens.errors import InvalidArgument
from runlens.frames import EVENT_COLUMNS, concat_events, empty_events_frame, events_frame
from tests.builders import make_events


def run_frame(run_id: str, n: int, **attrs) -> pd.DataFrame:
    records = make_events(n)
    if run_id == "b":  # a type (newer than runlens), kind and step the other run does not have
        records = [{**r, "eventType": "BRAND_NEW_EVENT", "__typename": "BrandNewEvent", "stepKey": "only_in_b",
                    "level": "WARNING"} for r in records]
    frame = events_frame(records, run_id)
    frame.attrs.update({"run_ids": [run_id], "endpoint": "http://x/graphql",
                        "fetched_at": f"2026-11-26T10:0{n % 10}:00Z", "complete": True, "filtered": False,
                        "has_more": False, "cursor": f"cursor-{run_id}", **attrs})
    return frame


def assert_documented_dtypes(frame: pd.DataFrame) -> None:
    assert list(frame.columns[: len(EVENT_COLUMNS)]) == list(EVENT_COLUMNS)
    for column, dtype in EVENT_COLUMNS.items():
        if dtype == "category" or isinstance(dtype, pd.CategoricalDtype):
            assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
        else:
            assert str(frame[column].dtype) == str(dtype), column
    assert frame["level"].dtype.ordered and list(frame["level"].cat.categories[:5]) == list(runlens.vocabulary.LEVELS)


def test_is_exported_and_documented():
    assert runlens.concat_events is concat_events and "concat_events" in runlens.__all__
    assert "attrs" in concat_events.__doc__ and "pd.concat" in concat_events.__doc__


def test_keeps_categoricals_that_pd_concat_loses():
    a, b = run_frame("a", 6), run_frame("b", 4)
    assert not isinstance(pd.concat([a, b])["step_key"].dtype, pd.CategoricalDtype)  # the problem
    both = concat_events([a, b])
    assert_documented_dtypes(both)
    assert both["run_id"].astype(str).tolist() == ["a"] * 6 + ["b"] * 4
    assert both.index.tolist() == list(range(10))
    # and every value: a union that missed b's step keys, types or levels leaves NaN in the right dtype
    pd.testing.assert_frame_equal(both.astype(object), pd.concat([a, b], ignore_index=True).astype(object))


def test_merges_attrs():
    a, b = run_frame("a", 6), run_frame("b", 4, complete=False, has_more=True, filtered=True, skipped={"z": "gone"})
    both = concat_events([a, b])
    assert both.attrs["run_ids"] == ["a", "b"]
    assert both.attrs["complete"] is False and both.attrs["has_more"] is True and both.attrs["filtered"] is True
    assert both.attrs["cursors"] == {"a": "cursor-a", "b": "cursor-b"} and "cursor" not in both.attrs
    assert both.attrs["endpoint"] == "http://x/graphql" and both.attrs["skipped"] == {"z": "gone"}
    assert both.attrs["fetched_at"] == "2026-11-26T10:04:00Z"  # the earliest
    assert concat_events([a, run_frame("a", 1)]).attrs["complete"] is True


def test_successive_fetches_of_one_run_keep_the_last_cursor():
    # events(limit=6), then events(after_cursor=...) to the end: together, the whole log
    first, later = run_frame("a", 6, complete=False, has_more=True), run_frame("a", 2)
    later.attrs["cursor"] = "later"
    both = concat_events([first, later])
    assert both.attrs["run_ids"] == ["a"] and both.attrs["cursor"] == "later"
    assert both.attrs["complete"] is True and both.attrs["has_more"] is False
    assert both.attrs["fetched_at"] == later.attrs["fetched_at"]


def test_accepts_plain_pd_concat_output_and_frames_that_lost_their_categories():
    a, b = run_frame("a", 6), run_frame("b", 4)
    plain = pd.concat([a, b], ignore_index=True)  # object columns, attrs dropped
    assert not isinstance(plain["step_key"].dtype, pd.CategoricalDtype) and not plain.attrs
    fixed = concat_events([plain])
    assert_documented_dtypes(fixed)
    assert fixed.attrs["run_ids"] == ["a", "b"]  # from the rows, as attrs are gone
    lost = a.astype({c: object for c in ("run_id", "level", "event_type", "step_key", "kind", "error_class")})
    again = concat_events([lost, b])
    assert_documented_dtypes(again)
    pd.testing.assert_frame_equal(again, concat_events([a, b]), check_categorical=False)
    assert list(again["event_type"].cat.categories[: len(runlens.EVENT_TYPES)]) == list(runlens.EVENT_TYPES)


def test_frames_without_the_newer_columns_and_with_extra_ones():
    a = run_frame("a", 3).drop(columns="error_cause_stack").assign(note="mine")
    both = concat_events([a, run_frame("b", 2)])
    assert_documented_dtypes(both)
    assert both["error_cause_stack"].isna().all() and both["note"].tolist()[:3] == ["mine"] * 3


def test_no_frames_is_an_empty_events_frame():
    assert list(concat_events([]).columns) == list(empty_events_frame().columns)


@pytest.mark.parametrize("bad", [pd.DataFrame({"x": [1]}), "events", None])
def test_anything_but_events_frames_is_invalid(bad):
    with pytest.raises(InvalidArgument, match="concat_events"):
        concat_events([run_frame("a", 1), bad])


@pytest.mark.parametrize("bad", [[1, 2], "abc", [{"message": "ok"}, None], 5])
def test_events_frame_of_anything_but_records_is_invalid(bad):
    with pytest.raises(InvalidArgument, match="event records"):
        events_frame(bad, "run-1")


# ------------------------------------------------ a run canceled while queued (defect 6)

def test_a_run_canceled_while_queued_has_no_start_and_no_duration():
    from runlens.frames import runs_frame
    from runlens.models import Run

    queued = {"id": "q", "status": "CANCELED", "jobName": "j", "creationTime": 100.0, "startTime": 105.5,
              "endTime": 105.5}
    ran = {**queued, "id": "r", "startTime": 101.0}
    frame = runs_frame([queued, ran])
    assert frame["started"].isna().tolist() == [True, False]
    assert frame["duration"].isna().tolist() == [True, False]
    assert frame["duration"].iloc[1] == pd.Timedelta(seconds=4.5)
    assert Run.model_validate(queued).started_at is None and Run.model_validate(queued).duration is None
    assert Run.model_validate(ran).duration.total_seconds() == 4.5


def test_concat_events_leaves_each_string_column_one_chunk():
    """A frame of many runs filters as fast as one run's: no take across one Arrow chunk per run."""
    frames = [events_frame(make_events(30, start_ms=1_700_000_000_000 + 10_000 * k), f"run-{k}") for k in range(40)]
    both = concat_events(frames)
    one = pd.concat([f.assign(run_id=f["run_id"].astype(str)) for f in frames], ignore_index=True)
    for column in EVENT_COLUMNS:
        assert str(both[column].dtype) == str(events_frame([], "r")[column].dtype), column
        chunked = getattr(both[column].array, "_pa_array", None)
        if chunked is not None:
            assert chunked.num_chunks == 1, column
    assert both["message"].tolist() == one["message"].tolist()
    picked = runlens.filter_events(both, types="STEP_START", step="step_3")
    assert picked["seq"].tolist() == [s for f in frames for s in f["seq"] if s % 5 == 3 and s % 3 != 2]
    assert picked["message"].tolist() == [f"start {s}" for s in picked["seq"]]


def test_concat_of_many_runs_unions_categories_sorted_and_recodes_each_frame():
    """Built column by column (not pd.concat): each frame's codes are mapped into the union, whatever
    order its own categories are in, and missing values stay missing."""
    frames = []
    for k in range(30):
        frame = events_frame(make_events(12, start_ms=1_700_000_000_000 + 10_000 * k), f"run-{k}")
        # every third run has step keys of its own, listed in reverse order
        if k % 3 == 1:
            own = [f"own_{k}_{i}" for i in range(3)]
            frame["step_key"] = pd.Categorical([own[i % 3] if i % 4 else None for i in range(len(frame))],
                                               categories=own[::-1])
        frames.append(frame)
    both = concat_events(frames)
    assert_documented_dtypes(both)
    expected = pd.concat([f.astype(object) for f in frames], ignore_index=True)
    for column in EVENT_COLUMNS:
        got = both[column].astype(object).where(both[column].notna(), None).tolist()
        want = expected[column].where(expected[column].notna(), None).tolist()
        assert got == want, column
    # as events_frame orders them: the known ones (none for step keys), then the others sorted
    seen = sorted({c for f in frames for c in f["step_key"].cat.categories})
    assert list(both["step_key"].cat.categories) == seen
    assert list(both["event_type"].cat.categories[: len(runlens.EVENT_TYPES)]) == list(runlens.EVENT_TYPES)
    assert both.attrs["run_ids"] == [f"run-{k}" for k in range(30)]
    # run ids are the one exception: the runs in the order they were joined (not sorted: run-10 after run-9)
    assert list(both["run_id"].cat.categories) == [f"run-{k}" for k in range(30)]


def test_concat_events_leaves_its_input_frames_as_they_were():
    a, b = run_frame("a", 6), run_frame("b", 4)
    before = [(f.copy(deep=True), dict(f.attrs)) for f in (a, b)]
    concat_events([a, b])
    for frame, (copy, attrs) in zip((a, b), before, strict=True):
        pd.testing.assert_frame_equal(frame, copy)
        assert frame.attrs == attrs


def test_filter_of_a_many_run_frame_is_the_take_of_its_rows_with_attrs_copied():
    """filter_events copies attrs without pandas's deepcopy: the same frame and attrs as DataFrame.take,
    and the copy is independent of the source (lists and dicts of text one level deep, the rest deep)."""
    frames = [events_frame(make_events(40, start_ms=1_700_000_000_000 + 10_000 * k), f"run-{k}") for k in range(25)]
    for k, frame in enumerate(frames):
        frame.attrs.update(run_ids=[f"run-{k}"], cursor=f"c{k}", complete=True)
    both = concat_events(frames)
    both.attrs["custom"] = {"nested": [1, 2]}
    both.index = pd.RangeIndex(1000, 1000 + len(both))  # labels are kept, whatever they are
    picked = runlens.filter_events(both, types="STEP_START", step="step_3")
    positions = [i for i, (t, s) in enumerate(zip(both["event_type"], both["step_key"], strict=True))
                 if t == "STEP_START" and isinstance(s, str) and "step_3" in s]
    reference = both.take(positions)
    assert len(picked) == len(positions) > 0
    pd.testing.assert_frame_equal(picked, reference)
    assert picked.attrs == reference.attrs == both.attrs
    picked.attrs["run_ids"].append("x")
    picked.attrs["cursors"]["run-0"] = "changed"
    picked.attrs["custom"]["nested"].append(3)
    assert both.attrs["run_ids"] == [f"run-{k}" for k in range(25)]
    assert both.attrs["cursors"]["run-0"] == "c0" and both.attrs["custom"] == {"nested": [1, 2]}


def test_filter_of_a_dataframe_subclass_keeps_its_class():
    class Mine(pd.DataFrame):
        @property
        def _constructor(self):
            return Mine

    frame = Mine(events_frame(make_events(20), "r"))
    frame.attrs["run_ids"] = ["r"]
    picked = runlens.filter_events(frame, types="STEP_START")
    assert type(picked) is Mine and picked.attrs == {"run_ids": ["r"]} and len(picked) > 0
