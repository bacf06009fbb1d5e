"""Start and stop a real local Dagster that runs :mod:`runlens.demo.definitions`.

Nothing here imports dagster: every Dagster process is a subprocess of the current
Python interpreter, so ``import runlens.demo.server`` stays cheap and works
without the ``runlens[demo]`` extra until something is actually started.

Runs reach Dagster the way a deployment's do. :meth:`DemoDagster.launch` posts the
webserver's GraphQL ``launchRun`` mutation: the ``QueuedRunCoordinator`` configured in
the throwaway ``DAGSTER_HOME`` (sqlite storage, multiprocess executor) queues the run
(RUN_ENQUEUED), and the ``dagster-daemon`` started next to the webserver dequeues and
launches it (QUEUED → STARTING → STARTED). A run tagged ``runlens/demo=held`` is never
dequeued (a tag concurrency limit of 0), so the demo can hold a run in the queue.
:meth:`DemoDagster.execute` and :meth:`DemoDagster.launch_in_background` bypass the
queue with ``python -m dagster job execute`` (no webserver or daemon needed).

Run ids and statuses are read back from the home's sqlite run storage with the
standard library: asking a ``DagsterInstance`` in a subprocess would cost a dagster
import (about 1.5 s) per lookup, and waiting for a run needs many lookups.

Every process is started in a new session and stopped by signalling its whole
process group, so the step workers, forkservers, gRPC code servers and runs that
Dagster starts underneath (the daemon's runs included) never outlive
:meth:`DemoDagster.stop`. POSIX only for that guarantee; elsewhere only the direct
children are terminated.

Examples
--------
>>> from runlens.demo.server import DemoDagster, seed_runs
>>> with DemoDagster(log=print) as demo:  # doctest: +SKIP
...     runs = seed_runs(demo)  # starts the webserver and the daemon
...     print(demo.url, runs["etl"], runs["queued"])
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..vocabulary import TERMINAL_STATUSES

__all__ = [
    "DAILY_PARTITIONS",
    "DAILY_RERUN_PARTITIONS",
    "DEFINITIONS_MODULE",
    "DEMO_TAG",
    "HELD",
    "RUN_TOKEN_TAG",
    "SEED_KEYS",
    "TERMINAL_STATUSES",
    "TEST_TAG",
    "DemoDagster",
    "DemoNotInstalled",
    "seed_runs",
]

#: The module every Dagster process started here loads its definitions from.
DEFINITIONS_MODULE = "runlens.demo.definitions"

#: Tag carrying the unique token that identifies a run started by :class:`DemoDagster`.
RUN_TOKEN_TAG = "runlens/demo_run_key"

#: Tag the demo puts on the runs it makes, saying what kind of run each is.
DEMO_TAG = "runlens/demo"

#: Value of :data:`DEMO_TAG` that keeps a run in the queue for good (tag limit 0).
HELD = "held"

#: Tag of runs that tests make by hand (e.g. a QUEUED run written straight to storage):
#: the queue never releases them either, so they stay as the test made them.
TEST_TAG = "runlens/test"

#: The keys of :func:`seed_runs`' result.
SEED_KEYS = ("etl", "failing", "queued", "canceled_queued", "canceled_running", "not_started", "printing",
             "daily_orders", "daily_orders_rerun",
             "diamond_alike_1", "diamond_alike_2", "diamond_alike_3", "diamond_alike_4",
             "diamond_slow_1", "diamond_slow_2", "diamond_slow_3")

#: Partitions of the demo's daily asset materialized by :func:`seed_runs`: the first
#: run loads the whole range, the rerun loads the last three again (batch 1, more rows).
DAILY_PARTITIONS = ("2026-11-01", "2026-11-07")
DAILY_RERUN_PARTITIONS = ("2026-11-05", "2026-11-07")


def _partition_range_tags(first: str, last: str) -> dict[str, str]:
    """The tags of a run over a range of partitions, as a single-run backfill sets them."""
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


#: Value of :data:`DEMO_TAG` on diamond_job's seeded runs (at most three run at once).
DIAMOND = "diamond"

#: diamond_job's runs in :func:`seed_runs`: this many alike, then this many with ``b`` slower.
DIAMOND_ALIKE, DIAMOND_SLOW = 4, 3
#: Seconds each diamond step sleeps, and ``b`` in the slow runs (a level change, 20x: on a
#: loaded machine (load 30 on 2 cores) event writes add seconds of noise to each step, and b at
#: 3 s was not always outside 3.5 robust spreads of the alike runs).
DIAMOND_SECONDS, DIAMOND_SLOW_B_SECONDS = 0.3, 6.0

# The QueuedRunCoordinator queues runs launched through the webserver's GraphQL; the
# dagster-daemon dequeues them (checking every second instead of every 5 s) and
# launches them (in threads: several at once). A limit of 0 keeps runs tagged
# runlens/demo=held, and runs tests tag runlens/test, QUEUED for good without holding
# up the others. The diamond runs go at most three at a time, in order of creation: seven
# run workers starting at once on a busy machine made the code server miss its 60 s
# deadline and Dagster fail the runs before they started.
_DAGSTER_YAML = """\
storage:
  sqlite:
    base_dir: {home}
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    dequeue_use_threads: true
    tag_concurrency_limits:
      - key: "{tag}"
        value: "{held}"
        limit: 0
      - key: "{test_tag}"
        limit: 0
      - key: "{tag}"
        value: "{diamond}"
        limit: 3
telemetry:
  enabled: false
"""

_LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""

_TERMINATE_MUTATION = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""

# The webserver and the daemon share one code server, as under ``dagster dev``.
_WORKSPACE_YAML = """\
load_from:
  - grpc_server:
      host: {host}
      port: {port}
      location_name: {location}
"""

_REPOSITORIES_QUERY = """
{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name location { name } } }
                        ... on PythonError { message } } }
"""

# What Dagster's run worker logs (an ENGINE_EVENT) when it starts and when it exits:
# the exit line is stored after RUN_SUCCESS/RUN_FAILURE/RUN_CANCELED.
_PROCESS_STARTED = "Started process for run"
_PROCESS_EXITED = "Process for run exited"

_POLL_SECONDS = 0.1


class DemoNotInstalled(RuntimeError):
    """Dagster (the ``runlens[demo]`` extra) is not installed."""

    def __init__(self) -> None:
        super().__init__("dagster is not installed: pip install 'runlens[demo]'")


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise DemoNotInstalled()


@dataclass
class _Process:
    """A process started by :class:`DemoDagster`, leader of its own process group."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        """Whether any process of the group is still alive."""
        # Reap the leader first: a zombie still counts as a member of its group.
        self.popen.poll()
        if os.name != "posix":
            return self.popen.returncode is None
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            # PermissionError: the group id now belongs to someone else; ours is gone.
            return False
        return True

    def terminate(self) -> None:
        """Ask the whole group to exit (SIGTERM)."""
        self._signal_group(self.popen.terminate, "SIGTERM")

    def kill(self) -> None:
        """Kill the whole group (SIGKILL)."""
        self._signal_group(self.popen.kill, "SIGKILL")

    def _signal_group(self, fallback: Callable[[], None], name: str) -> None:
        if os.name != "posix":
            fallback()
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, getattr(signal, name))

    def tail(self, lines: int = 30) -> str:
        """The last `lines` lines of the process's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output captured)"
        return "\n".join(text.splitlines()[-lines:])


class DemoDagster:
    """A throwaway local Dagster: a ``DAGSTER_HOME``, runs, and the processes that serve them.

    :meth:`start` starts what a deployment runs: a gRPC code server, ``dagster-webserver``
    and ``dagster-daemon``. :meth:`launch` queues a run through the webserver's GraphQL
    (the daemon launches it), :meth:`terminate` cancels one, :meth:`create_run` makes one
    that is never launched, and :meth:`execute` runs a job directly, bypassing the queue.

    Parameters
    ----------
    home : str or os.PathLike, optional
        Directory to use as ``DAGSTER_HOME``. Created if missing; a ``dagster.yaml``
        is written into it unless one exists (an existing one must keep the default
        sqlite storage under the home, where run ids are looked up, and, for
        :meth:`launch` to queue runs, a ``QueuedRunCoordinator``). A given home is
        never deleted. By default a temporary directory is created, and removed by
        :meth:`stop` unless `keep_home` is true.
    port : int, optional
        Port for the webserver. By default a free port is picked when the webserver
        starts.
    host : str, default "127.0.0.1"
        Interface the webserver listens on.
    keep_home : bool, default False
        Keep a temporary home after :meth:`stop` (to inspect its storage and logs).
    log : callable, optional
        Called with one line of progress per stage (e.g. ``print``), each prefixed
        with the seconds elapsed since this object was created.

    Raises
    ------
    DemoNotInstalled
        If dagster is not installed.

    Notes
    -----
    Use it as a context manager: entering creates the home, leaving calls
    :meth:`stop`. :meth:`stop` is also registered with :mod:`atexit` while
    processes may be running, so a forgotten instance does not leak them.
    """

    def __init__(
        self,
        *,
        home: str | os.PathLike[str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        keep_home: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        _require("dagster")
        self._home = Path(home).resolve() if home is not None else None
        self._owns_home = home is None
        self._port = port
        self._host = host
        self._keep_home = keep_home
        self._log_fn = log
        self._created = time.monotonic()
        self._processes: list[_Process] = []
        self._background: dict[str, _Process] = {}
        self._webserver: _Process | None = None
        self._daemon: _Process | None = None
        self._code_server: _Process | None = None
        self._selector: dict[str, str] | None = None
        self._atexit_registered = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> DemoDagster:
        self.create_home()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def create_home(self) -> Path:
        """Create the ``DAGSTER_HOME`` and its ``dagster.yaml`` (idempotent).

        Returns
        -------
        pathlib.Path
            The home directory.
        """
        with self._lock:
            if self._home is None:
                self._home = Path(tempfile.mkdtemp(prefix="runlens-demo-")).resolve()
            self._home.mkdir(parents=True, exist_ok=True)
            config = self._home / "dagster.yaml"
            if not config.exists():
                config.write_text(_DAGSTER_YAML.format(home=json.dumps(str(self._home)), tag=DEMO_TAG, held=HELD,
                                                      test_tag=TEST_TAG, diamond=DIAMOND))
            (self._home / "runlens-logs").mkdir(exist_ok=True)
        self._log(f"DAGSTER_HOME ready at {self._home}")
        return self._home

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every process started here, then remove a temporary home.

        Each process group gets SIGTERM; groups still alive after `timeout` seconds
        get SIGKILL. Safe to call more than once.

        Parameters
        ----------
        timeout : float, default 10.0
            Seconds to wait for a graceful exit before killing.
        """
        started = time.monotonic()
        with self._lock:
            processes = list(self._processes)
        alive = [p for p in processes if p.alive()]
        for proc in alive:
            proc.terminate()
        killed = _wait_gone(alive, timeout)
        for proc in killed:
            proc.kill()
        _wait_gone(killed, timeout=5.0)
        self._webserver = None
        self._daemon = None
        self._code_server = None
        atexit.unregister(self.stop)
        self._atexit_registered = False
        removed = ""
        if self._owns_home and not self._keep_home and self._home is not None and self._home.exists():
            # Best effort: a cleanup failure must not mask the exception that made
            # a ``with`` block exit.
            shutil.rmtree(self._home, ignore_errors=True)
            removed = ", home removed"
        if processes:
            forced = f", {len(killed)} killed" if killed else ""
            self._log(f"stopped {len(processes)} process(es){forced}{removed} in {time.monotonic() - started:.1f} s")

    def pids(self) -> list[int]:
        """Return the PIDs of every process started here, finished ones included.

        Each is also the id of its process group, which holds the processes Dagster
        started underneath it.

        Returns
        -------
        list of int
            PIDs in start order.
        """
        with self._lock:
            return [p.pid for p in self._processes]

    # ----------------------------------------------------------------------- runs

    def launch(
        self,
        job_name: str,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        held: bool = False,
    ) -> str:
        """Launch a job through the webserver's GraphQL, as the Dagster UI does; return at once.

        The run is QUEUED first (RUN_ENQUEUED); the daemon dequeues it within about a
        second and launches it (STARTING, then STARTED). Starts the webserver and the
        daemon first if they are not running (:meth:`start`).

        Parameters
        ----------
        job_name : str
            A job of :mod:`runlens.demo.definitions`, e.g. ``"etl_job"``.
        run_config : mapping, optional
            Run config, e.g. ``{"ops": {"storm": {"config": {"n": 50000}}}}``.
        tags : mapping of str to str, optional
            Extra run tags.
        held : bool, default False
            Tag the run ``runlens/demo=held``: the queue never releases it, so it stays
            QUEUED until it is terminated (:meth:`terminate`).

        Returns
        -------
        str
            The run id; the run is QUEUED at this point. :meth:`wait` waits for its end.

        Raises
        ------
        RuntimeError
            If Dagster refuses the launch (unknown job, invalid config), with its message.
        """
        self.start()
        all_tags = dict(tags or {})
        if held:
            all_tags[DEMO_TAG] = HELD
        params: dict[str, Any] = {
            "selector": {**self._repository_selector(), "jobName": job_name},
            "executionMetadata": {"tags": [{"key": k, "value": str(v)} for k, v in all_tags.items()]},
        }
        if run_config:
            params["runConfigData"] = dict(run_config)
        result = self._graphql(_LAUNCH_MUTATION, params=params)["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            details = "; ".join(e["message"] for e in result.get("errors") or []) or result.get("message", "")
            raise RuntimeError(f"Dagster did not launch {job_name}: {result['__typename']}: {details}")
        run_id = result["run"]["runId"]
        self._log(f"launched {job_name} through the queue{' (held)' if held else ''}: run {run_id}")
        return run_id

    def terminate(self, run_id: str) -> None:
        """Terminate a run through the webserver's GraphQL ``terminateRun``, as the UI's button.

        A QUEUED run is canceled at once (RUN_CANCELING, RUN_CANCELED; it never starts);
        a running one is interrupted and ends CANCELED a moment later (see :meth:`wait`).

        Raises
        ------
        RuntimeError
            If Dagster refuses (unknown run, a run that cannot be terminated).
        """
        result = self._graphql(_TERMINATE_MUTATION, runId=run_id)["terminateRun"]
        if result["__typename"] != "TerminateRunSuccess":
            raise RuntimeError(f"Dagster did not terminate run {run_id}: {result['__typename']}: "
                               f"{result.get('message', '')}")
        self._log(f"asked Dagster to terminate run {run_id}")

    def create_run(self, job_name: str, tags: Mapping[str, str] | None = None, timeout: float = 120.0) -> str:
        """Create a run of a job without launching it: it stays NOT_STARTED for good.

        Real deployments hold such runs (a launch that failed before the run was
        queued, runs created by tooling). ``DagsterInstance.create_run_for_job`` in a
        subprocess, so this process still never imports dagster.

        Returns
        -------
        str
            The run id.

        Raises
        ------
        RuntimeError
            If the subprocess fails or takes more than `timeout` seconds.
        """
        home = self.create_home() if self._home is None else self._home
        token = uuid.uuid4().hex
        payload = json.dumps({**(tags or {}), RUN_TOKEN_TAG: token})
        command = [sys.executable, "-m", "runlens.demo.create_run", job_name, payload]
        proc = self._spawn(command, f"create-{job_name}-{token[:8]}")
        try:
            code = proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise RuntimeError(f"creating a {job_name} run timed out after {timeout:.0f} s:\n{proc.tail()}") from None
        run_id = self._find_run_id(token)
        if code != 0 or run_id is None:
            raise RuntimeError(f"creating a {job_name} run failed (exit code {code}) in {home}:\n{proc.tail()}")
        self._log(f"created {job_name} run {run_id} without launching it (NOT_STARTED)")
        return run_id

    def execute(
        self,
        job_name: str,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        timeout: float = 600.0,
    ) -> str:
        """Execute a job to completion with ``dagster job execute`` (bypassing the queue).

        Needs neither the webserver nor the daemon; the run has no RUN_ENQUEUED or
        RUN_STARTING event. Use :meth:`launch` and :meth:`wait` for a queued run.

        Parameters
        ----------
        job_name : str
            A job of :mod:`runlens.demo.definitions`, e.g. ``"etl_job"``.
        run_config : mapping, optional
            Run config, e.g. ``{"ops": {"storm": {"config": {"n": 50000}}}}``.
        tags : mapping of str to str, optional
            Extra run tags.
        timeout : float, default 600.0
            Seconds to wait for the run to finish.

        Returns
        -------
        str
            The run id. A run that ends in FAILURE is not an error here.

        Raises
        ------
        RuntimeError
            If no run was created (unknown job, invalid config) or it did not
            finish within `timeout`.
        """
        run_id = self.launch_in_background(job_name, run_config=run_config, tags=tags, timeout=timeout)
        self.wait(run_id, timeout=timeout)
        return run_id

    def launch_in_background(
        self,
        job_name: str,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> str:
        """Start executing a job with ``dagster job execute`` and return as soon as its run exists.

        Bypasses the queue, as :meth:`execute`.

        Parameters
        ----------
        job_name : str
            A job of :mod:`runlens.demo.definitions`, e.g. ``"slow_job"``.
        run_config : mapping, optional
            Run config.
        tags : mapping of str to str, optional
            Extra run tags.
        timeout : float, default 60.0
            Seconds to wait for the run to be created.

        Returns
        -------
        str
            The run id; the run is usually NOT_STARTED or STARTED at this point.
            Use :meth:`wait` to wait for it to finish.

        Raises
        ------
        RuntimeError
            If the process exits or `timeout` passes without creating the run.
        """
        home = self.create_home() if self._home is None else self._home
        started = time.monotonic()
        token = uuid.uuid4().hex
        command = [sys.executable, "-m", "dagster", "job", "execute", "-m", DEFINITIONS_MODULE, "-j", job_name]
        command += ["--tags", json.dumps({**(tags or {}), RUN_TOKEN_TAG: token})]
        if run_config:
            # YAML is a superset of JSON, so the config file needs no YAML library.
            config_file = home / "runlens-logs" / f"{job_name}-{token[:8]}-config.yaml"
            config_file.write_text(json.dumps(run_config))
            command += ["-c", str(config_file)]
        proc = self._spawn(command, f"{job_name}-{token[:8]}")
        deadline = started + timeout
        while (run_id := self._find_run_id(token)) is None:
            code = proc.popen.poll()
            if code is not None or time.monotonic() > deadline:
                proc.kill()
                reason = f"exited with code {code}" if code is not None else f"timed out after {timeout:.0f} s"
                raise RuntimeError(f"dagster job execute -j {job_name} {reason} without creating a run:\n{proc.tail()}")
            time.sleep(_POLL_SECONDS)
        with self._lock:
            self._background[run_id] = proc
        self._log(f"launched {job_name}: run {run_id} ({time.monotonic() - started:.1f} s)")
        return run_id

    def wait(self, run_id: str, timeout: float = 600.0) -> str:
        """Wait for a run to finish, with every event stored.

        For a run of :meth:`launch_in_background`, until its process exits (killed on
        expiry of `timeout`). For any other run, until its status is terminal and, if
        a run worker was started, until that worker logged its exit (the ENGINE_EVENT
        Dagster stores after RUN_SUCCESS/RUN_FAILURE/RUN_CANCELED).

        Parameters
        ----------
        run_id : str
            A run id of this Dagster.
        timeout : float, default 600.0
            Seconds to wait.

        Returns
        -------
        str
            The run's final status, e.g. ``"SUCCESS"``, ``"FAILURE"`` or ``"CANCELED"``.

        Raises
        ------
        RuntimeError
            If the run does not finish within `timeout`, can never finish (NOT_STARTED,
            or held in the queue), or is QUEUED while the daemon is not running.
        """
        with self._lock:
            proc = self._background.get(run_id)
        if proc is not None:
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise RuntimeError(f"run {run_id} did not finish within {timeout:.0f} s:\n{proc.tail()}") from None
            status = self._run_status(run_id)
            self._log(f"run {run_id} finished: {status} ({time.monotonic() - proc.started:.1f} s since launch)")
            return status
        started = time.monotonic()
        deadline = started + timeout
        while (status := self._run_status(run_id)) not in TERMINAL_STATUSES:
            if status == "UNKNOWN":
                raise RuntimeError(f"run {run_id} is not in {self._home}")
            if status == "NOT_STARTED" and not self._started_process(run_id):
                raise RuntimeError(f"run {run_id} was never launched (NOT_STARTED): it will not finish")
            if status == "QUEUED":
                if self._tag(run_id, DEMO_TAG) == HELD:
                    raise RuntimeError(f"run {run_id} is held in the queue ({DEMO_TAG}={HELD}): it will not finish")
                daemon = self._daemon
                if daemon is None or not daemon.alive():
                    tail = f":\n{daemon.tail()}" if daemon is not None else ""
                    raise RuntimeError(f"run {run_id} is QUEUED and no dagster-daemon is running to launch it{tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run_id} did not finish within {timeout:.0f} s (status {status})")
            time.sleep(_POLL_SECONDS)
        # A run worker logs its exit after the terminal event: wait for that line too,
        # so the run's event log is complete when this returns.
        if self._started_process(run_id):
            while not self._has_event(run_id, "ENGINE_EVENT", _PROCESS_EXITED) and time.monotonic() < deadline:
                time.sleep(_POLL_SECONDS)
        self._log(f"run {run_id} finished: {status} (waited {time.monotonic() - started:.1f} s)")
        return status

    def wait_for_event(self, run_id: str, event_type: str, timeout: float = 120.0) -> None:
        """Wait until the run's event log holds an event of `event_type` (e.g. ``"STEP_START"``).

        Raises
        ------
        RuntimeError
            If `timeout` passes first, or the run ends without one.
        """
        deadline = time.monotonic() + timeout
        while not self._has_event(run_id, event_type):
            status = self._run_status(run_id)
            if status in TERMINAL_STATUSES and not self._has_event(run_id, event_type):
                raise RuntimeError(f"run {run_id} ended ({status}) without a {event_type} event")
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run_id} has no {event_type} event after {timeout:.0f} s (status {status})")
            time.sleep(_POLL_SECONDS)

    # ------------------------------------------------------------------ webserver

    @property
    def home(self) -> Path | None:
        """The ``DAGSTER_HOME`` directory, or None before :meth:`create_home`."""
        return self._home

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the webserver.

        Raises
        ------
        RuntimeError
            If the webserver has not been started and no port was given.
        """
        if self._port is None:
            raise RuntimeError("the webserver is not started: call start_webserver() first")
        return f"http://{self._host}:{self._port}"

    @property
    def url(self) -> str:
        """The GraphQL endpoint, ``http://HOST:PORT/graphql``."""
        return f"{self.base_url}/graphql"

    def start_webserver(self, timeout: float = 60.0) -> str:
        """Start ``dagster-webserver`` on the demo definitions and wait until it answers.

        Starts the code server first if it is not running (:meth:`start`). Ready means
        ``GET /server_info`` answers 200, which Dagster does only once its code
        location has loaded.

        Parameters
        ----------
        timeout : float, default 60.0
            Seconds to wait for the server to become ready.

        Returns
        -------
        str
            The base URL, as :attr:`base_url`.

        Raises
        ------
        DemoNotInstalled
            If dagster-webserver is not installed.
        RuntimeError
            If the webserver is already running, the port is taken, or the server
            exits or does not answer within `timeout` (with the tail of its output).
        """
        proc = self._spawn_webserver(timeout)
        self._wait_webserver(proc, time.monotonic() + timeout, timeout)
        return self.base_url

    def start_daemon(self, timeout: float = 60.0) -> None:
        """Start ``dagster-daemon`` and wait until its run queue is working.

        The daemon dequeues the runs :meth:`launch` queues and launches them (it also
        runs Dagster's scheduler and sensor loops, idle here). Ready means its
        ``QUEUED_RUN_COORDINATOR`` heartbeat is stored. Starts the code server first
        if it is not running (:meth:`start` starts everything).

        Raises
        ------
        RuntimeError
            If the daemon is already running, or exits or is not ready within
            `timeout` (with the tail of its output).
        """
        if self._daemon is not None and self._daemon.alive():
            raise RuntimeError("the dagster-daemon is already running")
        started = time.monotonic()
        proc = self._spawn_daemon(timeout)
        deadline = started + timeout
        while (code := proc.popen.poll()) is None and not self._daemon_heartbeat():
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"dagster-daemon was not ready within {timeout:.0f} s:\n{proc.tail()}")
            time.sleep(_POLL_SECONDS)
        if code is not None:
            raise RuntimeError(f"dagster-daemon exited with code {code}:\n{proc.tail()}")
        self._log(f"daemon ready ({time.monotonic() - started:.1f} s)")

    def start(self, timeout: float = 60.0) -> str:
        """Start what is not running of the code server, the webserver and the daemon.

        This is the queued path :meth:`launch` needs, laid out as ``dagster dev`` lays
        it out: one gRPC code server loads the definitions, and the webserver and the
        daemon both use it. The code server creates the sqlite storage before it
        listens; the webserver and the daemon then start together (had two of them
        created the storage at once, they could race on its tables). The daemon is
        not waited for: runs launched meanwhile wait in the queue.

        Parameters
        ----------
        timeout : float, default 60.0
            Seconds to wait for the code server, then for the webserver.

        Returns
        -------
        str
            The base URL, as :attr:`base_url`.
        """
        web_running = self._webserver is not None and self._webserver.alive()
        daemon_running = self._daemon is not None and self._daemon.alive()
        if not web_running:
            self._check_webserver_port()  # before starting anything
        self._spawn_code_server(timeout)
        # Should the code server not have created the storage, the webserver creates it first.
        if not daemon_running and self._storage_ready():
            self._spawn_daemon(timeout)
            daemon_running = True
        if not web_running:
            self.start_webserver(timeout)
        if not daemon_running:
            self._spawn_daemon(timeout)
        return self.base_url

    def _spawn_code_server(self, timeout: float) -> None:
        """Start the gRPC code server, unless it runs, and wait until it listens."""
        if self._code_server is not None and self._code_server.alive():
            return
        _require("dagster")
        home = self.create_home() if self._home is None else self._home
        started = time.monotonic()
        port = _free_port(self._host)
        command = [sys.executable, "-m", "dagster", "api", "grpc", "-m", DEFINITIONS_MODULE, "-h", self._host,
                   "-p", str(port), "--location-name", DEFINITIONS_MODULE]
        proc = self._spawn(command, "code-server")
        self._code_server = proc
        deadline = started + timeout
        # The server listens once it has loaded the definitions.
        while (code := proc.popen.poll()) is None and not _listens(self._host, port):
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the dagster code server did not listen within {timeout:.0f} s:\n{proc.tail()}")
            time.sleep(_POLL_SECONDS)
        if code is not None:
            raise RuntimeError(f"the dagster code server exited with code {code}:\n{proc.tail()}")
        (home / "workspace.yaml").write_text(_WORKSPACE_YAML.format(
            host=json.dumps(self._host), port=port, location=json.dumps(DEFINITIONS_MODULE)))
        self._log(f"code server ready on port {port} ({time.monotonic() - started:.1f} s)")

    def _check_webserver_port(self) -> None:
        _require("dagster_webserver")
        if self._webserver is not None and self._webserver.alive():
            raise RuntimeError(f"the webserver is already running at {self.base_url}")
        if self._home is None:
            self.create_home()
        if self._port is None:
            self._port = _free_port(self._host)
        elif not _port_free(self._host, self._port):
            raise RuntimeError(f"port {self._port} on {self._host} is already in use; pass another port or None")

    def _spawn_webserver(self, timeout: float) -> _Process:
        self._check_webserver_port()
        self._spawn_code_server(timeout)
        assert self._home is not None
        command = [sys.executable, "-m", "dagster_webserver", "-h", self._host, "-p", str(self._port),
                   "-w", str(self._home / "workspace.yaml")]
        proc = self._spawn(command, "webserver")
        self._webserver = proc
        return proc

    def _wait_webserver(self, proc: _Process, deadline: float, timeout: float) -> None:
        started = proc.started
        # Check the process before the URL: if it died (port grabbed in between),
        # whatever else answers on that port is not our server.
        while (code := proc.popen.poll()) is None and not _answers(f"{self.base_url}/server_info"):
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"dagster-webserver did not answer within {timeout:.0f} s:\n{proc.tail()}")
            time.sleep(_POLL_SECONDS)
        if code is not None:
            raise RuntimeError(
                f"dagster-webserver exited with code {code} before serving {self.base_url}:\n{proc.tail()}"
            )
        self._log(f"webserver ready at {self.url} ({time.monotonic() - started:.1f} s)")

    def _spawn_daemon(self, timeout: float) -> _Process:
        self._spawn_code_server(timeout)
        assert self._home is not None
        command = [sys.executable, "-m", "dagster._daemon", "run", "-w", str(self._home / "workspace.yaml")]
        proc = self._spawn(command, "daemon")
        self._daemon = proc
        self._log("dagster-daemon started")
        return proc

    # -------------------------------------------------------------------- helpers

    def _log(self, message: str) -> None:
        if self._log_fn is not None:
            self._log_fn(f"[runlens.demo +{time.monotonic() - self._created:.1f}s] {message}")

    def _spawn(self, command: list[str], name: str) -> _Process:
        assert self._home is not None
        env = dict(os.environ, DAGSTER_HOME=str(self._home))
        # The subprocesses must import the same runlens as this process, installed
        # or not; the home as working directory keeps the caller's cwd (and any
        # stray modules in it) out of Dagster's code location.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        # The daemon's launch request to the code server (which starts the run worker)
        # times out after 60 s by default; on a loaded machine that failed seeded runs
        # before they started ("User code server request timed out").
        env.setdefault("DAGSTER_GRPC_TIMEOUT_SECONDS", "300")
        # Output goes to a file, not a pipe: a log storm would fill a pipe nobody
        # reads and block the run.
        log_path = self._home / "runlens-logs" / f"{name}.log"
        with open(log_path, "wb") as output:
            popen = subprocess.Popen(
                command,
                cwd=self._home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = _Process(popen, log_path)
        with self._lock:
            self._processes.append(proc)
            if not self._atexit_registered:
                atexit.register(self.stop)
                self._atexit_registered = True
        return proc

    def _query(self, sql: str, *params: str, db: str = "runs.db") -> tuple | None:
        assert self._home is not None
        path = self._home / "history" / db
        if not path.exists():
            return None
        try:
            # Read-only and short-lived: Dagster processes write this database
            # concurrently, and a missing file or table just means "not yet".
            with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)) as conn:
                return conn.execute(sql, params).fetchone()
        except sqlite3.OperationalError:
            return None

    def _find_run_id(self, token: str) -> str | None:
        row = self._query("SELECT run_id FROM run_tags WHERE key = ? AND value = ?", RUN_TOKEN_TAG, token)
        return row[0] if row else None

    def _run_status(self, run_id: str) -> str:
        row = self._query("SELECT status FROM runs WHERE run_id = ?", run_id)
        return row[0] if row else "UNKNOWN"

    def _tag(self, run_id: str, key: str) -> str | None:
        row = self._query("SELECT value FROM run_tags WHERE run_id = ? AND key = ?", run_id, key)
        return row[0] if row else None

    def _has_event(self, run_id: str, event_type: str, message: str | None = None) -> bool:
        # The sqlite event log keeps one database per run; RUN_* types are stored under
        # their legacy PIPELINE_* names.
        stored = event_type.replace("RUN_", "PIPELINE_", 1) if event_type.startswith("RUN_") else event_type
        sql = "SELECT 1 FROM event_logs WHERE dagster_event_type = ?"
        params = [stored]
        if message is not None:
            sql += " AND instr(event, ?) > 0"
            params.append(message)
        return self._query(sql + " LIMIT 1", *params, db=f"runs/{run_id}.db") is not None

    def _started_process(self, run_id: str) -> bool:
        return self._has_event(run_id, "ENGINE_EVENT", _PROCESS_STARTED)

    def _storage_ready(self) -> bool:
        # Dagster stamps the schema version once it has created the tables.
        return self._query("SELECT 1 FROM alembic_version") is not None

    def _daemon_heartbeat(self) -> bool:
        row = self._query("SELECT 1 FROM daemon_heartbeats WHERE daemon_type = 'QUEUED_RUN_COORDINATOR'")
        return row is not None

    def _repository_selector(self) -> dict[str, str]:
        if self._selector is None:
            result = self._graphql(_REPOSITORIES_QUERY)["repositoriesOrError"]
            nodes = result.get("nodes") or []
            if len(nodes) != 1:
                raise RuntimeError(f"expected the demo's one code location, got {result}")
            self._selector = {"repositoryLocationName": nodes[0]["location"]["name"],
                              "repositoryName": nodes[0]["name"]}
        return self._selector

    def _graphql(self, query: str, **variables: Any) -> dict:
        """POST one GraphQL request to the webserver; return its ``data``."""
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60.0) as response:
                doc = json.load(response)
        except urllib.error.HTTPError as exc:
            # Dagster answers 400/500 with a JSON body naming the problem.
            try:
                doc = json.load(exc)
            except ValueError:
                raise RuntimeError(f"{self.url} answered HTTP {exc.code}") from None
        if not doc.get("data"):
            raise RuntimeError(f"GraphQL error from {self.url}: {doc.get('errors')}")
        return doc["data"]


def seed_runs(demo: DemoDagster) -> dict[str, str]:
    """Make the runs of every kind a client meets on a real Dagster; return their ids.

    Starts the code server, the webserver and the daemon if needed
    (:meth:`DemoDagster.start`). Every run but the never-launched one goes through
    the queue (:meth:`DemoDagster.launch`), so it has a RUN_ENQUEUED event, and those
    that start a RUN_STARTING one, as on a deployment. The runs overlap; this
    returns once every run that can end has ended, with all its events stored.

    Parameters
    ----------
    demo : DemoDagster
        Where to make them.

    Returns
    -------
    dict of str to str
        Run ids by kind, in the order of :data:`SEED_KEYS`:

        ``etl``
            ``etl_job``, SUCCESS: ten steps, a retry, a materialization.
        ``failing``
            ``failing_job``, FAILURE: a step raises, its downstream step never runs.
        ``queued``
            ``etl_job``, QUEUED for good: tagged ``runlens/demo=held``, which the
            queue never releases. No steps, no start.
        ``canceled_queued``
            ``failing_job``, held in the queue, then terminated: CANCELED without
            ever starting.
        ``canceled_running``
            ``slow_job``, terminated while its first step ran: CANCELED, that step
            interrupted, the two others never started.
        ``not_started``
            ``etl_job``, created and never launched: NOT_STARTED for good.
        ``printing``
            ``printing_job``, SUCCESS, on the in-process executor: one compute log
            file for the run, with the demo's printed blocks and a 5 MB stderr flood.
        ``daily_orders``
            ``daily_orders_job``, SUCCESS: the daily-partitioned asset ``daily_orders``
            over :data:`DAILY_PARTITIONS`, one run, a materialization per partition with
            ``row_count``/``duration_s``/``source`` metadata.
        ``daily_orders_rerun``
            The same over :data:`DAILY_RERUN_PARTITIONS`, launched as soon as the first
            has ended (batch 1: other row counts), so those partitions have two
            materializations each.
        ``diamond_alike_1`` … ``diamond_alike_4``, ``diamond_slow_1`` … ``diamond_slow_3``
            ``diamond_job`` (``a → (b, c) → d``), SUCCESS: four runs with every step
            sleeping :data:`DIAMOND_SECONDS`, then three with ``b`` sleeping
            :data:`DIAMOND_SLOW_B_SECONDS` (created in this order, so a baseline of the
            previous runs and a change point see alike runs, then a level change).
    """
    started = time.monotonic()
    demo.start()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="runlens-demo-seed") as pool:
        # A subprocess importing dagster for seconds: made while the others run.
        not_started = pool.submit(demo.create_run, "etl_job", {DEMO_TAG: "never-launched"})
        etl = demo.launch("etl_job")
        daily = demo.launch("daily_orders_job", tags=_partition_range_tags(*DAILY_PARTITIONS))
        # The rerun's materializations must come after the first run's: launched as soon as it ends.
        rerun = pool.submit(_launch_after, demo, daily, "daily_orders_job",
                            {"ops": {"daily_orders": {"config": {"batch": 1}}}},
                            _partition_range_tags(*DAILY_RERUN_PARTITIONS))
        failing = demo.launch("failing_job")
        queued = demo.launch("etl_job", held=True)
        canceled_queued = demo.launch("failing_job", held=True)
        demo.terminate(canceled_queued)
        # The first step sleeps a minute: it is surely running when the run is terminated.
        long_first_step = {"ops": {"slow_start": {"config": {"seconds": 60.0}}}}
        canceled_running = demo.launch("slow_job", long_first_step, {DEMO_TAG: "canceled-while-running"})
        demo.wait_for_event(canceled_running, "STEP_START")
        demo.terminate(canceled_running)
        # Launched last so it does not slow the slow_job's first step, which is awaited above.
        printing = demo.launch("printing_job")
        # Queued after the cancellation: launched together with slow_job, they delayed its
        # step's start past wait_for_event's 120 s on a loaded machine.
        diamonds = _launch_diamonds(demo)
        rerun = rerun.result()
        for run_id in (etl, failing, canceled_queued, canceled_running, printing, daily, rerun, *diamonds.values()):
            demo.wait(run_id)
        runs = {"etl": etl, "failing": failing, "queued": queued, "canceled_queued": canceled_queued,
                "canceled_running": canceled_running, "not_started": not_started.result(),
                "printing": printing, "daily_orders": daily, "daily_orders_rerun": rerun, **diamonds}
    demo._log(f"seeded {len(runs)} runs in {time.monotonic() - started:.1f} s")
    return runs


def _launch_after(demo: DemoDagster, first: str, job_name: str, run_config: dict, tags: dict[str, str]) -> str:
    """Wait for run ``first`` to end, then launch ``job_name``; its run id."""
    demo.wait(first)
    return demo.launch(job_name, run_config, tags)


def _launch_diamonds(demo: DemoDagster) -> dict[str, str]:
    """Launch diamond_job's alike runs, then its slow ones, in that order of creation; the
    queue runs them side by side."""
    def config(b_seconds: float) -> dict:
        ops = {name: {"config": {"seconds": DIAMOND_SECONDS}} for name in "acd"}
        return {"ops": {**ops, "b": {"config": {"seconds": b_seconds}}}}

    runs = {}
    for i in range(1, DIAMOND_ALIKE + 1):
        runs[f"diamond_alike_{i}"] = demo.launch("diamond_job", config(DIAMOND_SECONDS), {DEMO_TAG: DIAMOND})
    for i in range(1, DIAMOND_SLOW + 1):
        runs[f"diamond_slow_{i}"] = demo.launch("diamond_job", config(DIAMOND_SLOW_B_SECONDS), {DEMO_TAG: DIAMOND})
    return runs


def connect(*, log: Callable[[str], None] | None = print, **client_options: Any):
    """A client for the configured Dagster, or for a local demo Dagster started now.

    When nothing is configured (no ``RUNLENS_URL``, no Dagster+ settings), starts a
    :class:`DemoDagster`, seeds it with :func:`seed_runs` (which starts its webserver
    and daemon): what the notebooks do so they run anywhere. Stop the demo with
    ``demo.stop()`` when done.

    Returns
    -------
    tuple of (runlens.Client, DemoDagster or None)
        The client, and the demo it talks to (None when a configured server is used).
    """
    from ..client import Client

    client = Client(**client_options)
    if not client.settings.is_default:
        return client, None
    demo = DemoDagster(log=log)
    try:
        seed_runs(demo)
    except BaseException:
        demo.stop()
        raise
    return Client(demo.url, **client_options), demo


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option uvicorn sets, so a port in TIME_WAIT counts as free while a
        # listening socket does not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_gone(processes: list[_Process], timeout: float) -> list[_Process]:
    """Wait until every group is gone or `timeout` passes; return those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if p.alive()]
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        alive = [p for p in alive if p.alive()]
    return alive


def _listens(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _answers(url: str) -> bool:
    # URLError (refused, HTTP errors) and socket timeouts are all OSErrors.
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return response.status == 200
    except OSError:
        return False
