"""A real local Dagster to try runlens against, shipped inside the package.

:mod:`runlens.demo.definitions` holds example jobs (``etl_job``, ``failing_job``,
``slow_job``, ``log_storm_job``); :mod:`runlens.demo.server` starts a throwaway
Dagster that runs them and serves them over GraphQL, with a ``dagster-daemon`` that
launches the runs queued through it; :func:`seed_runs` makes one run of each kind
a client meets (succeeded, failed, queued, canceled while queued or while running,
never launched). Importing this package does not import dagster; starting
anything requires the ``runlens[demo]`` extra.

Examples
--------
>>> from runlens.demo import DemoDagster, seed_runs
>>> with DemoDagster(log=print) as demo:  # doctest: +SKIP
...     runs = seed_runs(demo)  # starts the webserver and the daemon
...     print(demo.url, runs)
"""

from runlens.demo.server import DemoDagster, DemoNotInstalled, connect, seed_runs

__all__ = ["DemoDagster", "DemoNotInstalled", "connect", "seed_runs"]
