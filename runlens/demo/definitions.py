"""Example Dagster definitions that produce realistic runs for runlens to read.

Load them the way a deployment would::

    dagster-webserver -m runlens.demo.definitions
    dagster job execute -m runlens.demo.definitions -j etl_job

Every job runs on the multiprocess executor: each step is its own subprocess, so
the event log carries the worker and resource markers, parallel steps and
interleaved timestamps that real deployments produce. The executor starts steps
with ``forkserver`` rather than the default ``spawn``: the forkserver imports
dagster and this module once, so a step worker is ready in about 0.7 s instead
of about 1.5 s spent re-importing dagster. On two cores that roughly halves
``etl_job``'s wall time without changing its event log.

Jobs
----
etl_job
    The main example: a fan-out/fan-in graph with a dynamic fan-out and collect
    (ten steps, among them ``process_region[emea]``), a step that succeeds on its
    second attempt, an asset materialization with one metadata
    entry of each common kind, log lines at every level (one multi-line, one
    unicode) and one chatty step logging a few hundred lines.
failing_job
    A step raises an exception with a cause chain, so its downstream step never
    runs and the run ends in FAILURE.
slow_job
    Three sleeping steps (about 20 s in total by default) for following a run
    while it is in progress.
printing_job
    Runs on the in-process executor (one process, one compute log file for the whole
    run): ``shout`` prints the demo's stdout/stderr blocks
    (:mod:`runlens.demo.printed`), ``flood`` writes a few MB to stderr (op config ``mb``).
    ``extract_orders`` (etl_job) and ``parse_invoices`` (failing_job, before it raises)
    print the same blocks on the multiprocess executor, a file per step.
daily_orders_job
    The daily-partitioned asset ``daily_orders`` (group ``demo_daily``), one run over a
    range of partitions (the ``dagster/asset_partition_range_*`` tags): each partition's materialization
    carries ``row_count`` (int), ``duration_s`` (float) and ``source`` (url) metadata,
    deterministic from the partition date and the run config's ``batch``.
diamond_job
    ``a → (b, c) → d``: four steps sleeping for their op config's ``seconds``
    (default 0.3 s), so b and c run in parallel. The demo runs it several times alike,
    then several times with ``b`` twenty times slower: a level change for runlens's
    critical path, baseline comparison and change-point tests.
log_storm_job
    One step logging ``n`` lines (op config, default 1000) to build very large
    event logs. The op does nothing else; Dagster's sqlite event log still costs
    about 3 ms per line (one connection and commit per event), so 50,000 lines
    take two to three minutes.

This module imports dagster at import time; it is only ever loaded by Dagster
processes, never by ``import runlens``.
"""

import sys
import time

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    Config,
    DailyPartitionsDefinition,
    Definitions,
    DynamicOut,
    DynamicOutput,
    MetadataValue,
    OpExecutionContext,
    RetryPolicy,
    asset,
    define_asset_job,
    in_process_executor,
    job,
    multiprocess_executor,
    op,
)

from runlens.demo import printed

#: Regions of the dynamic fan-out; each becomes a step ``process_region[<region>]``.
REGIONS = ("emea", "amer", "apac")

#: Number of lines the chatty ``clean_customers`` step logs.
CHATTY_LINES = 300

UNICODE_MESSAGE = "naïve café ✓ 数据 🚀"


def _print_blocks(step: str) -> None:
    """Write the step's stdout and stderr blocks (raw bytes: the same whatever the locale)."""
    for stream, data in ((sys.stdout, printed.stdout_bytes(step)), (sys.stderr, printed.stderr_bytes(step))):
        stream.flush()
        stream.buffer.write(data)
        stream.buffer.flush()


# --------------------------------------------------------------------------- etl_job


@op
def extract_orders(context: OpExecutionContext) -> list[dict]:
    """Return a small batch of orders."""
    orders = [
        {"id": i, "customer": i % 5, "product": i % 3, "amount": 10.0 + i, "region": REGIONS[i % 3]} for i in range(12)
    ]
    _print_blocks("extract_orders")
    context.log.info(f"extracted {len(orders)} orders")
    return orders


@op
def extract_customers(context: OpExecutionContext) -> list[dict]:
    """Return a small customer table."""
    customers = [{"id": i, "name": f"customer-{i}"} for i in range(5)]
    context.log.info(f"extracted {len(customers)} customers")
    return customers


@op
def extract_products(context: OpExecutionContext) -> list[dict]:
    """Return a small product table."""
    products = [{"id": i, "sku": f"SKU-{i:03d}"} for i in range(3)]
    context.log.info(f"extracted {len(products)} products")
    return products


# A short delay keeps the run fast while still leaving a visible gap between the
# attempts in the step's timing (Dagster counts the wait inside the step span).
@op(retry_policy=RetryPolicy(max_retries=2, delay=1))
def clean_orders(context: OpExecutionContext, orders: list[dict]) -> list[dict]:
    """Drop invalid orders; fail the first attempt to exercise Dagster's retries."""
    if context.retry_number == 0:
        raise ConnectionError("order service timed out (simulated flaky upstream)")
    context.log.info(f"attempt {context.retry_number + 1}: cleaned {len(orders)} orders")
    return [order for order in orders if order["amount"] > 0]


@op
def clean_customers(context: OpExecutionContext, customers: list[dict]) -> list[dict]:
    """Validate customers row by row, logging one line per check (the chatty step)."""
    for i in range(CHATTY_LINES):
        context.log.debug(f"validated check {i + 1}/{CHATTY_LINES}: customer {customers[i % len(customers)]['id']}")
    return customers


@op(out=DynamicOut(list))
def join_sales(context: OpExecutionContext, orders: list[dict], customers: list[dict], products: list[dict]):
    """Join the three tables and fan out one dynamic output per region.

    Also logs one line at each level Dagster knows, a multi-line and a unicode one.
    """
    names = {c["id"]: c["name"] for c in customers}
    skus = {p["id"]: p["sku"] for p in products}
    sales = [{**o, "customer_name": names[o["customer"]], "sku": skus[o["product"]]} for o in orders]
    context.log.debug(f"join keys: customer={len(names)} product={len(skus)}")
    context.log.info(f"joined {len(sales)} sales rows")
    context.log.warning("3 orders have no shipping date; assuming today")
    context.log.error("currency rate for XTS missing; amounts left unconverted")
    context.log.critical("join produced a row count outside the expected band (simulated)")
    context.log.info("join summary:\n  orders: 12\n  customers: 5\n\tproducts: 3")
    context.log.info(UNICODE_MESSAGE)
    for region in REGIONS:
        rows = [row for row in sales if row["region"] == region]
        context.log.info(f"region {region}: {len(rows)} rows")
        yield DynamicOutput(rows, mapping_key=region)


@op
def process_region(context: OpExecutionContext, rows: list[dict]) -> float:
    """Aggregate one region's sales."""
    total = sum(row["amount"] for row in rows)
    context.log.info(f"{len(rows)} rows, total {total:.2f}")
    return total


@op
def load_warehouse(context: OpExecutionContext, totals: list[float]) -> None:
    """Fan in the per-region totals and record the load as an asset materialization."""
    grand_total = sum(totals)
    context.log_event(
        AssetMaterialization(
            asset_key=["warehouse", "sales_by_region"],
            description="Sales aggregated by region",
            metadata={
                "row_count": MetadataValue.int(len(totals)),
                "grand_total": MetadataValue.float(grand_total),
                "table": MetadataValue.text("analytics.sales_by_region"),
                "path": MetadataValue.path("/data/warehouse/sales_by_region.parquet"),
                "dashboard": MetadataValue.url("https://example.com/dashboards/sales"),
                "summary": MetadataValue.md(f"**Grand total**: {grand_total:.2f}\n\n| region |\n|---|\n| emea |"),
                "schema": MetadataValue.json({"columns": ["region", "total"], "version": 2}),
            },
        )
    )
    context.log.info(f"loaded warehouse.sales_by_region: {len(totals)} regions, total {grand_total:.2f}")


# Five stages deep on purpose: each step is a subprocess that takes about a second
# to start, and the run's wall time is the length of this chain.
@job(description="Fan-out/fan-in ETL with a dynamic fan-out, a retried step and a materialization.")
def etl_job():
    orders = clean_orders(extract_orders())
    customers = clean_customers(extract_customers())
    totals = join_sales(orders, customers, extract_products()).map(process_region)
    load_warehouse(totals.collect())


# ----------------------------------------------------------------------- failing_job


@op
def fetch_invoices(context: OpExecutionContext) -> list[dict]:
    """Return invoices, one of them missing its currency."""
    context.log.info("fetched 2 invoices")
    return [{"id": 1, "currency": "EUR"}, {"id": 2}]


@op
def parse_invoices(context: OpExecutionContext, invoices: list[dict]) -> list[dict]:
    """Fail for good with a two-level cause chain (no retry policy), after printing."""
    _print_blocks("parse_invoices")
    for invoice in invoices:
        try:
            invoice["currency"]
        except KeyError as missing:
            raise ValueError(f"invoice {invoice['id']} has no currency") from missing
    return invoices


@op
def publish_invoices(context: OpExecutionContext, invoices: list[dict]) -> None:
    """Never runs: its upstream fails. Dagster logs "Dependencies for step ... failed"."""
    context.log.info(f"published {len(invoices)} invoices")


@job(description="A step fails with a cause chain; its downstream step does not run.")
def failing_job():
    publish_invoices(parse_invoices(fetch_invoices()))


# -------------------------------------------------------------------------- slow_job


class SleepConfig(Config):
    """How long a slow step sleeps, in seconds."""

    seconds: float = 6.0


def _sleep(context: OpExecutionContext, seconds: float) -> None:
    # One log line per second gives a live follower something new to fetch on each poll.
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        context.log.info(f"working, {remaining:.0f} s left")
        time.sleep(min(1.0, remaining))


@op
def slow_start(context: OpExecutionContext, config: SleepConfig) -> int:
    """Sleep, then hand a token downstream."""
    _sleep(context, config.seconds)
    return 1


@op
def slow_middle(context: OpExecutionContext, config: SleepConfig, token: int) -> int:
    """Sleep, then hand a token downstream."""
    _sleep(context, config.seconds)
    return token + 1


@op
def slow_end(context: OpExecutionContext, config: SleepConfig, token: int) -> None:
    """Sleep and finish."""
    _sleep(context, config.seconds)
    context.log.info(f"done after {token + 1} steps")


@job(description="Three sleeping steps in a row, for following a run while it is in progress.")
def slow_job():
    slow_end(slow_middle(slow_start()))


# ---------------------------------------------------------------------- printing_job


class FloodConfig(Config):
    """How many megabytes the flood step writes to stderr."""

    mb: float = printed.FLOOD_MB


@op
def shout(context: OpExecutionContext) -> int:
    """Print the demo's stdout and stderr blocks."""
    _print_blocks("shout")
    return 1


@op
def flood(context: OpExecutionContext, config: FloodConfig, token: int) -> None:
    """Write ``mb`` megabytes of numbered lines to stderr, as a chatty library would."""
    sys.stderr.flush()
    sys.stderr.buffer.write(printed.flood_bytes(config.mb))
    sys.stderr.buffer.flush()
    context.log.info(f"wrote {config.mb} MB to stderr")


@job(description="Prints to stdout and stderr, a few MB of it, on the in-process executor (one log file).",
     executor_def=in_process_executor)
def printing_job():
    flood(shout())


# --------------------------------------------------------------------- log_storm_job


class StormConfig(Config):
    """How many lines the storm step logs."""

    n: int = 1000


@op
def storm(context: OpExecutionContext, config: StormConfig) -> None:
    """Log ``n`` INFO lines as cheaply as possible (one event per line)."""
    log = context.log.info
    for i in range(config.n):
        log(f"storm line {i}")


@job(description="One step logging n lines (op config), to build very large event logs.")
def log_storm_job():
    storm()


# ------------------------------------------------------------------ daily_orders

#: A fixed window, so the demo's partitions are the same whenever it runs.
DAILY = DailyPartitionsDefinition(start_date="2026-11-01", end_date="2026-11-15")


class DailyOrdersConfig(Config):
    """Which load this is: a later batch re-materializes partitions with other numbers."""

    batch: int = 0


def daily_row_count(partition: str, batch: int) -> int:
    """The rows the demo loads for a partition (a weekly pattern plus a drift per batch)."""
    day = int(partition[-2:])
    return 1000 + 90 * (day % 7) + 25 * day + 40 * batch


@asset(partitions_def=DAILY, group_name="demo_daily")
def daily_orders(context: AssetExecutionContext, config: DailyOrdersConfig) -> None:
    """Load a day of orders: one materialization per partition of the run's range."""
    for key in context.partition_keys:
        rows = daily_row_count(key, config.batch)
        context.add_asset_metadata(
            {"row_count": MetadataValue.int(rows), "duration_s": MetadataValue.float(round(rows / 4000, 3)),
             "source": MetadataValue.url(f"https://example.com/orders/{key}")},
            partition_key=key,
        )
    context.log.info(f"loaded {len(context.partition_keys)} partitions (batch {config.batch})")


daily_orders_job = define_asset_job("daily_orders_job", selection=[daily_orders])  # partitioned as its asset is


# ----------------------------------------------------------------------- diamond_job


class NapConfig(Config):
    """How long a diamond step sleeps, in seconds."""

    seconds: float = 0.3


@op
def a(context: OpExecutionContext, config: NapConfig) -> int:
    """The diamond's head."""
    time.sleep(config.seconds)
    return 1


@op
def b(context: OpExecutionContext, config: NapConfig, x: int) -> int:
    """One arm (the one the demo slows down)."""
    time.sleep(config.seconds)
    return x + 1


@op
def c(context: OpExecutionContext, config: NapConfig, x: int) -> int:
    """The other arm."""
    time.sleep(config.seconds)
    return x + 2


@op
def d(context: OpExecutionContext, config: NapConfig, left: int, right: int) -> None:
    """The diamond's foot: waits for both arms."""
    time.sleep(config.seconds)
    context.log.info(f"joined {left} and {right}")


@job(description="a → (b, c) → d, each step sleeping for its op config's seconds.")
def diamond_job():
    x = a()
    d(b(x), c(x))


defs = Definitions(
    assets=[daily_orders],
    jobs=[etl_job, failing_job, slow_job, printing_job, log_storm_job, daily_orders_job, diamond_job],
    executor=multiprocess_executor.configured({"start_method": {"forkserver": {}}}),
)
