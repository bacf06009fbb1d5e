"""The ``runlens`` command: the seed's ``run get`` and ``run-events get``, plus ``sync`` and ``demo``.

Only click is imported at module level: ``runlens --help`` must answer without loading
pandas. Every command calls the library; library errors become one line on stderr and
the exit code of their class. With ``--json`` every error, usage errors included, is
one JSON object on stderr: ``{"error": message, "code": "RUN_NOT_FOUND", "run_id": ...}``
(``"code": "USAGE_ERROR"`` for a bad option, a missing argument or a bad value).

Exit codes: 0 success; 2 usage or configuration error; 3 run not found;
4 authentication; 5 server unreachable, timed out or rate-limited after retries;
1 any other server error.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
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
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Output in JSON format; errors too, as one JSON object on stderr."
)


def _error_code(exc: Exception) -> str:
    # RunNotFound -> RUN_NOT_FOUND
    name = type(exc).__name__
    return "".join("_" + c if c.isupper() and i else c for i, c in enumerate(name)).upper()


def _echo_json_error(message: str, code: str, run_id: str | None) -> None:
    doc = {"error": message, "code": code, "run_id": run_id}
    click.echo(json.dumps(doc, ensure_ascii=False), err=True)


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
                _echo_json_error(str(exc), _error_code(exc), kwargs.get("run_id"))
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


def _wants_json(args: list[str]) -> bool:
    """``--json`` among the options (not after a ``--`` that ends them)."""
    return "--json" in (args[: args.index("--")] if "--" in args else args)


class _Main(click.Group):
    """The top-level group: with ``--json``, a usage error is the JSON error object too.

    click reports a usage error (unknown option, missing argument, bad value) itself,
    as text, before any command runs; so the JSON promise is kept here, around the
    whole parse, with click's own exit code (2).
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        if not (standalone_mode and _wants_json(args)):
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            run_id = ctx.params.get("run_id") if ctx is not None else None
            usage = isinstance(exc, click.UsageError)
            _echo_json_error(exc.format_message(), "USAGE_ERROR" if usage else _error_code(exc), run_id)
            sys.exit(exc.exit_code)
        except click.Abort:
            _echo_json_error("Aborted.", "ABORTED", None)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _terminal_width() -> int | None:
    """The width to fit text tables to; None when stdout is not a terminal (show all)."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
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
    from .formatting import format_runs_json, format_runs_table

    frame = _client(url).runs(job=job, statuses=statuses, limit=limit)
    click.echo(format_runs_json(frame) if as_json else format_runs_table(frame, width=_terminal_width()))


@main.group("run-events")
def run_events_group() -> None:
    """Run events."""


@run_events_group.command("get", epilog=EXIT_CODES_HELP)
@click.argument("run_id")
@click.option("--type", "types", multiple=True, metavar="TYPES",
              help="Only these event types, comma-separated or repeated (--type A --type B = --type A,B), "
              "e.g. STEP_START,STEP_FAILURE.")
@click.option("--step", "steps", multiple=True, metavar="STEP",
              help="Only events whose step key contains this, case-insensitively; comma-separated or "
              "repeated values match any of them.")
@click.option("--level", "levels", multiple=True, metavar="LEVELS",
              help="Only these levels, comma-separated or repeated: DEBUG, INFO, WARNING, ERROR, CRITICAL.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Return the first N matching events (filters apply first; the whole log is scanned if needed). "
    "When more match, text output says so on stderr and JSON has \"has_more\": true.",
)
@click.option("--wide", is_flag=True,
              help="Show whole messages in the table (they are whole anyway when stdout is not a terminal).")
@url_option
@json_option
@handle_errors
def run_events_get(
    run_id: str, types: tuple[str, ...], steps: tuple[str, ...], levels: tuple[str, ...], limit: int,
    wide: bool, url: str | None, as_json: bool,
) -> None:
    """Show a run's events, filtered, in the order Dagster stored them."""
    from .filters import UnknownEventTypeWarning, parse_steps, parse_types, unknown_type_message, unknown_types

    # Repeated options add up: their values mean what they mean joined with commas.
    type_filter, level_filter = ",".join(types) or None, ",".join(levels) or None
    step_filter = parse_steps(",".join(steps))
    for name, suggestions in unknown_types(parse_types(type_filter)):
        click.echo(f"Warning: {unknown_type_message(name, suggestions)}", err=True)
    from .formatting import format_events_json, format_events_table, more_events_note

    with warnings.catch_warnings():
        # Reported once just above; the library would repeat it for every page.
        warnings.simplefilter("ignore", UnknownEventTypeWarning)
        events = _client(url).events(run_id, types=type_filter, step=step_filter, levels=level_filter, limit=limit)
    has_more = bool(events.attrs.get("has_more", False))
    if as_json:
        click.echo(format_events_json(events, run_id, has_more=has_more))
        return
    click.echo(format_events_table(events, run_id, width=None if wide else _terminal_width()))
    if has_more:
        click.echo(more_events_note(events), err=True)


@main.command("sync", epilog=EXIT_CODES_HELP)
@click.option("--store", "store", type=click.Path(),
              help="The History store's folder (created on first use). Default: the deployment's store in the "
              "platform's data directory (e.g. ~/.local/share/runlens/history/...).")
@click.option("--job", help="Only runs of this job.")
@click.option("--since", help="Only runs created since: a duration back from now (90d, 12h, 30m), an ISO date or "
              "datetime.")
@click.option("--until", help="Only runs created before this (same forms as --since).")
@url_option
@json_option
@handle_errors
def sync(store: str | None, job: str | None, since: str | None, until: str | None, url: str | None, as_json: bool) -> None:
    """Sync runs, events and steps into a local History store: only what is new since the last sync."""
    from .history import History
    from .timespec import parse_time

    # Bad bounds are usage errors, reported before any request.
    parse_time(since, what="--since")
    parse_time(until, what="--until")
    client = _client(url)
    # A bar only on a terminal: a command is never in a notebook, whatever else is imported.
    client.progress = not as_json and sys.stderr.isatty()
    history = History(store) if store else History.for_deployment(client)
    report = history.sync(client, job=job, since=since, until=until)
    if as_json:
        click.echo(json.dumps({**report.as_dict(), "store": history.path}, ensure_ascii=False))
    else:
        click.echo(f"{report.summary()} into {history.path}")


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


# --------------------------------------------------------------------------- run explain (issue 17)


@run_group.command("explain", epilog=EXIT_CODES_HELP)
@click.argument("run_id")
@click.option("--baseline", type=click.IntRange(min=1), default=20, show_default=True,
              help="Compare with this many previous successful runs of the job.")
@click.option("--store", type=click.Path(file_okay=False),
              help="Answer from this History store (no request to the server); the run must be synced.")
@url_option
@json_option
@handle_errors
def run_explain(run_id: str, baseline: int, store: str | None, url: str | None, as_json: bool) -> None:
    """Why a run took as long as it did: where the time went, the critical path, steps slower than usual."""
    from .explain import explain_run

    if store:
        from .history import History

        source = History(store)
    else:
        source = _client(url)
    report = explain_run(run_id, source, baseline=baseline)
    click.echo(json.dumps(report.as_dict(), ensure_ascii=False) if as_json else str(report))


if __name__ == "__main__":  # pragma: no cover
    main()
