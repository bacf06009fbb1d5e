"""Start and stop a real local Dagster that runs :mod:`runlens.demo.definitions`.

Nothing here imports dagster: every Dagster process is a subprocess of the current
Python interpreter, so ``import runlens.demo.server`` stays cheap and works
without the ``runlens[demo]`` extra until something is actually started.

Runs are executed the way a deployment executes them, with
``python -m dagster job execute`` against a throwaway ``DAGSTER_HOME`` (sqlite
storage, multiprocess executor). Each run is tagged with a unique token, and its
run id is then read back from the home's sqlite run storage with the standard
library: asking a ``DagsterInstance`` in a subprocess would cost a dagster import
(about 1.5 s) per lookup, and polling for a background run needs many lookups.

Every process is started in a new session and stopped by signalling its whole
process group, so the step workers, forkservers, gRPC code servers and runs that
Dagster starts underneath never outlive :meth:`DemoDagster.stop`. POSIX only for
that guarantee; elsewhere only the direct children are terminated.

Examples
--------
>>> from runlens.demo.server import DemoDagster, seed_runs
>>> with DemoDagster(log=print) as demo:  # doctest: +SKIP
...     runs = seed_runs(demo)
...     demo.start_webserver()
...     print(demo.url, runs["etl"])
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
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFINITIONS_MODULE",
    "RUN_TOKEN_TAG",
    "TERMINAL_STATUSES",
    "DemoDagster",
    "DemoNotInstalled",
    "seed_runs",
]

#: The module every Dagster process started here loads its definitions from.
DEFINITIONS_MODULE = "runlens.demo.definitions"

#: Tag carrying the unique token that identifies a run started by :class:`DemoDagster`.
RUN_TOKEN_TAG = "runlens/demo_run_key"

#: Run statuses after which a run never changes again.
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})

# DefaultRunCoordinator makes runs launched through the webserver's GraphQL start
# at once; the default QueuedRunCoordinator would leave them QUEUED without a daemon.
_DAGSTER_YAML = """\
storage:
  sqlite:
    base_dir: {home}
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
"""

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
    """A throwaway local Dagster: a ``DAGSTER_HOME``, runs, and optionally a webserver.

    Parameters
    ----------
    home : str or os.PathLike, optional
        Directory to use as ``DAGSTER_HOME``. Created if missing; a ``dagster.yaml``
        is written into it unless one exists (an existing one must keep the default
        sqlite storage under the home, where run ids are looked up). A given home is
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
                config.write_text(_DAGSTER_YAML.format(home=json.dumps(str(self._home))))
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

    def execute(
        self,
        job_name: str,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        timeout: float = 600.0,
    ) -> str:
        """Execute a job to completion with ``dagster job execute``.

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
        """Start executing a job and return as soon as its run exists.

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
        """Wait for a run started by :meth:`launch_in_background` to finish.

        Parameters
        ----------
        run_id : str
            A run id returned by :meth:`launch_in_background`.
        timeout : float, default 600.0
            Seconds to wait; on expiry the run's processes are killed.

        Returns
        -------
        str
            The run's final status, e.g. ``"SUCCESS"`` or ``"FAILURE"``.

        Raises
        ------
        KeyError
            If the run was not started by this object.
        RuntimeError
            If the run does not finish within `timeout`.
        """
        with self._lock:
            proc = self._background[run_id]
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise RuntimeError(f"run {run_id} did not finish within {timeout:.0f} s:\n{proc.tail()}") from None
        status = self._run_status(run_id)
        self._log(f"run {run_id} finished: {status} ({time.monotonic() - proc.started:.1f} s since launch)")
        return status

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

        Ready means ``GET /server_info`` answers 200, which Dagster does only once
        its code location has loaded.

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
        _require("dagster_webserver")
        if self._webserver is not None and self._webserver.alive():
            raise RuntimeError(f"the webserver is already running at {self.base_url}")
        if self._home is None:
            self.create_home()
        started = time.monotonic()
        if self._port is None:
            self._port = _free_port(self._host)
        elif not _port_free(self._host, self._port):
            raise RuntimeError(f"port {self._port} on {self._host} is already in use; pass another port or None")
        command = [sys.executable, "-m", "dagster_webserver", "-h", self._host, "-p", str(self._port)]
        proc = self._spawn(command + ["-m", DEFINITIONS_MODULE], "webserver")
        self._webserver = proc
        deadline = started + timeout
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
        return self.base_url

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

    def _query(self, sql: str, *params: str) -> tuple | None:
        assert self._home is not None
        path = self._home / "history" / "runs.db"
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


def seed_runs(demo: DemoDagster) -> dict[str, str]:
    """Execute ``etl_job`` and ``failing_job`` and return their run ids.

    The two runs overlap: ``failing_job`` starts once ``etl_job``'s run exists,
    so the first process has already created the sqlite storage (two processes
    creating it at once could race on its tables).

    Parameters
    ----------
    demo : DemoDagster
        Where to run them.

    Returns
    -------
    dict of str to str
        ``{"etl": run_id, "failing": run_id}``.
    """
    etl = demo.launch_in_background("etl_job")
    failing = demo.execute("failing_job")
    demo.wait(etl)
    return {"etl": etl, "failing": failing}


def connect(*, log: Callable[[str], None] | None = print, **client_options: Any):
    """A client for the configured Dagster, or for a local demo Dagster started now.

    When nothing is configured (no ``RUNLENS_URL``, no Dagster+ settings), starts a
    :class:`DemoDagster`, seeds it with :func:`seed_runs` and serves it: what the
    notebooks do so they run anywhere. Stop the demo with ``demo.stop()`` when done.

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
        demo.start_webserver()
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


def _answers(url: str) -> bool:
    # URLError (refused, HTTP errors) and socket timeouts are all OSErrors.
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return response.status == 200
    except OSError:
        return False
