"""plot_asset_metadata: a line per partition or asset, failures marked, clear errors."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

import runlens
from runlens.assets import asset_events_frame
from tests.unit.fake_dagster import asset_event, int_entry

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


def frame_of(records: list[dict], key: str = "daily") -> pd.DataFrame:
    return asset_events_frame(list(reversed(records)), key)  # as the server pages them: newest first


@pytest.fixture
def daily() -> pd.DataFrame:
    records = [asset_event(i, partition=DAYS[i % 3], metadata=[int_entry("row_count", 100 + 10 * i)])
               for i in range(5)]
    records.append(asset_event(5, typename="FailedToMaterializeEvent", partition=DAYS[2]))
    return frame_of(records)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def by_gid(ax, gid):
    return [a for a in [*ax.lines, *ax.collections] if a.get_gid() == gid]


def test_over_time_a_line_per_partition_and_failures_marked(daily):
    ax = runlens.plot_asset_metadata(daily, "row_count")
    lines = by_gid(ax, "value")
    assert sorted(line.get_label() for line in lines) == DAYS
    first = next(line for line in lines if line.get_label() == DAYS[0])
    assert list(first.get_ydata()) == [100.0, 130.0]  # materializations 0 and 3 of that day
    failed = by_gid(ax, "failed")
    assert len(failed) == 1 and len(failed[0].get_offsets()) == 1
    assert ax.get_ylabel() == "row_count" and "daily" in ax.get_title(loc="left")


def test_over_partitions_the_latest_value_and_earlier_ones_hollow(daily):
    ax = runlens.plot_asset_metadata(daily, "meta.row_count", x="partition")
    (line,) = by_gid(ax, "value")
    assert list(line.get_ydata()) == [130.0, 140.0, 120.0]  # each day's latest success
    (earlier,) = by_gid(ax, "earlier")
    assert sorted(earlier.get_offsets()[:, 1]) == [100.0, 110.0]
    assert len(by_gid(ax, "failed")[0].get_offsets()) == 1


def test_several_assets_a_line_each():
    both = pd.concat([frame_of([asset_event(i, metadata=[int_entry("n", i)]) for i in range(3)], "a"),
                      frame_of([asset_event(i, asset="b", metadata=[int_entry("n", 2 * i)]) for i in range(3)], "b")])
    ax = runlens.plot_asset_metadata(both, "n")
    assert sorted(line.get_label() for line in by_gid(ax, "value")) == ["a", "b"]


def test_many_partitions_draw_one_line_for_the_asset():
    records = [asset_event(i, partition=f"p{i:02d}", metadata=[int_entry("n", i)]) for i in range(20)]
    ax = runlens.plot_asset_metadata(frame_of(records), "n")
    assert [line.get_label() for line in by_gid(ax, "value")] == ["daily"]


def test_draws_on_the_axes_given(daily):
    _, ax = plt.subplots()
    assert runlens.plot_asset_metadata(daily, "row_count", ax=ax) is ax


def test_nothing_to_plot_says_so():
    empty = frame_of([asset_event(0, metadata=[int_entry("n", 1)])]).iloc[:0]
    ax = runlens.plot_asset_metadata(empty, "n")
    assert any(t.get_gid() == "no_data" for t in ax.texts)


@pytest.mark.parametrize("frame, column, x, match", [
    (pd.DataFrame({"x": [1]}), "n", "time", "asset events frame"),
    (None, "rows", "time", "no metadata 'rows'; it has: row_count"),
    (None, "row_count", "sideways", 'x must be "time"'),
])
def test_clear_errors(daily, frame, column, x, match):
    with pytest.raises(runlens.InvalidArgument, match=match):
        runlens.plot_asset_metadata(daily if frame is None else frame, column, x=x)


def test_a_text_column_is_refused_with_the_note():
    mixed = frame_of([asset_event(0, metadata=[int_entry("n", 1)]),
                      asset_event(1, metadata=[{"__typename": "TextMetadataEntry", "label": "n", "text": "x"}])])
    with pytest.raises(runlens.InvalidArgument, match="not numeric.*kept as text"):
        runlens.plot_asset_metadata(mixed, "n")


def test_partitions_needed_for_x_partition():
    with pytest.raises(runlens.InvalidArgument, match="no partition"):
        runlens.plot_asset_metadata(frame_of([asset_event(0, metadata=[int_entry("n", 1)])]), "n", x="partition")


# ------------------------------------------------------------------ status grid


def runs_frame() -> pd.DataFrame:
    records = [asset_event(i, partition=DAYS[i % 3], metadata=[int_entry("n", i)], run_id=f"run-{i // 3}")
               for i in range(5)]
    records.append(asset_event(5, typename="FailedToMaterializeEvent", partition=DAYS[2], run_id="run-9"))
    return frame_of(records)


def test_status_table_a_row_per_run_and_the_latest_state():
    from runlens.plotting import partition_status_table

    table = partition_status_table(runs_frame(), partitions=[*DAYS, "2026-11-04"])
    assert list(table.columns) == [*DAYS, "2026-11-04"]
    assert [label.split()[-1] for label in table.index] == ["run-0", "run-1", "run-9", "latest"]
    assert table.iloc[0].tolist() == ["MATERIALIZED"] * 3 + [""]
    assert table.iloc[1].tolist() == ["MATERIALIZED", "MATERIALIZED", "", ""]
    assert table.iloc[2].tolist() == ["", "", "FAILED", ""]
    assert table.loc["latest"].tolist() == ["MATERIALIZED", "MATERIALIZED", "FAILED", "MISSING"]


def test_status_grid_draws_the_table():
    ax = runlens.plot_partition_status(runs_frame())
    (image,) = [i for i in ax.images if i.get_gid() == "status_grid"]
    assert image.get_array().shape == (4, 3)
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "latest"


def test_status_grid_of_several_assets_is_refused():
    both = pd.concat([runs_frame(), frame_of([asset_event(0, asset="b", partition="x")], "b")])
    with pytest.raises(runlens.InvalidArgument, match="one asset"):
        runlens.plot_partition_status(both)
