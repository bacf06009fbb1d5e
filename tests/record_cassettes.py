"""Re-record cassettes/ from a live demo Dagster: ``make cassettes``.

Starts the demo Dagster (the same one the live tests use, with the runs of
:func:`runlens.demo.seed_runs`: etl, failing, queued, canceled_queued, canceled_running,
not_started), then runs each scenario through runlens's own client with vcrpy
recording. Dagster's own numbers for every seeded run (event counts from its event log
storage, event types, step stats, status) go to ``cassettes/manifest.json`` so replay
tests compare against them, not against constants typed into a test.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from click.testing import CliRunner

import runlens
from runlens.cli import main as cli
from runlens.demo.server import DemoDagster, seed_runs
from tests.truth import dagster_truth
from tests.vcr_setup import CASSETTES, MANIFEST, make_vcr

CLI_SCENARIOS = {
    "cli_run_get": lambda runs: [["run", "get", runs["etl"]], ["run", "get", runs["etl"], "--json"]],
    "cli_run_events": lambda runs: [
        ["run-events", "get", runs["etl"], "--json", "--limit", "100000"],
        ["run-events", "get", runs["etl"]],
        ["run-events", "get", runs["failing"]],
    ],
    "cli_not_found": lambda runs: [["run", "get", "no-such-run"], ["run-events", "get", "no-such-run", "--json"]],
}


def record(out: Path = CASSETTES) -> dict:
    out.mkdir(exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    recorder = make_vcr("all")
    with DemoDagster(log=lambda m: print(m, file=sys.stderr)) as demo:
        runs = seed_runs(demo)  # starts the webserver and the daemon
        client = runlens.Client(demo.url, progress=False)

        def scenario(name, fn):
            started = time.monotonic()
            with recorder.use_cassette(f"{name}.yaml"):
                try:
                    fn()
                except runlens.RunlensError as exc:
                    print(f"  {name}: expected error {type(exc).__name__}", file=sys.stderr)
            print(f"recorded {name} in {time.monotonic() - started:.2f} s", file=sys.stderr)

        scenario("etl_events", lambda: client.events(runs["etl"]))
        scenario("etl_pages_100", lambda: list(client.iter_event_pages(runs["etl"], page_size=100)))
        scenario("etl_run", lambda: (client.run(runs["etl"]), client.step_stats(runs["etl"])))
        scenario("failing_run", lambda: (client.run(runs["failing"]), client.events(runs["failing"]),
                                         client.step_stats(runs["failing"])))
        # The runs that never ran to the end, one cassette each (#12): queued for good,
        # canceled in the queue, canceled while a step ran, never launched.
        for kind in ("queued", "canceled_queued", "canceled_running", "not_started"):
            scenario(f"{kind}_run", lambda kind=kind: (client.run(runs[kind]), client.events(runs[kind]),
                                                       client.step_stats(runs[kind])))
        scenario("run_not_found", lambda: client.run("no-such-run"))
        scenario("events_not_found", lambda: client.events("no-such-run"))
        scenario("invalid_cursor", lambda: list(client.iter_event_pages(runs["etl"], after_cursor="not-a-cursor")))
        scenario("runs", lambda: (client.runs(), client.runs(job="etl_job"), client.runs(statuses=["FAILURE"]),
                                  client.runs(limit=1)))
        # Issue 17: the first slow diamond run explained against its baseline (the run and
        # the baseline's stepStats in two runsOrError requests, then its events and plan).
        scenario("diamond_explain", lambda: runlens.explain_run(runs["diamond_slow_1"], client, baseline=20))
        for name, commands in CLI_SCENARIOS.items():
            def run_cli(commands=commands):
                for args in commands(runs):
                    CliRunner().invoke(cli, [*args, "--url", demo.url])
            scenario(name, run_cli)

        manifest = {
            "url": demo.url,
            "dagster_version": client.transport.server_version(),
            "runs": runs,
            "truth": {name: dagster_truth(demo.home, run_id) for name, run_id in runs.items()},
        }
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


if __name__ == "__main__":
    shutil.rmtree(CASSETTES / "__pycache__", ignore_errors=True)
    manifest = record()
    print(f"cassettes written to {CASSETTES} for Dagster {manifest['dagster_version']}")
