"""The ``runlens`` command: the seed's ``run get`` and ``run-events get``, plus ``run list``, ``asset``, ``sync`` and ``demo``.

Only click is imported at module level: ``runlens --help`` must answer without loading
pandas. Every command calls the library; library errors become one line on stderr and
the exit code of their class. With ``--json`` every error, usage errors included, is
one JSON object on stderr: ``{"error": message, "code": "RUN_NOT_FOUND", "run_id": ...}``
(``"code": "USAGE_ERROR"`` for a bad option, a missing argument or a bad value).

Exit codes: 0 success; 2 usage or configuration error; 3 run or asset not found;
4 authentication; 5 server unreachable, timed out or rate-limited after retries;
1 any other server error. ``run-events tail`` exits with the run's outcome: 0 SUCCESS,
6 FAILURE, 7 CANCELED, and 5 when ``--timeout`` ran out first.
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
    "3 run or asset not found, 4 authentication, 5 server unreachable or rate-limited."
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


def _echo_json_error(message: str, code: str, run_id: str | None, asset_key: str | None = None) -> None:
    doc = {"error": message, "code": code, "run_id": run_id}
    if asset_key is not None:  # the asset commands' errors name the asset
        doc["asset_key"] = asset_key
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
                _echo_json_error(str(exc), _error_code(exc), kwargs.get("run_id"),
                                 getattr(exc, "asset_key", None) or kwargs.get("asset_key"))
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
            asset_key = ctx.params.get("asset_key") if ctx is not None else None
            usage = isinstance(exc, click.UsageError)
            _echo_json_error(exc.format_message(), "USAGE_ERROR" if usage else _error_code(exc), run_id, asset_key)
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
@click.option("--status", "statuses", multiple=True, metavar="STATUSES",
              help="Only runs in these statuses, comma-separated or repeated (--status FAILURE --status CANCELED).")
@click.option("--since", help="Only runs created since: a duration back from now (90d, 12h, 30m), an ISO date or "
              "datetime (UTC unless it says otherwise).")
@click.option("--until", help="Only runs created before this (same forms as --since).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
              help="Only runs carrying this tag; repeated: all of them.")
@click.option("--cursor", help="A run id: list the runs after it (older ones), e.g. the JSON output's \"cursor\".")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many runs.")
@url_option
@json_option
@handle_errors
def run_list(job: str | None, statuses: tuple[str, ...], since: str | None, until: str | None, tags: tuple[str, ...],
             cursor: str | None, limit: int, url: str | None, as_json: bool) -> None:
    """List runs, newest first."""
    from .formatting import format_runs_json, format_runs_table
    from .timespec import parse_time

    tag_filter = _parse_tags(tags)
    created_after = parse_time(since, what="--since")
    created_before = parse_time(until, what="--until")
    # One run more than shown says whether more follow.
    frame = _client(url).runs(job=job, statuses=",".join(statuses) or None, tags=tag_filter,
                              created_after=created_after, created_before=created_before, limit=limit + 1,
                              cursor=cursor)
    has_more = len(frame) > limit
    frame = frame.iloc[:limit]
    if as_json:
        click.echo(format_runs_json(frame, has_more=has_more))
        return
    click.echo(format_runs_table(frame, width=_terminal_width()))
    if has_more:
        click.echo(f"More runs match: continue with --cursor {frame['run_id'].iloc[-1]}", err=True)


def _parse_tags(tags: tuple[str, ...]) -> dict[str, str] | None:
    """``("team=data", ...)`` -> ``{"team": "data"}``; a value without ``=`` is a usage error."""
    parsed: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{tag!r} is not KEY=VALUE", param_hint="--tag")
        parsed[key.strip()] = value.strip()
    return parsed or None


@main.group("run-events")
def run_events_group() -> None:
    """Run events."""


def _event_filters(types: tuple[str, ...], steps: tuple[str, ...], levels: tuple[str, ...]):
    """``--type`` / ``--step`` / ``--level`` as library filters; an unknown type warned about once, on stderr."""
    from .filters import parse_steps, parse_types, unknown_type_message, unknown_types

    # Repeated options add up: their values mean what they mean joined with commas.
    type_filter, level_filter = ",".join(types) or None, ",".join(levels) or None
    step_filter = parse_steps(",".join(steps))
    for name, suggestions in unknown_types(parse_types(type_filter)):
        click.echo(f"Warning: {unknown_type_message(name, suggestions)}", err=True)
    return type_filter, step_filter, level_filter


type_option = click.option(
    "--type", "types", multiple=True, metavar="TYPES",
    help="Only these event types, comma-separated or repeated (--type A --type B = --type A,B), "
    "e.g. STEP_START,STEP_FAILURE.")
step_option = click.option(
    "--step", "steps", multiple=True, metavar="STEP",
    help="Only events whose step key contains this, case-insensitively; comma-separated or "
    "repeated values match any of them.")
level_option = click.option(
    "--level", "levels", multiple=True, metavar="LEVELS",
    help="Only these levels, comma-separated or repeated: DEBUG, INFO, WARNING, ERROR, CRITICAL.")


@run_events_group.command("get", epilog=EXIT_CODES_HELP)
@click.argument("run_id")
@type_option
@step_option
@level_option
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
@click.option("--cursor", help="Start after this cursor: the \"cursor\" of a previous --json output (the position "
              "after its last event), to page through a run in chunks.")
@click.option("--after-seq", type=click.IntRange(min=0), metavar="N",
              help="Start after the event at position N of the run's log (0 is the first event).")
@url_option
@json_option
@handle_errors
def run_events_get(
    run_id: str, types: tuple[str, ...], steps: tuple[str, ...], levels: tuple[str, ...], limit: int,
    wide: bool, cursor: str | None, after_seq: int | None, url: str | None, as_json: bool,
) -> None:
    """Show a run's events, filtered, in the order Dagster stored them."""
    if cursor is not None and after_seq is not None:
        raise click.UsageError("--cursor and --after-seq both say where to start: give one")
    from .filters import UnknownEventTypeWarning

    type_filter, step_filter, level_filter = _event_filters(types, steps, levels)
    from .formatting import format_events_json, format_events_table, more_events_note

    client = _client(url)
    if after_seq is not None:
        # A cursor is a storage position, not an index: the one after the first N+1 events.
        cursor = client.events(run_id, limit=after_seq + 1).attrs.get("cursor")
    with warnings.catch_warnings():
        # Reported once just above; the library would repeat it for every page.
        warnings.simplefilter("ignore", UnknownEventTypeWarning)
        events = client.events(run_id, types=type_filter, step=step_filter, levels=level_filter, limit=limit,
                               **({"after_cursor": cursor} if cursor else {}))
    has_more = bool(events.attrs.get("has_more", False))
    if as_json:
        click.echo(format_events_json(events, run_id, has_more=has_more, cursor=events.attrs.get("cursor")))
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
@click.option("--no-events", "--light", "light", is_flag=True,
              help="Light sync: Dagster's own stepStats of each finished run (100 runs a request) instead of its "
              "events; no IO/worker/retry split. A later full sync upgrades those runs.")
@click.option("--no-assets", "no_assets", is_flag=True,
              help="Skip the asset events (by default every asset's new materializations, failures and "
              "observations are synced, whatever --job).")
@click.option("--compact", is_flag=True, help="Only merge the store's small files (no request to the server).")
@click.option("--repair", is_flag=True, help="Drop missing, corrupt or truncated files and refetch what they held.")
@click.option("--migrate", is_flag=True, help="Only bring a store of an older runlens to this format "
              "(no request; any sync does it first).")
@url_option
@json_option
@handle_errors
def sync(store: str | None, job: str | None, since: str | None, until: str | None, light: bool, no_assets: bool,
         compact: bool, repair: bool, migrate: bool, url: str | None, as_json: bool) -> None:
    """Sync runs, events, steps and asset events into a local History store: only what is new since the last sync."""
    from .history import History
    from .timespec import parse_time

    # Bad bounds are usage errors, reported before any request.
    parse_time(since, what="--since")
    parse_time(until, what="--until")
    if compact + repair + migrate > 1:
        raise click.UsageError("--compact, --repair and --migrate are separate tasks: give one")
    client = _client(url)
    # A bar only on a terminal: a command is never in a notebook, whatever else is imported.
    client.progress = not as_json and sys.stderr.isatty()
    history = History(store) if store else History.for_deployment(client)
    if compact or migrate or repair:
        from .history.maintenance import maintain

        doc, line = maintain(history, client, compact=compact, migrate=migrate, job=job, since=since, until=until,
                             events=not light, assets=not no_assets)
        line += "; the store:"
    else:
        report = history.sync(client, job=job, since=since, until=until, events=not light, assets=not no_assets)
        doc, line = report.as_dict(), f"{report.summary()} into"
    if as_json:
        click.echo(json.dumps({**doc, "store": history.path}, ensure_ascii=False))
    else:
        click.echo(f"{line} {history.path}")


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


TAIL_EXIT_CODES_HELP = (
    EXIT_CODES_HELP + " Once the run ended: 0 it succeeded, 6 it failed, 7 it was canceled; 5 also when "
    "--timeout ran out first."
)


@run_events_group.command("tail", epilog=TAIL_EXIT_CODES_HELP)
@click.argument("run_id")
@type_option
@step_option
@level_option
@click.option("--cursor", help="Start after this cursor (events().attrs['cursor']) instead of at the first event.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Give up after this many seconds (exit code 5) if the run has not ended.")
@click.option("--wide", is_flag=True,
              help="Show whole messages (they are whole anyway when stdout is not a terminal).")
@url_option
@json_option
@handle_errors
def run_events_tail(
    run_id: str, types: tuple[str, ...], steps: tuple[str, ...], levels: tuple[str, ...], cursor: str | None,
    timeout: float | None, wide: bool, url: str | None, as_json: bool,
) -> None:
    """Print a run's events as they happen, like tail -f, and exit with the run's outcome.

    Prints from the first event (or after --cursor), then each new event as Dagster stores
    it (pushed over a websocket when the webserver offers one, polled every 2 s otherwise),
    with run-events get's filters and formats (--json: one object a line). Exits once the
    run has ended and its last events are printed: 0 SUCCESS, 6 FAILURE, 7 CANCELED.
    """
    from .tail import tail

    type_filter, step_filter, level_filter = _event_filters(types, steps, levels)
    result = tail(_client(url), run_id, click.echo, types=type_filter, step=step_filter, levels=level_filter,
                  cursor=cursor, as_json=as_json, width=None if wide else _terminal_width(), timeout=timeout)
    if not result.ended:
        message = (f"run {run_id} has not ended after {timeout or 0:g} s (status {result.status}); "
                   "raise --timeout to wait longer")
        if as_json:
            _echo_json_error(message, "TIMEOUT", run_id)
        else:
            click.echo(f"Error: {message}", err=True)
    elif not as_json:
        click.echo(f"Run {run_id} ended: {result.status} ({result.printed} events shown, "
                   f"followed by {result.transport})", err=True)
    sys.exit(result.exit_code)


@run_group.command("logs", epilog=EXIT_CODES_HELP)
@click.argument("run_id")
@click.option("--step", help="Only this step's log (with the in-process executor: the run's one log, said on stderr).")
@click.option("--stderr", "stream", flag_value="stderr", default=True, help="What the steps wrote to stderr (default).")
@click.option("--stdout", "stream", flag_value="stdout", help="What the steps wrote to stdout.")
@click.option("--both", "stream", flag_value="both", help="stdout and stderr, one after the other.")
@click.option("--tail", type=click.IntRange(min=1), metavar="N",
              help="Only the last N lines of each log (ANSI codes stripped); reads only the end of a large log.")
@url_option
@json_option
@handle_errors
def run_logs(run_id: str, step: str | None, stream: str, tail: int | None, url: str | None, as_json: bool) -> None:
    """Show what a run's steps printed: Dagster's captured stdout/stderr (compute logs)."""
    from .errors import RunlensWarning
    from .logs import tail_parts

    client = _client(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunlensWarning)  # the notes are printed below
        if tail:
            text, tails = tail_parts(lambda n: client.logs(run_id, step, stream=stream, max_bytes=n), tail)
            bodies = ["".join(line + "\n" for line in lines) for lines in tails]
        else:
            text = client.logs(run_id, step, stream=stream)
            bodies = [part.text for part in text.parts]
    if as_json:
        parts = [{"step_keys": list(p.file.step_keys), "file_key": p.file.file_key, "stream": p.stream,
                  "attempt": p.attempt, "truncated": p.truncated, "text": body} for p, body in zip(text.parts, bodies, strict=True)]
        click.echo(json.dumps({"run_id": run_id, "step": step, "stream": stream, "parts": parts, "notes": text.notes},
                              ensure_ascii=False))
        return
    for note in text.notes:
        click.echo(f"Note: {note}", err=True)
    from .logs import join_parts

    click.echo(join_parts(text.parts, bodies), nl=False)


# ------------------------------------------------------------------------- assets


@main.group("asset")
def asset_group() -> None:
    """Assets: the keys Dagster knows, and each asset's materializations."""


@asset_group.command("list", epilog=EXIT_CODES_HELP)
@click.option("--prefix", help="Only keys under this prefix (a/b).")
@url_option
@json_option
@handle_errors
def asset_list(prefix: str | None, url: str | None, as_json: bool) -> None:
    """List the asset keys: defined in code or with recorded events; group, partitioned, last materialization."""
    from .formatting import format_assets_json, format_assets_table

    frame = _client(url).assets(prefix=prefix)
    click.echo(format_assets_json(frame) if as_json else format_assets_table(frame, width=_terminal_width()))


@asset_group.command("events", epilog=EXIT_CODES_HELP)
@click.argument("asset_key", metavar="KEY", is_eager=True)  # in the JSON error of a bad option too
@click.option("--partition", "partitions", multiple=True, metavar="P",
              help="Only events of this partition; repeated or comma-separated: any of them.")
@click.option("--kind", type=click.Choice(["materialization", "observation", "all"]), default="materialization",
              show_default=True, help="Materializations (failed ones too), observations, or both.")
@click.option("--since", help="Only events since: a duration back from now (7d, 12h), an ISO date or datetime.")
@click.option("--until", help="Only events before this (same forms as --since).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="The newest N events (shown oldest first).")
@click.option("--cursor", help="Continue further back from the \"cursor\" of a previous --json output.")
@url_option
@json_option
@handle_errors
def asset_events(asset_key: str, partitions: tuple[str, ...], kind: str, since: str | None, until: str | None,
                 limit: int, cursor: str | None, url: str | None, as_json: bool) -> None:
    """Show an asset's events, oldest first: time, partition, status, run and metadata. KEY is a/b/c."""
    from .assets import asset_key_path
    from .formatting import format_asset_events_json, format_asset_events_table, more_events_note
    from .timespec import parse_time

    asset_key_path(asset_key)  # a usage error before any request
    parse_time(since, what="--since")
    parse_time(until, what="--until")
    wanted = [p for value in partitions for p in value.split(",") if p.strip()] if partitions else None
    frame = _client(url).asset_events(asset_key, kind=kind, partitions=wanted, since=since, before=until,
                                      limit=limit, cursor=cursor)
    if as_json:
        click.echo(format_asset_events_json(frame))
        return
    click.echo(format_asset_events_table(frame, width=_terminal_width()))
    if frame.attrs.get("has_more"):
        click.echo(f"{more_events_note(frame)}, or continue with --cursor {frame.attrs['cursor']}", err=True)


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
