"""runlens.dask: a History store read by Dask on a real LocalCluster of 2 worker processes.

Every result is compared with the pandas read of the same store (``History.events`` /
``.steps``, ``runlens.step_durations``): same rows, order, values and dtypes. The store is
synced from :class:`tests.unit.history_fake.FakeDeployment` in several syncs, so months hold
several files and one run's events span two files (a top-up).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

import runlens
from runlens.errors import InvalidArgument, InvalidFilter, StoreError
from tests.builders import T0, canceled_run, etl_run, live_run, record
from tests.unit.history_fake import deployment

dd = pytest.importorskip("dask.dataframe", reason="runlens[dask] is part of the dev extra")
import runlens.dask as rd  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400_000
# Categories that depend on the rows: the concatenation of several partitions has their union in
# partition order, History's one read has them sorted (see runlens.dask.events).
EVENT_UNIONED = ["step_key", "kind", "error_class"]
STEP_UNIONED = ["run_id", "step_key", "error_class"]


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local, \
            Client(local) as client:
        yield client


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """36 runs of two jobs over three months, synced in four syncs; one run topped up by a later sync."""
    root = tmp_path_factory.mktemp("dask") / "store"
    fake = deployment()
    h = runlens.History(root)
    client = fake.client()
    h.sync(client)
    for wave in range(3):
        for i in range(10):
            n = wave * 10 + i
            t0 = T0 - n * 3 * DAY - 3_600_000
            if n % 5 == 4:
                builder, job, status = canceled_run(f"c-{n:02d}", t0=t0), "slow_job", "CANCELED"
            else:
                builder, job, status = etl_run(f"r-{n:02d}", t0=t0), "etl_job" if n % 2 else "nightly_job", "FAILURE"
            fake.add(builder.run_id, builder.records, job=job, status=status)
            # Updated after the store's high-water mark, so the next sync discovers it.
            fake.runs[builder.run_id]["updateTime"] = float(int(time.time()) - 600 + wave * 60)
        h.sync(client)
    # A run ended just now: stored, not final; its last event arrives with the next sync, in another file.
    now_ms = int(time.time() * 1000)
    records = [record(0, "RUN_START", t0=now_ms - 2000), record(10, "STEP_START", "only", t0=now_ms - 2000),
               record(900, "STEP_SUCCESS", "only", t0=now_ms - 2000), record(1000, "RUN_SUCCESS", t0=now_ms - 2000)]
    fake.add("run-new", records, status="SUCCESS")
    h.sync(client, grace=60)
    fake.events["run-new"].append(record(1500, "ENGINE_EVENT", message="Process for run exited", t0=now_ms - 2000))
    fake.add("live", live_run("live", t0=now_ms - 5000).records, status="STARTED")
    h.sync(client, grace=0)
    manifest = json.loads((root / "manifest.json").read_text())
    assert len(manifest["runs"]["run-new"]["files"]) == 2  # the top-up is in a second file
    assert len({e["month"] for e in manifest["files"]["events"]}) >= 3
    assert len(manifest["files"]["events"]) > len({e["month"] for e in manifest["files"]["events"]})
    return root


def _sorted_categories(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    for name in columns:
        frame[name] = frame[name].cat.reorder_categories(sorted(frame[name].cat.categories))
    return frame


def _same_events(ddf, expected: pd.DataFrame) -> None:
    got = _sorted_categories(ddf.compute(), EVENT_UNIONED)
    pd.testing.assert_frame_equal(got, expected)


# ------------------------------------------------------------------------------------ events


def test_events_equal_the_pandas_read_partition_by_partition_and_whole(cluster, store):
    h = runlens.History(store)
    expected = h.events()
    ddf = rd.events(store, rows_per_partition=300)
    assert ddf.npartitions >= 4
    parts = [ddf.get_partition(i).compute() for i in range(ddf.npartitions)]
    # Each partition is History's read of its runs, exactly; a run is never in two partitions.
    for part in parts:
        runs = list(part["run_id"].cat.categories)
        pd.testing.assert_frame_equal(part, h.events(runs))
    every = [r for part in parts for r in part["run_id"].cat.categories]
    assert len(every) == len(set(every)) == expected["run_id"].nunique()
    assert "run-new" in every  # its events span two files, read by one partition
    # The whole: the same rows in the same order with the same dtypes and values.
    _same_events(ddf, expected)
    assert list(ddf.compute()["run_id"].cat.categories) == list(expected["run_id"].cat.categories)


@pytest.mark.parametrize("kwargs", [
    {"types": "step_failure,RUN_FAILURE"},
    {"step": "PROCESS[", "levels": "error"},
    {"types": ["PIPELINE_FAILURE"]},
    {"levels": "WARNING"},
    {"step": ["load", "report"]},
    {"job": "slow_job"},
    {"job": "etl_job", "types": "STEP_START"},
    {"run_ids": ["r-03", "c-04", "run-new"]},
    {"run_ids": "r-07", "types": "STEP_FAILURE"},
    {"since": "2026-10-20"},
    {"until": datetime(2026, 10, 15, tzinfo=UTC)},
    {"since": "2026-09-01", "until": "2026-10-01", "job": "nightly_job"},
    {"run_ids": ["no-such-run"]},
])
def test_every_history_filter_gives_the_pandas_rows(cluster, store, kwargs):
    expected = runlens.History(store).events(**kwargs)
    assert len(expected) > 0 or kwargs == {"run_ids": ["no-such-run"]}
    _same_events(rd.events(store, rows_per_partition=400, **kwargs), expected)


def test_partitions_have_the_dtypes_of_the_pandas_events_frame(cluster, store):
    ddf = rd.events(store, rows_per_partition=300)
    expected = runlens.History(store).events()
    assert list(ddf.columns) == list(expected.columns)
    assert ddf.dtypes.astype(str).to_dict() == expected.dtypes.astype(str).to_dict()
    assert ddf["level"].dtype == expected["level"].dtype  # ordered DEBUG < ... < CRITICAL, known to Dask
    assert ddf["timestamp"].dtype == "datetime64[ms, UTC]"
    part = ddf.get_partition(1).compute()
    assert part.dtypes.astype(str).to_dict() == expected.dtypes.astype(str).to_dict()
    assert part["level"].dtype == expected["level"].dtype
    # Dask-side operations see the same types: the ordered level compares.
    assert ddf[ddf["level"] >= "ERROR"].shape[0].compute() == int((expected["level"] >= "ERROR").sum())


def test_filters_are_pushed_down_so_unneeded_files_are_never_opened(cluster, store, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    holding = set(manifest["runs"]["r-03"]["files"])
    slow = {e["path"] for e in manifest["files"]["events"] if "slow_job" in e["jobs"]}
    broken = next(e["path"] for e in manifest["files"]["events"] if e["path"] not in holding | slow)
    (copy / broken).write_bytes(b"not parquet at all")
    expected = runlens.History(store)
    # Neither a run's lookup (the manifest's files of that run) nor a job's (the files listing it) opens it...
    _same_events(rd.events(copy, ["r-03"]), expected.events(["r-03"]))
    _same_events(rd.events(copy, job="slow_job"), expected.events(job="slow_job"))
    # ...and a read that needs it names it.
    with pytest.raises(StoreError, match=re.escape(broken)):
        rd.events(copy).compute()
    with pytest.raises(StoreError, match=re.escape(broken)):  # also through fsspec (a store at a URL)
        rd.events(copy.as_uri(), types="STEP_FAILURE").compute()


def test_events_of_a_store_at_an_fsspec_url(cluster, store):
    url = store.as_uri()  # file:///...: read through fsspec, as s3:// or gs:// are
    assert url.startswith("file://")
    h = runlens.History(store)
    _same_events(rd.events(url, rows_per_partition=350), h.events())
    _same_events(rd.events(url, job="etl_job", types="STEP_FAILURE"), h.events(job="etl_job", types="STEP_FAILURE"))
    stored = _sorted_categories(rd.steps(url, rows_per_partition=100).compute(), STEP_UNIONED)
    pd.testing.assert_frame_equal(stored, h.steps())


# ------------------------------------------------------------------------------------- steps


def test_stored_steps_equal_the_pandas_read(cluster, store):
    h = runlens.History(store)
    for kwargs in ({}, {"job": "etl_job"}, {"since": "2026-10-10"}, {"run_ids": ["r-01", "c-09", "run-new"]},
                   {"until": "2026-10-01", "job": "nightly_job"}):
        expected = h.steps(**kwargs)
        assert len(expected) > 0, kwargs
        ddf = rd.steps(store, rows_per_partition=60, **kwargs)
        got = _sorted_categories(ddf.compute(), STEP_UNIONED)
        pd.testing.assert_frame_equal(got, expected)
    assert rd.steps(store, rows_per_partition=60).npartitions >= 3


def test_steps_recomputed_from_events_by_run_equal_the_pandas_step_durations(cluster, store):
    h = runlens.History(store)
    final = h.runs().query("final")["run_id"].tolist()
    events = h.events(final)
    # pandas, one run at a time: the groupby("run_id") the Dask path does partition by partition.
    by_run = [runlens.step_durations(group) for _, group in events.groupby("run_id", observed=True, sort=False)]
    per_run = pd.concat([_sorted_categories(f, []) for f in by_run], ignore_index=True)
    ddf = rd.steps(store, from_events=True, rows_per_partition=300)
    assert ddf.npartitions >= 3
    got = _sorted_categories(ddf.compute(), STEP_UNIONED)
    pd.testing.assert_frame_equal(got, h.steps())  # the stored ones, computed by the syncs
    pd.testing.assert_frame_equal(got.astype(object), per_run.astype(object))
    assert "live" not in set(got["run_id"])  # not final: no stored steps, none recomputed
    # The function itself, on any runlens.dask events frame.
    some = rd.step_durations(rd.events(store, job="etl_job", rows_per_partition=300))
    expected = runlens.step_durations(h.events(job="etl_job"))
    pd.testing.assert_frame_equal(_sorted_categories(some.compute(), STEP_UNIONED),
                                  _sorted_categories(expected, STEP_UNIONED))


def test_steps_of_light_synced_runs_are_read_as_history_reads_them(cluster, tmp_path):
    # A light sync stores Dagster's stepStats rows and no event: the runs are not final, their rows are steps.
    root = tmp_path / "light"
    h = runlens.History(root)
    h.sync(deployment().client(), events=False)
    expected = h.steps()
    assert len(expected) > 0 and sorted(expected.attrs["light_runs"]) == sorted(set(expected["run_id"]))
    got = _sorted_categories(rd.steps(root, rows_per_partition=5).compute(), STEP_UNIONED)
    pd.testing.assert_frame_equal(got, expected)
    assert len(rd.steps(root, from_events=True).compute()) == 0  # no stored event to recompute them from


# ------------------------------------------------------------------------------ bad input, edges


def test_an_empty_or_missing_store_is_an_empty_typed_frame(cluster, tmp_path):
    events = rd.events(tmp_path / "nothing-here")
    assert events.npartitions == 1
    assert len(events.compute()) == 0
    assert events.dtypes.astype(str).to_dict() == runlens.History(tmp_path).events().dtypes.astype(str).to_dict()
    assert len(rd.steps(tmp_path / "nothing-here").compute()) == 0


def test_bad_arguments_are_clear_errors(store):
    with pytest.raises(InvalidArgument, match="rows_per_partition"):
        rd.events(store, rows_per_partition=0)
    with pytest.raises(InvalidFilter):
        rd.events(store, types=" , ")
    with pytest.raises(InvalidArgument, match="runlens.step_durations"):
        rd.step_durations(runlens.History(store).events("r-01"))
    with pytest.raises(InvalidArgument, match="storage_options"):
        rd.events(store, storage_options={"anon": True})
    with pytest.raises(StoreError, match="is a file"):
        rd.events(store / "manifest.json")
    with pytest.raises(StoreError, match="install the fsspec package"):
        rd.events("nosuchscheme://bucket/store")


def test_a_newer_store_format_at_a_url_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(StoreError, match="newer runlens"):
        rd.events(tmp_path.as_uri())


def test_a_sync_pointed_at_a_url_is_refused_with_what_to_do(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from runlens.cli import main

    with pytest.raises(StoreError, match="local folders only.*runlens.dask"):
        runlens.History("s3://bucket/dagster-history")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["sync", "--store", "s3://bucket/history", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "is a URL" in result.output
    assert not (tmp_path / "s3:").exists()


def test_runlens_dask_without_dask_names_the_extra():
    script = ("import sys; sys.modules['dask'] = None; sys.modules['dask.dataframe'] = None\n"
              "try:\n    import runlens.dask\n"
              "except ImportError as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.startswith("DaskNotInstalled") and "pip install 'runlens[dask]'" in out


def test_importing_runlens_or_its_history_does_not_import_dask():
    script = "import sys, runlens, runlens.history; runlens.History; print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "'dask'" not in out and "'distributed'" not in out


def test_client_reuses_the_current_one_or_connects_to_an_address(cluster):
    assert rd.client() is cluster
    other = rd.client(cluster.scheduler.address)
    try:
        assert other.scheduler_info()["workers"].keys() == cluster.scheduler_info()["workers"].keys()
    finally:
        other.close()


# ------------------------------------------------------------------- the README's scale-out query


def test_the_readmes_duckdb_weekly_p90_query_runs_on_the_store_as_it_lies(store):
    import duckdb

    readme = (ROOT / "README.md").read_text()
    query = re.search(r"<!-- weekly-p90 -->\s*```sql\n(.*?)```", readme, re.S).group(1)
    con = duckdb.connect()
    got = con.execute(query.replace("STORE", str(store))).df()
    steps = runlens.History(store).steps(job="etl_job")
    load = steps[(steps["step_key"] == "transform") & steps["duration"].notna()].copy()
    load["week"] = load["start"].dt.tz_localize(None).dt.to_period("W-SUN").dt.start_time
    expected = load.groupby("week")["duration"].quantile(0.9).dt.total_seconds()
    assert len(got) == len(expected) > 1
    assert pd.to_datetime(got["week"]).tolist() == expected.index.tolist()
    assert got["p90_seconds"].round(6).tolist() == expected.round(6).tolist()
