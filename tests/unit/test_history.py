"""History: sync into a local Parquet store, read it back exactly, and survive crashes and misuse.

Against :class:`tests.unit.history_fake.FakeDeployment` (recorded-style answers through
``MockTransport``); the live test syncs a real Dagster.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import runlens
from runlens.filters import filter_events
from runlens.frames import concat_events
from runlens.history import store as store_module
from tests.builders import T0, live_run, record
from tests.unit.history_fake import FakeDeployment, deployment


def _logs_requests(fake: FakeDeployment) -> list[dict]:
    return [r for r in fake.requests if "logsForRun" in r["query"]]


def _runs_requests(fake: FakeDeployment) -> list[dict]:
    return [r for r in fake.requests if "runsOrError" in r["query"]]


def _data_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))


@pytest.fixture
def fake() -> FakeDeployment:
    return deployment()


# ------------------------------------------------------------------------- sync and read back


def test_first_sync_stores_runs_events_and_steps_that_equal_the_servers(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    report = h.sync(client)
    assert (report.runs_discovered, report.runs_updated, report.runs_made_final) == (4, 4, 3)
    assert report.events_written == sum(len(fake.events[r]) for r in ("run-a", "run-x", "run-old"))
    assert "4 runs discovered" in repr(report)
    for run_id in ("run-a", "run-x", "run-old"):
        pd.testing.assert_frame_equal(h.events(run_id), client.events(run_id))
        expected = runlens.step_durations(client.events(run_id))
        pd.testing.assert_frame_equal(h.steps(run_id), expected)
    runs = h.runs()
    server = client.runs()
    assert runs["run_id"].tolist() == server["run_id"].tolist()  # newest first, as the server lists them
    pd.testing.assert_frame_equal(runs[list(server.columns)], server)
    # A queued run is a run row only.
    queued = runs.set_index("run_id").loc["run-q"]
    assert queued["status"] == "QUEUED" and not queued["final"] and queued["events"] == 0
    assert len(h.events("run-q")) == 0
    assert "run-q" not in [r["variables"]["runId"] for r in _logs_requests(fake)]


def test_layout_is_hive_partitioned_by_the_runs_creation_month_and_sorted(tmp_path, fake):
    import pyarrow.parquet as pq

    root = tmp_path / "store"
    runlens.History(root).sync(fake.client())
    assert _data_files(root) == [
        "events/month=2026-10/part-000001.parquet", "events/month=2026-11/part-000001.parquet",
        "runs/runs.parquet", "steps/month=2026-10/part-000001.parquet", "steps/month=2026-11/part-000001.parquet"]
    table = pq.read_table(root / "events/month=2026-11/part-000001.parquet")
    keys = list(zip(table.column("job_name").to_pylist(), table.column("run_id").to_pylist(),
                    table.column("seq").to_pylist()))
    assert keys == sorted(keys, key=lambda k: (k[0], k[1], k[2])) or keys == sorted(keys)
    assert pq.ParquetFile(root / "events/month=2026-11/part-000001.parquet").metadata.row_group(0) \
        .column(0).compression == "ZSTD"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["format_version"] == store_module.FORMAT_VERSION
    assert manifest["steps_version"] == runlens.steps.STEPS_VERSION if hasattr(runlens, "steps") else True
    assert manifest["runs"]["run-a"]["final"] and manifest["runs"]["run-a"]["cursor"]


def test_a_second_sync_with_nothing_new_sends_two_small_requests_and_writes_nothing(tmp_path, fake):
    client = fake.client()
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(client)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and p.name != ".lock"}
    sent = len(fake.requests)
    started = time.perf_counter()
    report = h.sync(client)
    assert time.perf_counter() - started < 0.5
    # The runs updated since the mark, and the asset list (no asset moved: no asset event is asked for).
    assert len(fake.requests) - sent <= 2
    assert "updatedAfter" in _runs_requests(fake)[-1]["variables"]["filter"]
    assert ["assetsOrError" in r["query"] for r in fake.requests[sent:]] == [False, True]
    assert (report.runs_updated, report.runs_made_final, report.events_written, report.files_written) == (0, 0, 0, 0)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and p.name != ".lock"} == before


def test_a_run_that_ends_later_is_a_row_until_then_and_gets_its_events_once(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    live = live_run("run-live", t0=T0 + 300_000)
    fake.add("run-live", live.records, status="STARTED")
    h.sync(client)
    assert "run-live" not in [r["variables"]["runId"] for r in _logs_requests(fake)]
    assert h.runs().set_index("run_id").loc["run-live", "status"] == "STARTED"
    fake.finish("run-live", "SUCCESS", [record(9000, "RUN_SUCCESS", t0=T0 + 300_000),
                                        record(9050, "ENGINE_EVENT", t0=T0 + 300_000)])
    report = h.sync(client)
    assert report.runs_made_final == 1 and report.runs_updated == 1
    assert h.runs().set_index("run_id").loc["run-live", "status"] == "SUCCESS"
    pd.testing.assert_frame_equal(h.events("run-live"), client.events("run-live"))
    fetched = len([r for r in _logs_requests(fake) if r["variables"]["runId"] == "run-live"])
    h.sync(client)
    h.sync(client)
    assert len([r for r in _logs_requests(fake) if r["variables"]["runId"] == "run-live"]) == fetched


def test_a_run_ended_within_the_grace_period_is_topped_up_from_its_cursor(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    now_ms = int(time.time() * 1000)
    records = [record(0, "RUN_START", t0=now_ms - 2000), record(10, "STEP_START", "only", t0=now_ms - 2000),
               record(900, "STEP_SUCCESS", "only", t0=now_ms - 2000), record(1000, "RUN_SUCCESS", t0=now_ms - 2000)]
    fake.add("run-new", records, status="SUCCESS")
    h.sync(client, grace=60)
    state = json.loads((tmp_path / "store/manifest.json").read_text())["runs"]["run-new"]
    assert not state["final"] and state["events"] == 4
    # The ENGINE_EVENT Dagster stores after RUN_SUCCESS arrives later.
    fake.events["run-new"].append(record(1500, "ENGINE_EVENT", message="Process for run exited", t0=now_ms - 2000))
    report = h.sync(client, grace=0)
    topup = [r for r in _logs_requests(fake) if r["variables"]["runId"] == "run-new"][-1]
    assert topup["variables"]["afterCursor"] == state["cursor"]
    assert report.runs_made_final == 1 and report.events_written == 1
    pd.testing.assert_frame_equal(h.events("run-new"), client.events("run-new"))
    pd.testing.assert_frame_equal(h.steps("run-new"), runlens.step_durations(client.events("run-new")))


def test_runs_in_the_overlap_before_the_mark_are_not_doubled_and_none_is_skipped(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    mark = json.loads((tmp_path / "store/manifest.json").read_text())["marks"]["*"]["updated"]
    # A run whose whole-second update time equals the mark: a strict bound from the mark itself would miss it.
    fake.add("run-tie", [record(0, "RUN_START", t0=T0 + 400_000), record(10, "RUN_SUCCESS", t0=T0 + 400_000)])
    fake.runs["run-tie"]["updateTime"] = mark
    report = h.sync(client)
    assert report.runs_discovered >= 2  # the overlap brought back stored runs too
    assert report.runs_updated == 1 and report.runs_made_final == 1
    events = h.events()
    assert not events.duplicated(["run_id", "seq"]).any()
    assert len(events) == sum(len(v) for v in fake.events.values())
    assert sorted(h.runs()["run_id"]) == sorted(fake.runs)


def test_job_and_since_scope_discovery(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client, job="slow_job")
    assert fake.requests[0]["variables"]["filter"]["pipelineName"] == "slow_job"
    assert h.runs()["run_id"].tolist() == ["run-x"]
    h.sync(client, job="etl_job", since=datetime(2026, 11, 1, tzinfo=UTC))
    assert sorted(h.runs()["run_id"]) == ["run-a", "run-q", "run-x"]  # run-old is from October


# ----------------------------------------------------------------------------------- queries


def test_event_queries_push_filters_down_and_keep_the_cli_semantics(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    everything = concat_events([client.events(r) for r in ("run-old", "run-a", "run-x")])  # creation order
    stored = h.events()
    # The same rows and dtypes; categories of several runs are sorted rather than in order of appearance.
    pd.testing.assert_frame_equal(stored, everything, check_categorical=False)
    for column in ("step_key", "kind", "error_class"):
        assert list(stored[column].cat.categories) == sorted(everything[column].cat.categories)
    for kwargs in ({"types": "step_failure,RUN_FAILURE"}, {"step": "PROCESS[", "levels": "error"},
                   {"types": ["PIPELINE_FAILURE"]}, {"levels": "WARNING"}, {"step": ["load", "report"]}):
        expected = filter_events(everything, **kwargs).reset_index(drop=True)
        pd.testing.assert_frame_equal(h.events(**kwargs), expected, check_categorical=False)
        assert h.events(**kwargs).attrs["filtered"] is True
    assert set(h.events(job="slow_job")["run_id"]) == {"run-x"}
    assert set(h.events(["run-a", "run-x"], types="STEP_START")["run_id"]) == {"run-a", "run-x"}
    recent = h.events(since=datetime(2026, 11, 1, tzinfo=UTC))
    assert set(recent["run_id"]) == {"run-a", "run-x"}
    cut = pd.Timestamp(T0 + 5000, unit="ms", tz="UTC")
    assert (h.events("run-a", until=cut)["timestamp"] < cut).all()
    assert len(h.events("run-a", since=cut)) + len(h.events("run-a", until=cut)) == len(fake.events["run-a"])
    assert len(h.events("no-such-run")) == 0


def test_runs_and_steps_queries(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    assert set(h.runs(job="etl_job")["run_id"]) == {"run-a", "run-old", "run-q"}
    assert h.runs(statuses="FAILURE,CANCELED")["status"].astype(str).tolist() == ["CANCELED", "FAILURE", "FAILURE"]
    assert set(h.runs(since="2026-11-01")["run_id"]) == {"run-a", "run-x", "run-q"}
    assert set(h.runs(until="2026-11-01")["run_id"]) == {"run-old"}
    steps = h.steps(job="etl_job")
    assert set(steps["run_id"]) == {"run-a", "run-old"}
    assert set(h.steps(job="etl_job", since="2026-11-01")["run_id"]) == {"run-a"}
    trend = runlens.duration_trend(steps, h.runs(job="etl_job"))
    assert set(trend["run_id"]) == {"run-a", "run-old"}


def test_sql_over_the_runs_events_and_steps_views(tmp_path, fake):
    h = runlens.History(tmp_path / "store")
    assert h.sql("SELECT count(*) AS n FROM events")["n"].tolist() == [0]  # an empty store has the views too
    h.sync(fake.client())
    counts = h.sql("SELECT (SELECT count(*) FROM runs) r, (SELECT count(*) FROM events) e, "
                   "(SELECT count(*) FROM steps) s")
    assert counts.iloc[0].tolist() == [4, len(h.events()), len(h.steps())]
    medians = h.sql("SELECT step_key, median(duration) AS d FROM steps WHERE step_key = 'transform' GROUP BY 1")
    assert medians["d"].tolist() == [3.2]
    with pytest.raises(runlens.InvalidArgument, match="DuckDB could not run the query"):
        h.sql("SELECT nope FROM events")


def test_sql_without_duckdb_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(runlens.StoreError, match=r"pip install 'runlens\[history\]'"):
        runlens.History(tmp_path).sql("SELECT 1")


def test_an_empty_or_missing_store_reads_as_empty_frames(tmp_path):
    h = runlens.History(tmp_path / "nothing-yet")
    assert len(h.runs()) == 0 and len(h.events()) == 0 and len(h.steps()) == 0
    assert runlens.frame_kind(h.events()) == "events" and runlens.frame_kind(h.steps()) == "steps"
    assert runlens.frame_kind(h.runs()) == "runs"
    assert "empty" in repr(h)


# ------------------------------------------------------------------------ client read-through


def test_client_reads_final_runs_through_the_store_and_others_from_the_server(tmp_path, fake):
    h = runlens.History(tmp_path / "store")
    fake.add("run-live", live_run("run-live", t0=T0 + 300_000).records, status="STARTED")
    h.sync(fake.client())
    client = runlens.Client(transport=runlens.MockTransport(fake.handle), progress=False, history=h)
    plain = fake.client()
    sent = len(_logs_requests(fake))
    stored = client.events("run-a")
    assert len(_logs_requests(fake)) == sent  # no request
    pd.testing.assert_frame_equal(stored, plain.events("run-a"))
    assert stored.attrs["complete"] and stored.attrs["cursor"]
    filtered = client.events("run-a", types="STEP_FAILURE")
    pd.testing.assert_frame_equal(filtered, plain.events("run-a", types="STEP_FAILURE"))
    sent = len(_logs_requests(fake))
    client.events("run-live")  # not final: the server
    client.events("run-a", limit=5)  # a limit needs the server's cursor
    assert len(_logs_requests(fake)) > sent


def test_a_store_of_another_deployment_is_not_read_through_nor_synced(tmp_path, fake):
    h = runlens.History(tmp_path / "store")
    h.sync(fake.client())
    other = runlens.Client(transport=runlens.MockTransport(fake.handle, url="http://other:3000/graphql"),
                           progress=False, history=h)
    sent = len(_logs_requests(fake))
    other.events("run-a")
    assert len(_logs_requests(fake)) > sent
    with pytest.raises(runlens.StoreError, match="holds runs of http://dagster.test/graphql"):
        h.sync(other)


# ---------------------------------------------------------------------- nothing lost, nothing doubled


class _Crash(BaseException):
    """What a kill does to the sync, in-process: nothing after the point runs."""


def _frames(h: runlens.History) -> tuple[pd.DataFrame, ...]:
    runs = h.runs().drop(columns=[])
    return runs, h.events(), h.steps()


@pytest.mark.parametrize("point", ["before-temp-fsync", "before-manifest", "after-manifest", "after-rename"])
@pytest.mark.parametrize("crash_batch", [1, 2])
def test_a_sync_killed_at_a_commit_point_is_completed_by_the_next_one(tmp_path, fake, monkeypatch, point,
                                                                         crash_batch):
    from runlens.history import sync as sync_module

    monkeypatch.setattr(sync_module, "BATCH_RUNS", 1)
    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())

    root = tmp_path / "store"
    h = runlens.History(root)
    seen = {"n": 0}
    real = store_module.crash_point

    def crash_point(name: str) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] == crash_batch:
                raise _Crash(name)
        real(name)

    monkeypatch.setattr(store_module, "crash_point", crash_point)
    with pytest.raises(_Crash):
        h.sync(fake.client())
    monkeypatch.setattr(store_module, "crash_point", real)
    # Readers see a committed state: no half-written or orphaned file among the *.parquet ones.
    manifest = json.loads((root / "manifest.json").read_text()) if (root / "manifest.json").exists() else None
    listed = set() if manifest is None else {e["path"] for k in ("events", "steps") for e in manifest["files"][k]} \
        | ({manifest["files"]["runs"]} if manifest["files"]["runs"] else set())
    assert set(_data_files(root)) <= listed
    if manifest is not None:
        h.runs(), h.events(), h.steps()  # readable as it lies, pending renames included
    h.sync(fake.client())
    assert not list(root.rglob(".tmp-*"))
    for got, want in zip(_frames(h), _frames(reference), strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_the_kill_hook_is_read_from_the_environment(monkeypatch):
    killed = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: killed.append((pid, sig)))
    monkeypatch.setenv(store_module.KILL_ENV, "after-manifest")
    store_module.crash_point("before-manifest")
    store_module.crash_point("after-manifest")
    assert len(killed) == 1 and killed[0][0] == os.getpid()


def test_a_second_sync_at_once_fails_with_a_clear_message(tmp_path, fake):
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client())
    fd = os.open(root / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a sync in another process holds it
        with pytest.raises(runlens.StoreLocked, match="another sync is writing to the History store"):
            h.sync(fake.client())
    finally:
        os.close(fd)
    h.sync(fake.client())  # the lock went with its holder


def test_a_store_of_a_newer_format_is_refused(tmp_path, fake):
    root = tmp_path / "store"
    runlens.History(root).sync(fake.client())
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["format_version"] = store_module.FORMAT_VERSION + 1
    (root / "manifest.json").write_text(json.dumps(manifest))
    h = runlens.History(root)
    for call in (h.runs, h.events, lambda: h.sync(fake.client())):
        with pytest.raises(runlens.StoreError, match="written by a newer runlens"):
            call()


def test_a_corrupt_or_missing_file_is_named(tmp_path, fake):
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client())
    part = root / "events/month=2026-11/part-000001.parquet"
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises(runlens.StoreError, match=r"month=2026-11/part-000001\.parquet.*corrupt or truncated"):
        h.events()
    with pytest.raises(runlens.StoreError, match=r"month=2026-11/part-000001\.parquet.*corrupt or truncated"):
        h.sql("SELECT count(*) FROM events")
    assert len(h.events(job="etl_job", until="2026-11-01")) > 0  # other months still read
    part.unlink()
    with pytest.raises(runlens.StoreError, match=r"lists .*part-000001\.parquet but the file is missing"):
        h.events()
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(runlens.StoreError, match="not a runlens History manifest"):
        h.runs()


def test_a_path_that_is_a_file_or_not_writable_is_refused(tmp_path, fake, monkeypatch):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(runlens.StoreError, match="is a file, not a folder"):
        runlens.History(a_file)
    locked = tmp_path / "readonly"
    locked.mkdir()
    os.chmod(locked, 0o500)
    if os.geteuid() == 0:
        # root writes through any mode bits (CI runs as root): refuse writes under the
        # folder as a read-only mount would, so the same error path runs.
        real_open, real_mkdir = os.open, os.mkdir

        def refuse(real):
            def call(path, *args, **kwargs):
                if str(path).startswith(str(locked)):
                    raise PermissionError(errno.EACCES, "Permission denied", str(path))
                return real(path, *args, **kwargs)
            return call

        monkeypatch.setattr(os, "open", refuse(real_open))
        monkeypatch.setattr(os, "mkdir", refuse(real_mkdir))
    try:
        with pytest.raises(runlens.StoreError, match="cannot write to the History store"):
            runlens.History(locked / "store").sync(fake.client())
        with pytest.raises(runlens.StoreError, match="cannot write to the History store"):
            runlens.History(locked).sync(fake.client())
    finally:
        os.chmod(locked, 0o700)
    assert list(locked.iterdir()) == []


def test_a_network_failure_keeps_what_was_committed(tmp_path, fake, monkeypatch):
    from runlens.history import sync as sync_module

    monkeypatch.setattr(sync_module, "BATCH_RUNS", 1)
    handle = fake.handle
    fetched = []

    def flaky(body):
        if "logsForRun" in body["query"]:
            fetched.append(body["variables"]["runId"])
            if len(set(fetched)) > 1:
                return 503, "unavailable"
        return handle(body)

    h = runlens.History(tmp_path / "store")
    with pytest.raises(runlens.TransportError, match="committed 1 batches, 1 runs made final, before failing; 2 finished runs still to fetch"):
        h.sync(runlens.Client(transport=runlens.MockTransport(flaky), progress=False))
    assert h.runs()["final"].sum() == 1
    report = h.sync(fake.client())
    assert report.runs_made_final == 2
    assert len(h.events()) == sum(len(v) for v in fake.events.values())


# ----------------------------------------------------------------------------------------- CLI


def test_cli_sync_prints_a_summary_or_the_json_report(tmp_path, fake, monkeypatch):
    from runlens import cli

    monkeypatch.setattr(cli, "_client", lambda url: fake.client())
    store = str(tmp_path / "store")
    result = CliRunner().invoke(cli.main, ["sync", "--store", store, "--since", "90d"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Synced: ") and "made final" in result.output
    result = CliRunner().invoke(cli.main, ["sync", "--store", store, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["runs_updated"] == 0 and report["events_written"] == 0


def test_cli_sync_errors_use_the_exit_codes(tmp_path, fake, monkeypatch):
    from runlens import cli

    monkeypatch.setattr(cli, "_client", lambda url: fake.client())
    result = CliRunner().invoke(cli.main, ["sync", "--store", str(tmp_path), "--since", "lately"])
    assert result.exit_code == 2 and "--since must be a duration" in result.output
    a_file = tmp_path / "f"
    a_file.write_text("")
    result = CliRunner().invoke(cli.main, ["sync", "--store", str(a_file), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output.strip().splitlines()[-1])["code"] == "STORE_ERROR"


def test_a_full_disk_leaves_the_store_as_it_was(tmp_path, fake, monkeypatch):
    import errno

    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client(), job="slow_job")
    before = _frames(h)
    files = _data_files(root)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full)
    with pytest.raises(runlens.StoreError, match="No space left on device.*the store is left as it was"):
        h.sync(fake.client())
    monkeypatch.undo()
    assert _data_files(root) == files and not list(root.rglob(".tmp-*"))
    for got, want in zip(_frames(h), before, strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_a_folder_without_write_permission_is_refused_even_for_root(tmp_path, fake, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(store_module.tempfile, "NamedTemporaryFile", denied)
    with pytest.raises(runlens.StoreError, match="cannot write to the History store .*Permission denied"):
        runlens.History(tmp_path / "store").sync(fake.client())


def test_dagster_plus_deployments_sharing_a_url_never_mix_and_no_secret_is_stored(tmp_path, fake):
    from runlens.config import Settings

    def client(deployment: str) -> runlens.Client:
        transport = runlens.MockTransport(fake.handle, url="https://user:pa55word@dagster.cloud/acme/graphql")
        transport.settings = Settings(transport.settings.url, token="tok-SECRET-123", organization="acme",
                                      deployment=deployment, sources={"url": "test", "token": "test",
                                                                      "organization": "test", "deployment": "test"})
        return runlens.Client(transport=transport, progress=False)

    prod, staging = client("prod"), client("staging")
    assert prod.deployment_identity != staging.deployment_identity
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(prod)
    with pytest.raises(runlens.StoreError, match="use one store per deployment") as info:
        h.sync(staging)
    assert "pa55word" not in str(info.value) and "SECRET" not in str(info.value)
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"SECRET" not in data and b"pa55word" not in data, path


def test_steps_of_an_older_step_computation_are_recomputed_from_stored_events(tmp_path, fake, monkeypatch):
    from runlens import steps as steps_module

    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client())
    before = h.steps()
    old_files = [p for p in _data_files(root) if p.startswith("steps/")]
    monkeypatch.setattr(steps_module, "STEPS_VERSION", steps_module.STEPS_VERSION + 1)
    sent = len(_logs_requests(fake))
    report = h.sync(fake.client())
    assert len(_logs_requests(fake)) == sent  # no event refetched
    assert report.steps_written == len(before)
    assert json.loads((root / "manifest.json").read_text())["steps_version"] == steps_module.STEPS_VERSION
    assert not set(old_files) & set(_data_files(root))
    pd.testing.assert_frame_equal(h.steps(), before)


def test_an_unlisted_data_file_left_by_a_crash_is_deleted_by_the_next_sync(tmp_path, fake):
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client())
    stray = root / "steps/month=2026-11/part-000000.parquet"
    stray.write_bytes((root / "steps/month=2026-11/part-000001.parquet").read_bytes())
    before = h.steps()
    pd.testing.assert_frame_equal(h.steps(), before)  # readers go by the manifest
    h.sync(fake.client())
    assert not stray.exists()


_KILLED_SYNC = """
import sys
from runlens.history import sync as sync_module
from tests.unit.history_fake import deployment
import runlens
sync_module.BATCH_RUNS = 1
runlens.History(sys.argv[1]).sync(deployment().client())
"""


@pytest.mark.parametrize("point", ["before-temp-fsync", "before-manifest", "after-manifest", "after-rename"])
def test_a_sync_process_killed_by_sigkill_at_a_commit_point_is_completed_by_the_next_one(tmp_path, fake, point):
    import signal
    import subprocess

    reference = runlens.History(tmp_path / "reference")
    reference.sync(fake.client())
    root = tmp_path / "store"
    env = {**os.environ, store_module.KILL_ENV: point,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _KILLED_SYNC, str(root)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    h = runlens.History(root)
    h.sync(fake.client())  # the killed process's lock went with it
    assert not list(root.rglob(".tmp-*"))
    for got, want in zip(_frames(h), _frames(reference), strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_the_default_store_lives_in_the_platform_data_dir_one_per_deployment(tmp_path, fake, monkeypatch):
    import platformdirs

    from runlens import cli
    from runlens.config import Settings

    monkeypatch.setattr(platformdirs, "user_data_dir",
                        lambda app, appauthor=None: str(tmp_path / "data" / app))

    def client(deployment: str | None, url: str = "http://dagster.test/graphql") -> runlens.Client:
        transport = runlens.MockTransport(fake.handle, url=url)
        transport.settings = Settings(transport.settings.url, deployment=deployment,
                                      sources={"url": "test", "deployment": "test"})
        return runlens.Client(transport=transport, progress=False)

    paths = {runlens.History.for_deployment(c).path for c in (client("prod"), client("staging"), client(None),
                                                              client(None, "http://other:3000/graphql"))}
    assert len(paths) == 4
    assert all(p.startswith(str(tmp_path / "data" / "runlens" / "history")) for p in paths)
    assert runlens.History.for_deployment(client("prod")).path == runlens.History.for_deployment(client("prod")).path
    monkeypatch.setattr(cli, "_client", lambda url: client("prod"))
    result = CliRunner().invoke(cli.main, ["sync", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["store"] == runlens.History.for_deployment(client("prod")).path
    assert len(runlens.History.for_deployment(client("prod")).runs()) == 4


def test_a_sync_bounded_by_until_does_not_move_the_mark_past_runs_it_did_not_look_at(tmp_path, fake):
    client = fake.client()
    # October's run was updated last (e.g. its tags changed): its update time is the latest of all.
    fake.runs["run-old"]["updateTime"] = max(r["updateTime"] for r in fake.runs.values()) + 1000
    h = runlens.History(tmp_path / "store")
    h.sync(client, until="2026-11-01")  # only October's run
    assert sorted(h.runs()["run_id"]) == ["run-old"]
    h.sync(client)
    assert sorted(h.runs()["run_id"]) == sorted(fake.runs)
    h.sync(client, since="2026-11-01")  # the mark of a full discovery serves a narrower one
    assert "updatedAfter" in _runs_requests(fake)[-1]["variables"]["filter"]
    manifest = json.loads((tmp_path / "store/manifest.json").read_text())
    assert manifest["marks"]["*"]["since"] is None


def test_a_final_runs_row_follows_the_server_but_its_events_are_never_fetched_again(tmp_path, fake):
    client = fake.client()
    h = runlens.History(tmp_path / "store")
    h.sync(client)
    fake.runs["run-a"]["tags"] = [{"key": "team", "value": "platform"}]
    fake.runs["run-a"]["updateTime"] = max(r["updateTime"] for r in fake.runs.values()) + 5
    sent = len(_logs_requests(fake))
    report = h.sync(client)
    assert report.runs_updated == 1 and report.events_written == 0
    assert len(_logs_requests(fake)) == sent
    assert h.runs().set_index("run_id").loc["run-a", "tags.team"] == "platform"


def test_the_store_is_readable_as_it_lies_by_duckdb_and_pyarrow_hive_readers(tmp_path, fake):
    import duckdb
    import pyarrow.dataset as ds

    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client())
    (root / "events/month=2026-11/.tmp-part-000009.parquet.000009.partial").write_bytes(b"half-written")
    glob = str(root / "events" / "*" / "*.parquet")
    counts = duckdb.sql(f"SELECT month, count(*) AS n FROM read_parquet('{glob}', hive_partitioning = true) "
                        "GROUP BY month ORDER BY month").fetchall()
    assert counts == [("2026-10", len(fake.events["run-old"])),
                      ("2026-11", len(fake.events["run-a"]) + len(fake.events["run-x"]))]
    table = ds.dataset(root / "steps", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(h.steps()) and "month" in table.column_names


def test_the_manifest_is_parsed_once_per_commit(tmp_path, fake, monkeypatch):
    h = runlens.History(tmp_path / "store")
    h.sync(fake.client())
    reads = []
    real = store_module.Store._read_manifest
    monkeypatch.setattr(store_module.Store, "_read_manifest", lambda self, path: reads.append(path) or real(self, path))
    h.runs(), h.events(), h.steps(), h.events("run-a")
    assert len(reads) <= 1
    fake.add("run-new", [record(0, "RUN_START", t0=T0 + 500_000), record(5, "RUN_SUCCESS", t0=T0 + 500_000)])
    fake.runs["run-new"]["updateTime"] = max(r["updateTime"] for r in fake.runs.values()) + 5
    h.sync(fake.client())
    assert "run-new" in set(h.runs()["run_id"])  # a commit is seen at once


def test_cli_sync_shows_no_progress_bar_off_a_terminal_even_with_ipykernel_loaded(tmp_path, fake, monkeypatch):
    # The library shows a bar in a notebook (ipykernel imported); a command never is one.
    import sys
    import types

    from runlens import cli

    monkeypatch.setitem(sys.modules, "ipykernel", sys.modules.get("ipykernel") or types.ModuleType("ipykernel"))
    monkeypatch.setattr(cli, "_client", lambda url: fake.client())
    result = CliRunner().invoke(cli.main, ["sync", "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Synced: ") and "\r" not in result.output


def test_event_queries_over_many_row_groups_equal_filtering_everything(tmp_path, monkeypatch):
    """The two-pass, row-group-streaming read (labels first, the rest only where a row group
    matches; statistics skip the others) returns exactly what filtering the whole store does."""
    from benchmarks.synthetic_store import build_store, job_names
    from runlens.history import sync as sync_module

    monkeypatch.setattr(sync_module, "ROW_GROUP_ROWS", 1024)  # many row groups in each file
    h = runlens.History(build_store(tmp_path / "store", runs=150, events=40_000, progress=False))
    everything = h.events()
    assert len(everything) == sum(h.runs()["events"]) > 30_000
    runs = h.runs()
    some = runs["run_id"].iloc[[3, 70, 140]].tolist()
    job = job_names()[2]
    middle = everything["timestamp"].iloc[len(everything) // 2]
    cases = [{"types": "STEP_FAILURE", "step": "_"}, {"types": "step_start,Step_Success", "step": "EXTRACT"},
             {"levels": "error"}, {"run_ids": some}, {"run_ids": some, "types": "STEP_START"},
             {"job": job, "levels": "WARNING,ERROR", "step": ["load", "transform"]}, {"job": job},
             {"since": middle, "step": "load"}, {"until": middle, "types": "RUN_FAILURE"}]
    for kwargs in cases:
        kwargs = dict(kwargs)
        rows = everything
        if "run_ids" in kwargs:
            rows = rows[rows["run_id"].isin(kwargs["run_ids"])]
        if "job" in kwargs:
            rows = rows[rows["run_id"].isin(runs.loc[runs["job_name"] == kwargs["job"], "run_id"])]
        if "since" in kwargs:
            rows = rows[rows["timestamp"] >= kwargs["since"]]
        if "until" in kwargs:
            rows = rows[rows["timestamp"] < kwargs["until"]]
        tests = {k: kwargs[k] for k in ("types", "step", "levels") if k in kwargs}
        expected = filter_events(rows, **tests) if tests else rows
        got = h.events(**kwargs)
        assert len(got) > 0, kwargs
        pd.testing.assert_frame_equal(got.astype(object), expected.reset_index(drop=True).astype(object)), kwargs
        assert got.attrs["run_ids"] == list(dict.fromkeys(expected["run_id"].astype(str)))
        assert [str(t) for t in got.dtypes] == [str(t) for t in everything.dtypes]


def test_a_corrupt_file_is_named_by_filtered_event_reads_and_steps_reads(tmp_path, fake):
    """Every read path (the two-pass filtered scan, a run's lookup, steps) names the broken file."""
    root = tmp_path / "store"
    h = runlens.History(root)
    h.sync(fake.client())
    for kind in ("events", "steps"):
        part = root / f"{kind}/month=2026-11/part-000001.parquet"
        part.write_bytes(part.read_bytes()[: len(part.read_bytes()) // 2])  # truncated
    message = r"month=2026-11/part-000001\.parquet.*corrupt or truncated.*runlens sync --repair"
    for read in (lambda: h.events(types="STEP_FAILURE"), lambda: h.events(step="process", levels="ERROR"),
                 lambda: h.events("run-a"), lambda: h.events("run-a", types="STEP_START"),
                 lambda: h.events(job="etl_job", since="2026-11-01"), lambda: h.steps(), lambda: h.steps("run-a")):
        with pytest.raises(runlens.StoreError, match=message):
            read()


def test_a_failing_sync_with_a_token_never_shows_it(tmp_path, fake, monkeypatch):
    """The token and the URL's password appear in no error of a sync that fails, nor in the store it keeps."""
    from runlens.config import Settings

    handle = fake.handle
    served = []

    def failing(body):
        if "logsForRun" in body["query"]:
            served.append(body["variables"]["runId"])
            if len(served) > 1:
                return 500, "internal error"
        return handle(body)

    transport = runlens.MockTransport(failing, url="https://user:pa55word@dagster.cloud/acme/graphql")
    transport.settings = Settings(transport.settings.url, token="tok-SECRET-123", organization="acme",
                                  deployment="prod", sources={"url": "test", "token": "test",
                                                              "organization": "test", "deployment": "test"})
    client = runlens.Client(transport=transport, progress=False)
    root = tmp_path / "store"
    from runlens.history import sync as sync_module

    monkeypatch.setattr(sync_module, "BATCH_RUNS", 1)
    with pytest.raises(runlens.RunlensError) as info:
        runlens.History(root).sync(client)
    shown = f"{info.value} {info.value!r} {info.value.args}"
    assert "before failing" in shown and "SECRET" not in shown and "pa55word" not in shown
    assert runlens.History(root).runs()["final"].sum() >= 1  # what was committed stays
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"SECRET" not in data and b"pa55word" not in data, path
