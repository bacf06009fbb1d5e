"""History at scale: the light sync (Dagster's stepStats), compaction, repair and migration.

Against :class:`tests.unit.history_fake.FakeDeployment`, whose ``stepStats`` are Dagster's own
replay of the events (``reference_step_stats``). Crash safety is tested as for a sync: a crash
at each commit point, in-process and by a process that sends itself SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import runlens
from runlens.history import maintenance
from runlens.history import store as store_module
from runlens.history import sync as sync_module
from tests.builders import T0, etl_run, record
from tests.unit.history_fake import FakeDeployment, deployment
from tests.unit.history_v1 import write_v1_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> FakeDeployment:
    return deployment()


def _logs_requests(fake: FakeDeployment) -> list[dict]:
    return [r for r in fake.requests if "logsForRun" in r["query"]]


def _frames(h: runlens.History) -> tuple[pd.DataFrame, ...]:
    return h.runs(), h.events(), h.steps()


def _assert_same_store(h: runlens.History, reference: runlens.History) -> None:
    for got, want in zip(_frames(h), _frames(reference), strict=True):
        pd.testing.assert_frame_equal(got, want)


def _parquet_files(root: Path, kind: str) -> list[Path]:
    return sorted((root / kind).glob("month=*/*.parquet"))


def _glob_rows(root: Path, kind: str, key: str) -> pd.DataFrame:
    """What a reader of ``*.parquet`` globs (DuckDB) sees, without runlens."""
    import duckdb

    if not _parquet_files(root, kind):
        return pd.DataFrame({"run_id": [], key: []})
    return duckdb.sql(f"SELECT run_id, {key} FROM read_parquet('{root / kind}/*/*.parquet')").df()


_real_crash_point = store_module.crash_point


class _Crash(BaseException):
    """What a kill does, in-process: nothing after the point runs."""


def _crash_at(monkeypatch, point: str, nth: int = 1) -> None:
    real = store_module.crash_point
    seen = {"n": 0}

    def crash_point(name: str) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] == nth:
                raise _Crash(name)
        real(name)

    monkeypatch.setattr(store_module, "crash_point", crash_point)


def _run_killed(script: str, root: Path, point: str) -> None:
    env = {**os.environ, store_module.KILL_ENV: point,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script, str(root)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr


# ------------------------------------------------------------------------------- light sync


def test_a_light_sync_stores_dagsters_step_stats_many_runs_a_request_and_no_event(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    report = h.sync(client, events=False)
    assert report.runs_light == 3 and report.runs_made_final == 0 and report.events_written == 0
    assert "3 runs' steps from Dagster's stepStats" in report.summary()
    assert not _logs_requests(fake)
    stats_requests = [r for r in fake.requests if "stepStats" in r["query"]]
    assert len(stats_requests) == 1  # the three finished runs in one runsOrError request
    assert sorted(stats_requests[0]["variables"]["filter"]["runIds"]) == ["run-a", "run-old", "run-x"]

    steps = h.steps()
    assert sorted(steps.attrs["light_runs"]) == ["run-a", "run-old", "run-x"]
    assert runlens.frame_kind(steps) == "steps"
    # Dagster's own numbers, as Client.step_stats reads them one run at a time.
    dagster = client.step_stats(["run-a", "run-x", "run-old"])
    mine = steps.set_index(["run_id", "step_key"]).sort_index()
    theirs = dagster.set_index(["run_id", "step_key"]).sort_index()
    assert list(mine.index) == list(theirs.index)
    # Float seconds to the millisecond: runlens truncates as Dagster truncates event timestamps,
    # Client.step_stats converts through pandas' float path; they agree within the millisecond.
    for column in ("start", "end"):
        assert mine[column].isna().tolist() == theirs[column].isna().tolist(), column
        gap = (mine[column] - theirs[column]).abs().dropna()
        assert (gap <= pd.Timedelta(milliseconds=1)).all(), column
    assert mine["attempts"].tolist() == theirs["attempts"].tolist()
    assert mine["status"].astype(str).tolist() == theirs["status"].astype(str).tolist()
    for ours, dagsters in zip(mine["attempt_spans"], theirs["attempt_spans"], strict=True):
        assert len(ours) == len(dagsters)
        for (a, b), (c, d) in zip(ours, dagsters, strict=True):
            assert abs(a - c) <= pd.Timedelta(milliseconds=1)
            assert (b is None and d is None) or abs(b - d) <= pd.Timedelta(milliseconds=1)
    # Exactly: the float seconds truncated to the millisecond, as Dagster truncates event timestamps.
    raw = {(r, s["stepKey"]): s for r in ("run-a", "run-x", "run-old") for s in fake.step_stats(r)}
    for (run_id, key), row in mine.iterrows():
        assert row["start"].value // 1_000_000 == int(raw[run_id, key]["startTime"] * 1000)
        end = raw[run_id, key]["endTime"]
        assert pd.isna(row["end"]) if end is None else row["end"].value // 1_000_000 == int(end * 1000)
    # The runs are rows with steps, not final: no events stored, read-through goes to the server.
    runs = h.runs().set_index("run_id")
    assert not runs.loc["run-a", "final"] and runs.loc["run-a", "events"] == 0
    assert len(h.events()) == 0 and h.final_events("run-a") is None
    assert h.sql("SELECT DISTINCT source FROM steps")["source"].tolist() == ["stepStats"]


@pytest.mark.parametrize("runs", [("run-a", "run-x"), ()])
def test_step_stats_become_a_steps_frame_with_its_dtypes(fake, runs):
    from runlens.frames import STEP_COLUMNS
    from runlens.history.light import steps_of_step_stats

    frame = steps_of_step_stats({r: fake.step_stats(r) for r in runs})
    assert list(frame.columns) == list(STEP_COLUMNS) and runlens.frame_kind(frame) == "steps"
    assert {c: str(frame[c].dtype) for c in frame} == {c: str(pd.Series([], dtype=d).dtype)
                                                       for c, d in STEP_COLUMNS.items()}
    pd.testing.assert_frame_equal(frame.iloc[:0], runlens.step_durations(fake.client().events("run-a")).iloc[:0],
                                  check_categorical=False, check_index_type=False)


def test_light_rows_lack_what_the_docs_say_against_the_events_steps(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client, events=False)
    for run_id in ("run-a", "run-x"):
        light = h.steps(run_id)
        light = light.set_index(light["step_key"].astype(str))
        full = runlens.step_durations(client.events(run_id))
        full = full.set_index(full["step_key"].astype(str))
        ran = full[full["status"] != "SKIPPED"]
        # The same steps ran, with the same times and attempts (to the millisecond) ...
        assert sorted(light.index) == sorted(ran.index)
        for column in ("start", "end", "duration", "attempts", "attempt_time"):
            pd.testing.assert_series_equal(light.loc[ran.index, column], ran[column], check_names=False)
        # ... but no split of the time, no error, and Dagster's statuses.
        for column in ("retry_wait", "worker_startup", "resource_init", "input_loading", "output_handling"):
            assert light[column].isna().all(), column
        assert light["error_class"].isna().all() and light["worker_spans"].map(len).eq(0).all()
    abandoned = runlens.step_durations(client.events("run-a"))
    assert (abandoned["status"] == "SKIPPED").any()  # the events know the abandoned steps; stepStats do not
    canceled = h.steps("run-x").set_index("step_key")
    assert canceled.loc["slow", "status"] == "FAILURE"  # interrupted: Dagster says FAILURE, the events CANCELED
    assert runlens.step_durations(client.events("run-x")).set_index("step_key").loc["slow", "status"] == "CANCELED"


def test_a_second_light_sync_asks_nothing_again_and_a_full_sync_upgrades_the_runs(tmp_path, fake):
    client = fake.client()
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(client, events=False)
    sent = len(fake.requests)
    again = h.sync(client, events=False)
    # The runs updated since the mark and the asset list: nothing else.
    assert again.runs_light == 0 and again.files_written == 0 and len(fake.requests) - sent == 2

    full = h.sync(client)
    assert full.runs_made_final == 3
    assert sorted({r["variables"]["runId"] for r in _logs_requests(fake)}) == ["run-a", "run-old", "run-x"]
    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())
    _assert_same_store(h, reference)
    assert h.steps().attrs["light_runs"] == []
    assert h.sql("SELECT DISTINCT source FROM steps")["source"].tolist() == ["events"]
    # No stepStats row is left in any file a glob reads.
    rows = _glob_rows(root, "steps", "step_key")
    assert len(rows) == len(h.steps()) and not rows.duplicated().any()


def test_a_run_that_ended_within_the_grace_period_is_light_synced_by_a_later_sync(tmp_path, fake):
    import time

    now_ms = int(time.time() * 1000)
    records = [record(0, "RUN_START", t0=now_ms - 2000), record(10, "STEP_START", "only", t0=now_ms - 2000),
               record(900, "STEP_SUCCESS", "only", t0=now_ms - 2000), record(1000, "RUN_SUCCESS", t0=now_ms - 2000)]
    fake.add("run-new", records)
    h = runlens.History(tmp_path / "store")
    report = h.sync(fake.client(), events=False, grace=60)
    assert report.runs_light == 3 and "run-new" not in h.steps().attrs["light_runs"]
    report = h.sync(fake.client(), events=False, grace=0)
    assert report.runs_light == 1 and h.steps("run-new")["step_key"].tolist() == ["only"]


@pytest.mark.parametrize("point", ["before-manifest", "after-manifest", "after-remove", "after-rename"])
def test_an_upgrade_killed_at_a_commit_point_is_completed_by_the_next_sync(tmp_path, fake, monkeypatch, point):
    monkeypatch.setattr(sync_module, "BATCH_RUNS", 1)
    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client(), events=False)
    _crash_at(monkeypatch, point, nth=2)  # in the second run's upgrade
    with pytest.raises(_Crash):
        h.sync(fake.client())
    monkeypatch.setattr(store_module, "crash_point", _real_crash_point)
    # Readers see one row per step, from one source, never both.
    steps = h.steps()
    assert not steps.duplicated(["run_id", "step_key"]).any()
    assert not _glob_rows(root, "steps", "step_key").duplicated().any()
    h.sync(fake.client())
    assert not list(root.rglob(".tmp-*"))
    _assert_same_store(h, reference)


def test_cli_sync_light_and_its_json_report(tmp_path, fake, monkeypatch):
    from runlens import cli

    monkeypatch.setattr(cli, "_client", lambda url: fake.client())
    store = str(tmp_path / "store")
    for flag in ("--no-events", "--light"):
        result = CliRunner().invoke(cli.main, ["sync", "--store", store, flag, "--json"])
        assert result.exit_code == 0, result.output
    assert not _logs_requests(fake)
    assert runlens.History(store).steps().attrs["light_runs"]
    result = CliRunner().invoke(cli.main, ["sync", "--store", store, "--light"])
    assert result.exit_code == 0 and result.output.startswith("Synced: ")


# ------------------------------------------------------------------------------- compaction


def _grow(fake: FakeDeployment, h: runlens.History, n: int) -> list:
    """``n`` syncs, each bringing one new run of November: one more small file per partition each."""
    reports = []
    for i in range(n):
        run_id = f"run-{i:03d}"
        t0 = T0 + 600_000 + i * 60_000
        fake.add(run_id, etl_run(run_id, t0=t0).records, status="FAILURE")
        fake.runs[run_id]["updateTime"] = max(r["updateTime"] for r in fake.runs.values()) + 5
        reports.append(h.sync(fake.client()))
    return reports


def _files_per_partition(h: runlens.History) -> dict[tuple[str, str], int]:
    manifest = json.loads((Path(h.path) / "manifest.json").read_text())
    counts: dict[tuple[str, str], int] = {}
    for kind in ("events", "steps"):
        for entry in manifest["files"][kind]:
            counts[(kind, entry["month"])] = counts.get((kind, entry["month"]), 0) + 1
    return counts


def test_many_syncs_keep_the_file_count_per_partition_bounded_and_the_rows_the_same(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(maintenance, "COMPACT_AT", 3)
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client())
    reports = _grow(fake, h, 9)
    assert sum(r.files_compacted for r in reports) > 0
    assert any("small files compacted" in r.summary() for r in reports)
    assert max(_files_per_partition(h).values()) <= 3 + 1
    assert len(_parquet_files(root, "events")) == sum(n for (k, _), n in _files_per_partition(h).items()
                                                      if k == "events")  # nothing left behind
    reference = runlens.History(tmp_path / "reference")
    monkeypatch.setattr(maintenance, "COMPACT_AT", 10_000)
    reference.sync(fake.client())
    _assert_same_store(h, reference)
    for run_id in ("run-a", "run-004", "run-008"):  # a run's lookup goes by its (moved) files
        pd.testing.assert_frame_equal(h.events(run_id), fake.client().events(run_id))


def test_compact_merges_every_partition_into_one_file_and_readers_see_the_same_store(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(maintenance, "COMPACT_AT", 10_000)
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client())
    _grow(fake, h, 4)
    before = _frames(h)
    assert max(_files_per_partition(h).values()) == 5
    report = h.compact()
    assert report.files_merged == 10 and report.files_after == report.files_before - 10 + 2
    assert "10 files merged" in report.summary()
    assert set(_files_per_partition(h).values()) == {1}
    for got, want in zip(_frames(h), before, strict=True):
        pd.testing.assert_frame_equal(got, want)
    assert h.compact().files_merged == 0  # nothing left to merge


def _grown_store(tmp_path: Path, fake: FakeDeployment, monkeypatch) -> tuple[runlens.History, runlens.History]:
    """A store of four syncs, not compacted (four files in November's partitions), and the reference
    store one sync makes of the same runs."""
    monkeypatch.setattr(maintenance, "COMPACT_AT", 10_000)
    h = runlens.History(tmp_path / "store")
    h.sync(fake.client())
    _grow(fake, h, 3)
    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())
    return h, reference


COMPACT_POINTS = ["compact-before-temp-fsync", "compact-before-manifest", "compact-after-manifest",
                  "compact-after-remove", "compact-after-rename"]


@pytest.mark.parametrize("point", COMPACT_POINTS)
def test_a_compaction_killed_at_a_commit_point_leaves_a_readable_store_the_next_one_completes(
        tmp_path, fake, monkeypatch, point):
    h, reference = _grown_store(tmp_path, fake, monkeypatch)
    root = Path(h.path)
    _crash_at(monkeypatch, point)
    with pytest.raises(_Crash):
        h.compact()
    monkeypatch.setattr(store_module, "crash_point", _real_crash_point)
    # runlens's readers see the last commit whole; a glob reader never sees a row twice.
    _assert_same_store(h, reference)
    events = _glob_rows(root, "events", "seq")
    assert not events.duplicated().any() and len(events) <= len(reference.events())
    assert not _glob_rows(root, "steps", "step_key").duplicated().any()
    h.sync(fake.client())  # completes the compaction (recovery) or leaves it for the next
    h.compact()
    assert not list(root.rglob(".tmp-*"))
    assert set(_files_per_partition(h).values()) == {1}
    _assert_same_store(h, reference)
    assert len(_glob_rows(root, "events", "seq")) == len(reference.events())


_KILLED_COMPACT = """
import sys
import runlens
runlens.History(sys.argv[1]).compact()
"""


@pytest.mark.parametrize("point", ["compact-before-manifest", "compact-after-manifest", "compact-after-remove"])
def test_a_compaction_process_killed_by_sigkill_is_completed_by_the_next_one(tmp_path, fake, monkeypatch, point):
    h, reference = _grown_store(tmp_path, fake, monkeypatch)
    root = Path(h.path)
    _run_killed(_KILLED_COMPACT, root, point)
    _assert_same_store(h, reference)
    h.compact()  # the killed process's lock went with it
    assert not list(root.rglob(".tmp-*")) and set(_files_per_partition(h).values()) == {1}
    _assert_same_store(h, reference)


def test_a_reader_whose_files_a_compaction_removed_reads_again(tmp_path, fake, monkeypatch):
    from runlens.history import query

    monkeypatch.setattr(maintenance, "COMPACT_AT", 10_000)
    h = runlens.History(tmp_path / "store")
    h.sync(fake.client())
    _grow(fake, h, 2)
    expected = h.events()
    real = query.read_events
    calls = []

    def compacted_meanwhile(store, manifest, **kwargs):
        if not calls:
            runlens.History(h.path).compact()  # between the reader's manifest and its files
        calls.append(1)
        return real(store, manifest, **kwargs)

    monkeypatch.setattr(query, "read_events", compacted_meanwhile)
    pd.testing.assert_frame_equal(h.events(), expected)
    assert len(calls) == 2


def test_cli_sync_compact(tmp_path, fake, monkeypatch):
    from runlens import cli

    monkeypatch.setattr(cli, "_client", lambda url: fake.client())
    monkeypatch.setattr(maintenance, "COMPACT_AT", 10_000)
    store = tmp_path / "store"
    h = runlens.History(store)
    h.sync(fake.client())
    _grow(fake, h, 2)
    sent = len(fake.requests)
    result = CliRunner().invoke(cli.main, ["sync", "--store", str(store), "--compact", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["files_merged"] == 6  # 3 events and 3 steps files of November
    assert len(fake.requests) == sent  # no request
    result = CliRunner().invoke(cli.main, ["sync", "--store", str(store), "--compact", "--repair"])
    assert result.exit_code == 2 and "give one" in result.output


# ----------------------------------------------------------------------------------- repair


def _store_and_reference(tmp_path: Path, fake: FakeDeployment) -> tuple[runlens.History, runlens.History]:
    h = runlens.History(tmp_path / "store")
    h.sync(fake.client())
    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())
    return h, reference


def test_repair_drops_a_truncated_events_file_and_refetches_only_its_runs(tmp_path, fake):
    h, reference = _store_and_reference(tmp_path, fake)
    root = Path(h.path)
    part = root / "events/month=2026-11/part-000001.parquet"
    part.write_bytes(part.read_bytes()[:200])
    with pytest.raises(runlens.StoreError, match=r"corrupt or truncated.*runlens sync --repair"):
        h.events()
    sent = len(_logs_requests(fake))
    report = h.repair(fake.client())
    assert list(report.problems) == ["events/month=2026-11/part-000001.parquet"]
    assert "corrupt or truncated" in report.problems["events/month=2026-11/part-000001.parquet"]
    assert sorted(report.runs_refetched) == ["run-a", "run-x"]
    assert sorted(r["variables"]["runId"] for r in _logs_requests(fake)[sent:]) == ["run-a", "run-x"]
    assert "1 broken file(s) dropped" in report.summary() and "2 runs refetched" in report.summary()
    _assert_same_store(h, reference)
    assert h.repair(fake.client()).problems == {}  # whole now


def test_repair_recomputes_the_steps_of_a_missing_steps_file_from_the_stored_events(tmp_path, fake):
    h, reference = _store_and_reference(tmp_path, fake)
    (Path(h.path) / "steps/month=2026-10/part-000001.parquet").unlink()
    with pytest.raises(runlens.StoreError, match=r"file is missing.*runlens sync --repair"):
        h.steps()
    sent = len(_logs_requests(fake))
    report = h.repair(fake.client())
    assert report.problems == {"steps/month=2026-10/part-000001.parquet": "missing"}
    assert report.steps_recomputed == ["run-old"] and report.runs_refetched == []
    assert len(_logs_requests(fake)) == sent  # nothing refetched
    _assert_same_store(h, reference)


def test_repair_rewrites_a_corrupt_runs_file_and_a_row_count_mismatch_is_broken_too(tmp_path, fake):
    import pyarrow.parquet as pq

    h, reference = _store_and_reference(tmp_path, fake)
    root = Path(h.path)
    (root / "runs/runs.parquet").write_bytes(b"not parquet at all")
    steps = root / "steps/month=2026-11/part-000001.parquet"
    table = pq.read_table(steps)
    pq.write_table(table.slice(0, 2), steps)  # readable, but rows are missing
    report = h.repair(fake.client())
    assert set(report.problems) == {"runs/runs.parquet", "steps/month=2026-11/part-000001.parquet"}
    assert "holds 2 rows" in report.problems["steps/month=2026-11/part-000001.parquet"]
    _assert_same_store(h, reference)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_repair_rebuilds_a_store_whose_manifest_is_lost(tmp_path, fake, damage):
    h, reference = _store_and_reference(tmp_path, fake)
    manifest = Path(h.path) / "manifest.json"
    if damage == "missing":
        manifest.unlink()
    else:
        manifest.write_text("{not json")
    with pytest.raises(runlens.StoreError, match="runlens sync --repair"):
        h.runs()
    report = h.repair(fake.client())
    assert report.rebuilt and "manifest.json" in report.problems and "rebuilt from the server" in report.summary()
    _assert_same_store(h, reference)


def test_repair_never_rebuilds_a_store_of_a_newer_runlens(tmp_path, fake):
    h, _ = _store_and_reference(tmp_path, fake)
    manifest_path = Path(h.path) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = store_module.FORMAT_VERSION + 1
    manifest_path.write_text(json.dumps(manifest))
    files = sorted(Path(h.path).rglob("*.parquet"))
    with pytest.raises(runlens.StoreError, match="written by a newer runlens"):
        h.repair(fake.client())
    assert sorted(Path(h.path).rglob("*.parquet")) == files


def test_repair_of_a_light_store_refetches_the_stepstats(tmp_path, fake):
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client(), events=False)
    before = h.steps()
    (root / "steps/month=2026-11/part-000001.parquet").unlink()
    report = h.repair(fake.client(), events=False)
    assert sorted(report.runs_refetched) == ["run-a", "run-x"]
    pd.testing.assert_frame_equal(h.steps(), before)
    assert sorted(h.steps().attrs["light_runs"]) == ["run-a", "run-old", "run-x"]


def test_cli_sync_repair(tmp_path, fake, monkeypatch):
    from runlens import cli

    monkeypatch.setattr(cli, "_client", lambda url: fake.client())
    h, reference = _store_and_reference(tmp_path, fake)
    (Path(h.path) / "events/month=2026-10/part-000001.parquet").unlink()
    result = CliRunner().invoke(cli.main, ["sync", "--store", h.path, "--repair", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["problems"] == {"events/month=2026-10/part-000001.parquet": "missing"}
    assert doc["runs_refetched"] == ["run-old"] and doc["sync"]["runs_made_final"] == 1
    _assert_same_store(h, reference)
    result = CliRunner().invoke(cli.main, ["sync", "--store", h.path, "--repair"])
    assert result.exit_code == 0 and result.output.startswith("Repair: every file of the store is whole")


# -------------------------------------------------------------------------------- migration


def test_a_store_of_the_previous_format_is_refused_by_readers_with_what_to_run(tmp_path, fake):
    root = write_v1_store(tmp_path / "old", fake.client())
    h = runlens.History(root)
    for read in (h.runs, h.events, h.steps, lambda: h.sql("SELECT 1")):
        with pytest.raises(runlens.StoreError, match=r"format version 1, written by an older runlens.*"
                                                     r"runlens sync --migrate"):
            read()


def test_migrate_brings_a_previous_format_store_to_this_one_in_place(tmp_path, fake):
    import pyarrow.parquet as pq

    root = write_v1_store(tmp_path / "old", fake.client())
    files = sorted(p.relative_to(root) for p in root.rglob("*.parquet"))
    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())
    h = runlens.History(root)
    assert h.migrate() == 1
    assert sorted(p.relative_to(root) for p in root.rglob("*.parquet")) == files  # in place
    assert json.loads((root / "manifest.json").read_text())["format_version"] == store_module.FORMAT_VERSION
    for path in _parquet_files(root, "steps"):
        assert set(pq.read_table(path).column("source").to_pylist()) == {"events"}
    _assert_same_store(h, reference)
    assert h.migrate() == store_module.FORMAT_VERSION  # nothing to do


def test_a_sync_migrates_a_previous_format_store_first(tmp_path, fake):
    root = write_v1_store(tmp_path / "old", fake.client())
    fake.add("run-new", [record(0, "RUN_START", t0=T0 + 500_000), record(5, "RUN_SUCCESS", t0=T0 + 500_000)])
    fake.runs["run-new"]["updateTime"] = max(r["updateTime"] for r in fake.runs.values()) + 5
    h = runlens.History(root)
    report = h.sync(fake.client())
    assert report.runs_made_final == 1
    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())
    _assert_same_store(h, reference)


@pytest.mark.parametrize("point", ["migrate-before-temp-fsync", "migrate-before-manifest", "migrate-after-manifest",
                                   "migrate-after-rename"])
def test_a_migration_killed_at_a_commit_point_is_completed_by_the_next_sync(tmp_path, fake, monkeypatch, point):
    root = write_v1_store(tmp_path / "old", fake.client())
    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())
    h = runlens.History(root)
    version = _migrate_killed(monkeypatch, h, point)
    if version == store_module.FORMAT_VERSION:  # committed: readable as it lies
        _assert_same_store(h, reference)
    h.sync(fake.client())
    assert not list(root.rglob(".tmp-*"))
    _assert_same_store(h, reference)


def _migrate_killed(monkeypatch, h: runlens.History, point: str) -> int:
    """``h.migrate()`` crashed at ``point`` (in-process); the format version the store is left with."""
    _crash_at(monkeypatch, point)
    with pytest.raises(_Crash):
        h.migrate()
    monkeypatch.setattr(store_module, "crash_point", _real_crash_point)
    return json.loads((Path(h.path) / "manifest.json").read_text())["format_version"]


_KILLED_MIGRATE = """
import sys
import runlens
runlens.History(sys.argv[1]).migrate()
"""


def test_a_migration_process_killed_by_sigkill_is_completed_by_the_next_one(tmp_path, fake):
    root = write_v1_store(tmp_path / "old", fake.client())
    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())
    _run_killed(_KILLED_MIGRATE, root, "migrate-after-manifest")
    h = runlens.History(root)
    _assert_same_store(h, reference)  # committed, its renames pending: read where they are
    assert h.migrate() == store_module.FORMAT_VERSION
    assert not list(root.rglob(".tmp-*"))
    _assert_same_store(h, reference)


def test_cli_sync_migrate(tmp_path, fake, monkeypatch):
    from runlens import cli

    monkeypatch.setattr(cli, "_client", lambda url: fake.client())
    root = write_v1_store(tmp_path / "old", fake.client())
    sent = len(fake.requests)
    result = CliRunner().invoke(cli.main, ["sync", "--store", str(root), "--migrate"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Migrated: format 1 to {store_module.FORMAT_VERSION}")
    assert len(fake.requests) == sent
    result = CliRunner().invoke(cli.main, ["sync", "--store", str(root), "--migrate", "--json"])
    assert json.loads(result.output)["format_version_before"] == store_module.FORMAT_VERSION


def test_the_light_sync_benchmark_compares_the_light_rows_with_the_events_rows(tmp_path, fake):
    from benchmarks.bench_light_sync import same_steps

    light, full = runlens.History(tmp_path / "light"), runlens.History(tmp_path / "full")
    light.sync(fake.client(), events=False)
    full.sync(fake.client())
    assert same_steps(light.steps(), full.steps())
    shifted = light.steps()
    shifted.loc[0, "start"] += pd.Timedelta(milliseconds=1)
    assert not same_steps(shifted, full.steps())
    assert not same_steps(light.steps().iloc[:0], full.steps())
