"""``runlens demo``: start a local Dagster, run the demo jobs, and show what runlens sees.

Everything shown is fetched over GraphQL by runlens's own :class:`runlens.Client`, from
the webserver started here. The runs are launched through the same GraphQL (queued, then
launched by the ``dagster-daemon`` started here); Dagster's Python API is used only to
create the one run that is never launched.
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import click

from ..text import iso_utc
from .server import DemoDagster, DemoNotInstalled, seed_runs

# The seeded runs without steps, and why (see seed_runs).
_NO_STEPS = {
    "queued": "held in the queue for good (tag runlens/demo=held has a concurrency limit of 0)",
    "canceled_queued": "terminated while it waited in the queue",
    "not_started": "created and never launched",
}


class _Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def stage(self, message: str) -> None:
        click.secho(f"[{time.monotonic() - self.started:6.1f} s] {message}", fg="cyan", err=True)


def _section(title: str) -> None:
    click.echo()
    click.secho(f"== {title} ", bold=True, nl=False)
    click.secho("=" * max(0, 76 - len(title)), bold=True)


def show_run(client, run_id: str, out_dir: Path) -> Path:
    """Print one run's summary, step table, failure and a few events; write its timeline PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from ..formatting import format_events_table
    from ..plotting import plot_timeline
    from ..steps import step_durations
    from ..summary import run_summary

    run = client.run(run_id)
    events = client.events(run_id)
    # A failed run's summary ends with the failing step's last stderr lines (its compute log).
    summary = run_summary(events, run, logs=client if str(run.status) == "FAILURE" else None, log_lines=8)
    _section(f"{run.job_name}  {run.id}  {run.status}")
    click.echo(str(summary))
    click.echo()
    steps = step_durations(events)
    table = steps[["step_key", "status", "attempts", "duration", "retry_wait", "worker_startup"]].copy()
    for column in ("duration", "retry_wait", "worker_startup"):
        table[column] = table[column].dt.total_seconds().round(3)
    with pd.option_context("display.width", 120, "display.max_rows", 100):
        click.echo(table.rename(columns=lambda c: c if c in ("step_key", "status", "attempts") else c + " (s)")
                   .to_string(index=False))
    interesting = events[events["event_type"].isin(["STEP_UP_FOR_RETRY", "STEP_FAILURE", "RUN_FAILURE",
                                                    "RUN_SUCCESS", "ASSET_MATERIALIZATION"])
                         | (events["level"] >= "ERROR")]
    click.echo()
    click.echo(format_events_table(interesting, run_id))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"timeline-{run.job_name}-{run.id[:8]}.png"
    ax = plot_timeline(events)
    ax.figure.savefig(path, dpi=110, bbox_inches="tight")
    click.echo(f"\nTimeline written to {path}  ({len(events)} events fetched over GraphQL)")
    return path


# A step's median and 90th-percentile duration over every stored run (durations are float
# seconds in the store's files).
HISTORY_SQL = """SELECT step_key, count(*) AS runs,
       round(median(duration), 3) AS p50_s, round(quantile_cont(duration, 0.9), 3) AS p90_s
FROM steps WHERE duration IS NOT NULL GROUP BY step_key ORDER BY p50_s DESC LIMIT 8"""


def show_history(client, out_dir: Path) -> Path:
    """Sync the demo's runs into ``out_dir/history`` and print what History queries return."""
    import pandas as pd

    from ..history import History
    from ..trends import duration_trend

    path = out_dir / "history"
    if (path / "manifest.json").is_file():
        # The store of an earlier demo: its Dagster is gone (a store holds one deployment).
        shutil.rmtree(path)
    h = History(path)
    # grace=0: seed_runs waited for each run's worker to log its exit, the run's last event,
    # so the events of every finished run are already final.
    report = h.sync(client, grace=0, progress=False)
    _section("History: the runs synced into a local store (runlens.History)")
    click.echo(f"h = runlens.History({str(path)!r})")
    click.echo(f"h.sync(client): {report.runs_discovered} runs discovered, {report.runs_made_final} made final, "
               f"{report.events_written:,} events and {report.steps_written:,} steps written in "
               f"{report.seconds:.2f} s")
    runs = h.runs()
    click.echo(f"h.runs(): {len(runs)} runs, {int(runs['final'].sum())} final "
               f"(queued and never-started runs are run rows only)")
    click.echo()
    click.echo('h.sql("""' + HISTORY_SQL + '""")')
    with pd.option_context("display.width", 120):
        click.echo(h.sql(HISTORY_SQL).to_string(index=False))
    trend = duration_trend(h.steps(job="etl_job"), h.runs(job="etl_job"))
    trend = trend[trend["duration"].notna()]
    if len(trend):
        row = trend.loc[trend["duration"].idxmax()]
        click.echo(f"\nduration_trend(h.steps(job='etl_job'), h.runs(job='etl_job')): {len(trend)} rows; "
                   f"slowest: {row['step_key']} {row['duration']:.3f} s in run {row['run_id'][:8]}")
    return path


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM: either must stop the demo's processes on the way out.

    A shell started in the background ignores SIGINT for its children, and SIGTERM's
    default action would kill this process without running the clean-up.
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(3600):
        pass


def run_walkthrough(*, serve: bool = False, port: int | None = None, out_dir: str = "demo-output") -> int:
    """Run the demo; return the process exit code."""
    from .. import Client

    clock = _Clock()
    try:
        demo = DemoDagster(port=port, log=lambda message: click.secho(message, fg="cyan", err=True))
    except DemoNotInstalled as exc:
        click.echo(f"Error: {exc}", err=True)
        return 2
    with demo:
        try:
            clock.stage(f"Dagster home {demo.home}")
            runs = seed_runs(demo)  # starts the webserver and the daemon
        except (RuntimeError, OSError) as exc:
            click.echo(f"Error: {exc}", err=True)
            return 1
        clock.stage(f"webserver and daemon ready at {demo.base_url}; {len(runs)} runs made")
        client = Client(demo.url, progress=False)
        _section("Runs on the local Dagster (client.runs())")
        listing = client.runs()
        listing = listing.assign(created=listing["created"].map(iso_utc),
                                 seconds=listing["duration"].dt.total_seconds().round(3))
        click.echo(listing[["run_id", "job_name", "status", "created", "seconds"]].to_string(index=False))
        _section("Runs that never ran a step")
        for kind, what in _NO_STEPS.items():
            click.echo(f"{kind:<16} {runs[kind]}  {client.run_status(runs[kind])}: {what}")
        for kind in ("etl", "failing", "canceled_running"):
            show_run(client, runs[kind], Path(out_dir))
        clock.stage("runs shown")
        show_history(client, Path(out_dir))
        clock.stage("done")
        if serve:
            click.echo()
            click.secho(f"Dagster UI and GraphQL at {demo.base_url}  (Ctrl-C stops it)", bold=True)
            click.echo(f"export RUNLENS_URL={demo.base_url}")
            try:
                _wait_for_signal()
            except KeyboardInterrupt:
                pass
            click.echo("stopping", err=True)
    clock.stage(f"stopped every process it started; total {time.monotonic() - clock.started:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_walkthrough())
