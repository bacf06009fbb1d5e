"""runlens's benchmarks against its baselines (``make bench``, ``python -m benchmarks``).

Not part of ``make test``; ``tests/unit/test_benchmarks_smoke.py`` runs the synthetic ones
at a tiny size to check the harness and that runlens's output equals the baselines'.

Layout
------
harness.py        ABAB interleaving, medians, the Markdown table, the JSON file
baselines.py      the seed's RunEvent model, query and filter loops; a bare requests loop
synthetic.py      deterministic logsForRun pages shaped like a real run's
bench_synthetic   #3 page JSON → typed frame (speed, deep memory), #4 --type/--step filtering
dagster_cache.py  the demo Dagster home with a 50,000-line run and 20 small ones, cached in
                  .bench-cache/ by dagster version, definitions and run plan
bench_live        #1/#2 one big run from the local webserver, #5 20 runs through the
                  latency proxy, #6 start-up
proxy.py          the loopback forwarder adding 50 ms a request and counting concurrency
"""
