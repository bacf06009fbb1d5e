"""History against a real Dagster: a sync of the demo stores exactly what the server serves.

The demo holds every run kind: the final ones (etl, failing, canceled_*) must be stored whole
and equal to ``client.events``; queued and not_started ones are run rows only. Timings are
printed (run with ``-s``) for the README and the report.
"""

from __future__ import annotations

import sys
import time

import pandas as pd

import runlens
from runlens.demo.server import SEED_KEYS

ROWS_ONLY = ("queued", "not_started")
# Every other seeded run ends: derived from the seed, so a run added there is checked here too.
FINAL = tuple(kind for kind in SEED_KEYS if kind not in ROWS_ONLY)


def _note(message: str) -> None:
    print(f"[history live] {message}", file=sys.stderr, flush=True)


def test_a_sync_of_the_demo_stores_what_the_server_serves(demo, client, tmp_path):
    h = runlens.History(tmp_path / "store")
    started = time.perf_counter()
    report = h.sync(client, grace=0)
    _note(f"first sync: {report!r} ({time.perf_counter() - started:.2f} s)")
    assert report.runs_discovered >= len(demo.runs)

    runs = h.runs().set_index("run_id")
    for kind in FINAL:
        run_id = demo.runs[kind]
        assert runs.loc[run_id, "final"], kind
        stored = h.events(run_id)
        served = client.events(run_id)
        pd.testing.assert_frame_equal(stored, served)
        expected = runlens.step_durations(served)
        if len(expected):
            pd.testing.assert_frame_equal(h.steps(run_id), expected)
        else:  # canceled while queued: no step ran
            assert len(h.steps(run_id)) == 0
    for kind in ROWS_ONLY:
        run_id = demo.runs[kind]
        assert not runs.loc[run_id, "final"] and runs.loc[run_id, "events"] == 0, kind
        assert runs.loc[run_id, "status"] == ("QUEUED" if kind == "queued" else "NOT_STARTED")
        assert len(h.events(run_id)) == 0

    # A second sync with nothing new: at most two small requests.
    counting = _Counting(client.transport)
    again = runlens.Client(transport=counting, progress=False)
    started = time.perf_counter()
    second = h.sync(again, grace=0)
    seconds = time.perf_counter() - started
    _note(f"second sync: {second!r}, {counting.count} requests, {seconds:.3f} s")
    assert counting.count <= 2 and second.events_written == 0 and seconds < 0.5

    # Read-through: the etl run's events from the store, the same frame, no request.
    etl = demo.runs["etl"]
    through = runlens.Client(transport=_Counting(client.transport), progress=False, history=h)
    server_s = _best(lambda: client.events(etl))
    store_s = _best(lambda: through.events(etl))
    assert through.transport.count == 0
    pd.testing.assert_frame_equal(through.events(etl), client.events(etl))
    _note(f"etl run ({len(client.events(etl))} events): server {server_s * 1000:.1f} ms, "
          f"store {store_s * 1000:.1f} ms, {server_s / store_s:.1f}x")
    sql = h.sql("SELECT count(*) AS n FROM events")
    assert sql["n"].iloc[0] == sum(len(h.events(demo.runs[k])) for k in FINAL) + _others(h, demo)


def _others(h: runlens.History, demo) -> int:
    """Events of runs in the demo's Dagster besides the seeded ones (none today, but not promised)."""
    seeded = set(demo.runs.values())
    others = [r for r in h.runs()["run_id"] if r not in seeded]
    return len(h.events(others)) if others else 0


def _best(call, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


class _Counting:
    """A transport that counts what goes through it (the real one underneath)."""

    def __init__(self, inner) -> None:
        self.inner, self.count = inner, 0
        self.settings = inner.settings

    @property
    def url(self) -> str:
        return self.inner.url

    def execute(self, *args, **kwargs):
        self.count += 1
        return self.inner.execute(*args, **kwargs)


def test_the_demo_walkthrough_syncs_a_store_and_prints_a_query(demo, client, tmp_path, capsys):
    from runlens.demo.walkthrough import show_history

    started = time.perf_counter()
    path = show_history(client, tmp_path)
    _note(f"demo's history section: {time.perf_counter() - started:.2f} s")
    out = capsys.readouterr().out
    assert path == tmp_path / "history" and (path / "manifest.json").is_file()
    assert list((path / "events").glob("month=*/*.parquet")) and list((path / "steps").glob("month=*/*.parquet"))
    h = runlens.History(path)
    assert set(demo.runs.values()) <= set(h.runs()["run_id"])
    assert "h.sync(client):" in out and "made final" in out
    assert 'h.sql("""SELECT step_key' in out and "p50_s" in out and "p90_s" in out
    # Which steps make the top 8 by median depends on this machine's timings: compare with
    # the query itself, not with a step name.
    from runlens.demo.walkthrough import HISTORY_SQL

    top = h.sql(HISTORY_SQL)["step_key"].tolist()
    assert top and all(key in out for key in top)
    assert "duration_trend(h.steps(job='etl_job')" in out
    # A second demo in the same folder replaces the store of the earlier one (another Dagster).
    show_history(client, tmp_path)
    assert "h.sync(client):" in capsys.readouterr().out


_SYNC_PROCESS = """
import sys
import runlens
from runlens.history import sync as sync_module
sync_module.BATCH_RUNS = 1  # a commit per run: many moments to be killed at
client = runlens.Client(sys.argv[2], progress=False)
h = runlens.History(sys.argv[1])
print("go", flush=True)
h.sync(client, grace=0)
print("done", flush=True)
"""


def test_a_live_sync_killed_at_random_moments_is_completed_by_the_next_one(demo, client, tmp_path):
    """SIGKILL a sync of the live demo at random moments, several times into the same store; the next
    sync completes, and the store equals one an uninterrupted sync made: no row doubled, none missing."""
    import os
    import random
    import signal
    import subprocess
    from pathlib import Path

    reference = runlens.History(tmp_path / "reference")
    reference.sync(client, grace=0)
    root = tmp_path / "killed"
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}

    def start() -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", _SYNC_PROCESS, str(root), demo.url], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "go", process.stderr.read()
        return process

    # How long a whole sync takes from "go", in a store of its own: the window the kills fall in.
    probe = subprocess.Popen([sys.executable, "-c", _SYNC_PROCESS, str(tmp_path / "probe"), demo.url], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert probe.stdout.readline().strip() == "go"
    began = time.perf_counter()
    out, err = probe.communicate(timeout=120)
    window = time.perf_counter() - began
    assert probe.returncode == 0 and out.strip() == "done", err
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    killed = 0
    for attempt in range(4):
        process = start()
        # The first kill falls in the first half of a whole sync, so at least one lands: the
        # later syncs of the same store have less left to do (each killed one committed some),
        # and their random moments may fall after they end.
        time.sleep(rng.uniform(0, window / 2 if attempt == 0 else window))
        process.send_signal(signal.SIGKILL)
        out, _err = process.communicate(timeout=60)
        killed += process.returncode == -signal.SIGKILL and "done" not in out
    _note(f"random kills (seed {seed}): {killed} of 4 landed inside a {window:.2f} s sync")
    assert killed >= 1, f"no kill landed before the sync ended (seed {seed})"
    h = runlens.History(root)
    h.sync(client, grace=0)  # the killed processes' locks went with them
    assert not list(root.rglob(".tmp-*"))
    pd.testing.assert_frame_equal(h.runs(), reference.runs())
    pd.testing.assert_frame_equal(h.events(), reference.events())
    pd.testing.assert_frame_equal(h.steps(), reference.steps())
    # and each stored run is the server's log, once
    for kind in FINAL:
        pd.testing.assert_frame_equal(h.events(demo.runs[kind]), client.events(demo.runs[kind]))


def test_a_sync_of_the_demo_stores_its_asset_events_as_the_server_serves_them(demo, client, tmp_path):
    """``h.asset_events`` equals ``client.asset_events`` after a sync; DuckDB over the stored table counts
    what Dagster's own storage holds (tests/truth.py), for every asset of the demo."""
    from tests.truth import dagster_asset_truth

    h = runlens.History(tmp_path / "store")
    started = time.perf_counter()
    report = h.sync(client, grace=0)
    _note(f"sync with asset events: {report.summary()} ({time.perf_counter() - started:.2f} s)")
    keys = client.assets()["key"].tolist()
    stored = h.sql("SELECT asset_key, count(*) AS n FROM asset_events GROUP BY 1")
    stored = dict(zip(stored["asset_key"], stored["n"], strict=True))
    truth = {key: dagster_asset_truth(demo.dagster.home, key) for key in keys}
    assert stored == {key: len(rows) for key, rows in truth.items() if rows}
    assert report.asset_events_written == sum(stored.values()) and stored.get("daily_orders")
    for key in stored:
        for kind in ("materialization", "all"):
            pd.testing.assert_frame_equal(h.asset_events(key, kind=kind), client.asset_events(key, kind=kind))
    pd.testing.assert_frame_equal(h.asset_events("daily_orders"), client.asset_events("daily_orders"))
    # Dagster's storage order and its metadata, through DuckDB: the README's drift query.
    drift = h.sql("""
        SELECT e.run_id, e.partition, m.int_value AS row_count
        FROM asset_events e, unnest(e.metadata) AS t(m)
        WHERE e.asset_key = 'daily_orders' AND m.label = 'row_count'
        ORDER BY e.seq""")
    daily = truth["daily_orders"]
    assert drift["run_id"].tolist() == [r["run_id"] for r in daily]
    assert drift["row_count"].tolist() == [r["metadata"]["row_count"] for r in daily]

    # Nothing new: the second sync asks the runs and the asset list, nothing else.
    counting = _Counting(client.transport)
    second = h.sync(runlens.Client(transport=counting, progress=False), grace=0)
    _note(f"second sync: {counting.count} requests, {second.asset_events_written} asset events")
    assert counting.count <= 2 and second.asset_events_written == 0
