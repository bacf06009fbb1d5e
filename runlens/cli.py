"""The ``runlens`` command: the seed's ``run get`` and ``run-events get``, plus ``demo``.

Only click is imported at module level: ``runlens --help`` must answer without loading
pandas. Every command calls the library; library errors become one line on stderr and
the exit code of their class.

Exit codes: 0 success; 2 usage or configuration error; 3 run not found;
4 authentication; 5 server unreachable, timed out or rate-limited after retries;
1 any other server error.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings

import click

EXIT_CODES_HELP = (
    "Exit codes: 0 success, 1 server error, 2 usage or configuration error, "
    "3 run not found, 4 authentication, 5 server unreachable or rate-limited."
)

url_option = click.option(
    "--url",
    envvar="RUNLENS_URL",
    show_envvar=True,
    help="Dagster webserver or GraphQL URL (default: Dagster+ from DAGSTER_CLOUD_* / dg config, "
    "else http://localhost:3000).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Output in JSON format.")


def _error_code(exc: Exception) -> str:
    # RunNotFound -> RUN_NOT_FOUND
    name = type(exc).__name__
    return "".join("_" + c if c.isupper() and i else c for i, c in enumerate(name)).upper()


def handle_errors(func):
    """Turn a RunlensError into one line on stderr and its exit code (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from .errors import RunlensError

        as_json = kwargs.get("as_json", False)
        try:
            return func(*args, **kwargs)
        except RunlensError as exc:
            if as_json:
                doc = {"error": str(exc), "code": _error_code(exc), "run_id": kwargs.get("run_id")}
                click.echo(json.dumps(doc, ensure_ascii=False), err=True)
            else:
                click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            # Not sys.exit: that would wait for a prefetch thread to finish its retries.
            os._exit(130)

    return wrapper


def _client(url: str | None):
    from .client import Client

    return Client(url, progress=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="runlens")
def main() -> None:
    """runlens: Dagster runs, events and steps from the command line.

    Connects to RUNLENS_URL, or Dagster+ (DAGSTER_CLOUD_API_TOKEN,
    DAGSTER_CLOUD_ORGANIZATION, DAGSTER_CLOUD_DEPLOYMENT or `dg plus login`), or
    http://localhost:3000.
    """


@main.group("run")
def run_group() -> None:
    """Run metadata."""


@run_group.command("get", epilog=EXIT_CODES_HELP)
@click.argument("run_id")
@url_option
@json_option
@handle_errors
def run_get(run_id: str, url: str | None, as_json: bool) -> None:
    """Show a run's metadata: status, job, times (UTC), tags, step counts."""
    from .formatting import format_run

    run = _client(url).run(run_id)
    click.echo(format_run(run, as_json=as_json))


@run_group.command("list", epilog=EXIT_CODES_HELP)
@click.option("--job", help="Only runs of this job.")
@click.option("--status", "statuses", help="Only runs in these statuses (comma-separated, e.g. FAILURE,CANCELED).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many runs.")
@url_option
@json_option
@handle_errors
def run_list(job: str | None, statuses: str | None, limit: int, url: str | None, as_json: bool) -> None:
    """List runs, newest first."""
    from .formatting import iso

    frame = _client(url).runs(job=job, statuses=statuses, limit=limit)
    records = [
        {
            "id": r.run_id,
            "job_name": r.job_name if r.job_name == r.job_name else None,
            "status": str(r.status),
            "created_at": iso(r.created.to_pydatetime()) if r.created == r.created else None,
            "duration_seconds": r.duration.total_seconds() if r.duration == r.duration else None,
        }
        for r in frame.itertuples()
    ]
    if as_json:
        click.echo(json.dumps({"runs": records, "count": len(records)}, indent=2))
        return
    if not records:
        click.echo("No runs found")
        return
    click.echo(f"{'RUN_ID':<38} {'JOB':<24} {'STATUS':<10} {'CREATED':<25} DURATION")
    for r in records:
        duration = "" if r["duration_seconds"] is None else f"{r['duration_seconds']:.1f} s"
        click.echo(f"{r['id']:<38} {r['job_name'] or '':<24} {r['status']:<10} {r['created_at'] or '':<25} {duration}")


@main.group("run-events")
def run_events_group() -> None:
    """Run events."""


@run_events_group.command("get", epilog=EXIT_CODES_HELP)
@click.argument("run_id")
@click.option("--type", "event_type", help="Only these event types (comma-separated, e.g. STEP_START,STEP_FAILURE).")
@click.option("--step", "step_key", help="Only events whose step key contains this (case-insensitive).")
@click.option("--level", "level", help="Only these levels (comma-separated: DEBUG,INFO,WARNING,ERROR,CRITICAL).")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Return the first N matching events (filters apply first; the whole log is scanned if needed).",
)
@url_option
@json_option
@handle_errors
def run_events_get(
    run_id: str, event_type: str | None, step_key: str | None, level: str | None, limit: int,
    url: str | None, as_json: bool,
) -> None:
    """Show a run's events, filtered, in the order Dagster stored them."""
    from .filters import UnknownEventTypeWarning, parse_types, unknown_types

    if event_type is not None and event_type.strip(" ,") == "":
        raise click.UsageError("--type names no event type", ctx=click.get_current_context())
    for name, suggestions in unknown_types(parse_types(event_type) or []):
        hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
        click.echo(f"Warning: {name} is not a Dagster event type{hint}", err=True)
    from .formatting import format_events_json, format_events_table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownEventTypeWarning)
        events = _client(url).events(run_id, types=event_type, step=step_key, levels=level, limit=limit)
    if as_json:
        click.echo(format_events_json(events, run_id))
    else:
        click.echo(format_events_table(events, run_id))


@main.command("demo")
@click.option("--serve", is_flag=True, help="Keep the webserver running until Ctrl-C and print its URL.")
@click.option("--port", type=click.IntRange(1, 65535), help="Port for the webserver (default: a free one).")
@click.option("--out", "out_dir", default="demo-output", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the timeline PNGs.")
@handle_errors
def demo(serve: bool, port: int | None, out_dir: str) -> None:
    """Run the demo jobs on a local Dagster that runlens starts, and show them."""
    from .demo.walkthrough import run_walkthrough

    sys.exit(run_walkthrough(serve=serve, port=port, out_dir=out_dir))


if __name__ == "__main__":  # pragma: no cover
    main()
