"""The light sync, repair and compaction against a real Dagster: the stepStats rows equal Dagster's own numbers.

Dagster's numbers come from its storage (:func:`tests.truth.dagster_truth`), not from GraphQL.
Timings are printed (run with ``-s``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

import runlens
from tests.truth import dagster_truth

FINAL = ("etl", "failing", "canceled_queued", "canceled_running")


def _note(message: str) -> None:
    print(f"[history light live] {message}", file=sys.stderr, flush=True)


def test_a_light_sync_stores_dagsters_step_stats_and_a_full_sync_upgrades_them(demo, client, tmp_path):
    h = runlens.History(tmp_path / "store")
    started = time.perf_counter()
    report = h.sync(client, grace=0, events=False)
    _note(f"light sync: {report!r} ({time.perf_counter() - started:.2f} s)")
    assert report.runs_light >= len(FINAL) and report.events_written == 0
    steps = h.steps()
    for kind in FINAL:
        run_id = demo.runs[kind]
        truth = dagster_truth(demo.dagster.home, run_id)["step_stats"]
        assert (run_id in steps.attrs["light_runs"]) == bool(truth), kind  # canceled while queued: no step
        mine = h.steps(run_id)
        mine = mine.set_index(mine["step_key"].astype(str))
        assert sorted(mine.index) == sorted(truth), kind
        for key, s in truth.items():
            row = mine.loc[key]
            assert row["status"] == s["status"], (kind, key)
            assert row["attempts"] == s["attempts"], (kind, key)
            # Dagster's float seconds, truncated to the millisecond as its event timestamps are.
            assert row["start"] == pd.Timestamp(int(s["start"] * 1000), unit="ms", tz="UTC"), (kind, key)
            if s["end"] is None:
                assert pd.isna(row["end"]), (kind, key)
            else:
                assert row["end"] == pd.Timestamp(int(s["end"] * 1000), unit="ms", tz="UTC"), (kind, key)
    # The events' own step rows agree on every step Dagster has stats for (to the millisecond).
    etl = demo.runs["etl"]
    full = runlens.step_durations(client.events(etl))
    full = full.set_index(full["step_key"].astype(str))
    light = h.steps(etl)
    light = light.set_index(light["step_key"].astype(str))
    for column in ("start", "end", "attempts"):
        assert light[column].equals(full.loc[light.index, column]), column
    # What the light rows lack: the split of the time.
    assert light["worker_startup"].isna().all() and full["worker_startup"].notna().any()

    upgrade = h.sync(client, grace=0)
    assert upgrade.runs_made_final >= len(FINAL)
    assert h.steps().attrs["light_runs"] == []
    for kind in FINAL:
        run_id = demo.runs[kind]
        expected = runlens.step_durations(client.events(run_id))
        if len(expected):
            pd.testing.assert_frame_equal(h.steps(run_id), expected)
    assert h.sql("SELECT DISTINCT source FROM steps")["source"].tolist() == ["events"]


def test_repair_and_compaction_of_a_live_store(demo, client, tmp_path):
    h = runlens.History(tmp_path / "store")
    for job in ("etl_job", "failing_job", "slow_job"):  # a file per job: something to compact
        h.sync(client, grace=0, job=job)
    h.sync(client, grace=0)
    before = (h.runs(), h.events(), h.steps())
    etl = demo.runs["etl"]
    broken = Path(h.path) / sorted(h._store.manifest()["runs"][etl]["files"])[0]
    broken.write_bytes(broken.read_bytes()[:300])
    report = h.repair(client, grace=0)
    _note(f"repair: {report.summary()}")
    assert etl in report.runs_refetched
    for got, want in zip((h.runs(), h.events(), h.steps()), before, strict=True):
        pd.testing.assert_frame_equal(got, want)
    compacted = h.compact()
    _note(f"compaction: {compacted.summary()}")
    assert compacted.files_merged >= 2 and compacted.files_after < compacted.files_before
    for got, want in zip((h.runs(), h.events(), h.steps()), before, strict=True):
        pd.testing.assert_frame_equal(got, want)
