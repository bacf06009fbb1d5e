"""A real Dagster for the live tests: one per session, seeded with runs, served over GraphQL.

Every test under ``tests/live`` is marked ``live`` (deselect with ``-m "not live"``).
dagster is part of the dev environment, so a missing dagster fails these tests
rather than skipping them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import runlens
from runlens.demo.server import DemoDagster, seed_runs
from tests.live.processes import group_alive

LIVE_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, not only this directory's.
    for item in items:
        if LIVE_DIR in item.path.parents:
            item.add_marker(pytest.mark.live)


@dataclass
class LiveDemo:
    """What the ``demo`` fixture yields."""

    dagster: DemoDagster
    runs: dict[str, str]

    @property
    def url(self) -> str:
        return self.dagster.url

    @property
    def base_url(self) -> str:
        return self.dagster.base_url


def _progress(message: str) -> None:
    # stderr: shown live with -s, and in the report of a failing setup otherwise.
    print(message, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def demo() -> Iterator[LiveDemo]:
    """A local Dagster holding the runs of :func:`seed_runs`, with its webserver and daemon.

    ``runs`` maps each kind to its run id: ``etl`` (SUCCESS), ``failing`` (FAILURE),
    ``queued`` (QUEUED for good), ``canceled_queued``, ``canceled_running`` (CANCELED)
    and ``not_started`` (NOT_STARTED for good).
    """
    started = time.monotonic()
    dagster = DemoDagster(log=_progress)
    with dagster:
        runs = seed_runs(dagster)
        _progress(f"[demo fixture] ready in {time.monotonic() - started:.1f} s")
        yield LiveDemo(dagster=dagster, runs=runs)
    leftovers = [pid for pid in dagster.pids() if group_alive(pid)]
    assert not leftovers, f"process groups still alive after stop(): {leftovers}"


@pytest.fixture(scope="module")
def client(demo: LiveDemo) -> runlens.Client:
    """A client of the demo, without progress bars; retries, if any, wait a fraction of a second."""
    return runlens.Client(demo.url, progress=False, backoff=0.05)
