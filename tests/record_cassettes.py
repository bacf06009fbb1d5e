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
from runlens.demo.server import DAILY_RERUN_PARTITIONS, DemoDagster, seed_runs
from tests.truth import dagster_asset_truth, dagster_truth
from tests.vcr_setup import CASSETTES, MANIFEST, make_vcr, scrub_paths

CLI_SCENARIOS = {
    "cli_run_get": lambda runs: [["run", "get", runs["etl"]], ["run", "get", runs["etl"], "--json"]],
    "cli_run_events": lambda runs: [
        ["run-events", "get", runs["etl"], "--json", "--limit", "100000"],
        ["run-events", "get", runs["etl"]],
        ["run-events", "get", runs["failing"]],
    ],
    "cli_not_found": lambda runs: [["run", "get", "no-such-run"], ["run-events", "get", "no-such-run", "--json"]],
    "cli_run_logs": lambda runs: [
        ["run", "logs", runs["failing"], "--step", "parse_invoices", "--stdout"],
        ["run", "logs", runs["failing"], "--step", "parse_invoices", "--tail", "5", "--json"],
        ["run", "logs", runs["queued"], "--json"],
    ],
    "cli_assets": lambda runs: [["asset", "list", "--json"], ["asset", "list"],
                                ["asset", "events", "daily_orders", "--json", "--limit", "1000"],
                                ["asset", "events", "daily_orders", "--partition", DAILY_RERUN_PARTITIONS[0]],
                                ["asset", "events", "no/such/asset", "--json"]],
    "cli_run_cursors": lambda runs: [
        ["run-events", "get", runs["etl"], "--json", "--limit", "50"],
        ["run-events", "get", runs["etl"], "--json", "--limit", "100000", "--after-seq", "49"],
        ["run", "list", "--status", "FAILURE", "--status", "CANCELED", "--json"],
        ["run", "list", "--tag", f"dagster/asset_partition_range_start={DAILY_RERUN_PARTITIONS[0]}", "--json"],
        ["run", "list", "--limit", "2", "--since", "2000-01-01", "--json"],
    ],
}


def compute_log_truth(home, run_id: str) -> dict:
    """The run's compute log files as Dagster wrote them (its local compute log manager's
    folder), paths scrubbed as the cassettes are: {file key: {"stdout", "stderr"}} as text."""
    folder = Path(home) / "storage" / run_id / "compute_logs"
    files: dict = {}
    for path in sorted(folder.glob("*.out")) + sorted(folder.glob("*.err")):
        stream = "stdout" if path.suffix == ".out" else "stderr"
        files.setdefault(path.stem, {})[stream] = scrub_paths(path.read_bytes()).decode("utf-8", "replace")
    return files


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
        # Compute logs (#16): a failed step's stdout and stderr, its tail, every line of the
        # run; a run without logs. (The 5 MB log is tested live only: no 5 MB cassette.)
        scenario("failing_logs", lambda: (client.logs(runs["failing"], "parse_invoices", stream="both"),
                                          client.logs(runs["failing"], "parse_invoices", max_bytes=1000),
                                          client.log_lines(runs["failing"])))
        scenario("logs_not_found", lambda: client.logs(runs["queued"]))
        # Assets (#16): the list, every event of the partitioned demo asset, the newest
        # four and the rest from their cursor, and a key Dagster answers with an empty Asset.
        def asset_scenario():
            client.assets()
            client.asset_events("daily_orders")
            newest = client.asset_events("daily_orders", limit=4)
            client.asset_events("daily_orders", cursor=newest.attrs["cursor"])
            client.asset_events("warehouse/sales_by_region")
            client.asset_events("no/such/asset")

        scenario("assets", asset_scenario)
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
            "compute_logs": {"failing": compute_log_truth(demo.home, runs["failing"])},
            "assets": {key: dagster_asset_truth(demo.home, key) for key in ("daily_orders", "warehouse/sales_by_region")},
        }
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


if __name__ == "__main__":
    shutil.rmtree(CASSETTES / "__pycache__", ignore_errors=True)
    manifest = record()
    print(f"cassettes written to {CASSETTES} for Dagster {manifest['dagster_version']}")
