"""``History.sync``: bring the store up to date with a Dagster deployment, incrementally.

1. **Discover** runs through ``runsOrError`` paged by cursor. After the first sync of a
   scope (a job, or every job) only runs updated after the scope's high-water mark minus
   :data:`OVERLAP` are asked for: the bound is strict and some update times are whole
   seconds, so re-asking a little before the mark and deduplicating by run id is what keeps
   a run from being skipped.
2. **Runs**: a run new or changed (status, update time) gets its row (re)written. A run still
   going is stored as a row only.
3. **Events** of a terminal run (SUCCESS, FAILURE, CANCELED) are fetched from the stored
   cursor (from the start the first time). The run becomes *final* once it has been
   terminal for ``grace`` seconds before the fetch began (Dagster stores an ENGINE_EVENT after
   RUN_SUCCESS/FAILURE/CANCELED); a run fetched sooner is topped up by the next sync. A final
   run is never fetched again.
4. **Steps** (:func:`runlens.step_durations`) of each run made final are computed from its
   complete stored events and stored with :data:`runlens.steps.STEPS_VERSION`.

With ``events=False`` (the *light* sync, :mod:`.light`) steps 3 and 4 are replaced by
Dagster's own ``stepStats`` of the finished runs, 100 runs a request; a later full sync
upgrades those runs. A store of an older format is migrated first, and a partition left
with too many files is compacted last (:mod:`.maintenance`).

5. **Asset events** (:mod:`.asset_events`): every asset whose last event moved since the
   last sync gets its new materializations, failures and observations, metadata included;
   in a light sync too (they are small), unless ``assets=False``.

Work is committed in batches of runs (see :mod:`runlens.history.store`): a sync that
fails keeps what it committed, and the next one redoes only the rest. The high-water mark
moves only when a whole sync succeeded.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import RunlensError, StoreError
from ..timespec import parse_time
from ..vocabulary import TERMINAL_STATUSES
from .store import RUNS_FILE, Store

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client

#: Seconds re-asked before the high-water mark (strict bounds, whole-second update times).
OVERLAP = 60.0
#: Seconds a run must have been terminal before its events count as final.
GRACE = 10.0
#: Rows per Parquet row group: small enough that reading one run decodes little beyond it
#: (a 300-run store: 34 ms for one run at 128k rows a group), large enough for whole-store scans.
ROW_GROUP_ROWS = 32 * 1024
#: Rows per row group of the steps files: a few dozen runs each, so that a job's rows (files
#: are sorted by job) are found by the row groups' statistics without decoding the other
#: jobs' spans (``h.steps(job=...)`` of 2,000 runs in a 20,000-run store: 0.10 s of scan at
#: 32k rows a group, 0.02 s at 4k).
STEPS_ROW_GROUP_ROWS = 4 * 1024
#: Runs whose events one batch fetches before committing them.
BATCH_RUNS = 100


@dataclass
class SyncReport:
    """What one :meth:`History.sync` did."""

    runs_discovered: int = 0
    runs_updated: int = 0
    runs_made_final: int = 0
    events_written: int = 0
    steps_written: int = 0
    files_written: int = 0
    batches: int = 0
    runs_light: int = 0  # runs whose steps came from Dagster's stepStats (events=False)
    files_compacted: int = 0  # small files merged by the compaction that followed
    assets_synced: int = 0  # assets with new events stored (runlens.history.asset_events)
    asset_events_written: int = 0
    seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"<SyncReport {self.runs_discovered} runs discovered, {self.runs_updated} updated, "
                f"{self.runs_made_final} made final, {self.events_written:,} events and {self.steps_written:,} "
                f"steps written in {self.seconds:.2f} s>")

    def summary(self) -> str:
        """One line for the CLI."""
        assets = (f" and {self.asset_events_written:,} asset events of {self.assets_synced} assets"
                  if self.asset_events_written else "")
        line = (f"Synced: {self.runs_discovered} runs discovered, {self.runs_updated} new or changed, "
                f"{self.runs_made_final} made final, {self.events_written:,} events{assets} written in "
                f"{self.seconds:.1f} s")
        if self.runs_light:
            line += f", {self.runs_light} runs' steps from Dagster's stepStats (light)"
        if self.skipped:
            line += f" ({len(self.skipped)} runs gone from the server, skipped)"
        if self.files_compacted:
            line += f"; {self.files_compacted} small files compacted"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {"runs_discovered": self.runs_discovered, "runs_updated": self.runs_updated,
                "runs_made_final": self.runs_made_final, "events_written": self.events_written,
                "steps_written": self.steps_written, "files_written": self.files_written, "batches": self.batches,
                "runs_light": self.runs_light, "files_compacted": self.files_compacted,
                "assets_synced": self.assets_synced, "asset_events_written": self.asset_events_written,
                "seconds": round(self.seconds, 3), "skipped": self.skipped}


def _month(created_ms: int) -> str:
    return datetime.fromtimestamp(created_ms / 1000, tz=UTC).strftime("%Y-%m")


def _created_ms(record: dict) -> int:
    for key in ("creationTime", "updateTime"):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value * 1000)
    return 0


def _ended(record: dict) -> float | None:
    for key in ("endTime", "updateTime"):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _record_key(record: dict) -> tuple:
    return (record.get("status"), record.get("updateTime"), record.get("endTime"), record.get("startTime"),
            repr(record.get("tags")))


def sync(store: Store, client: Client, *, job: str | None = None, since: Any = None, until: Any = None,
         grace: float = GRACE, batch_runs: int | None = None, max_workers: int = 4,
         progress: bool | None = None, events: bool = True, assets: bool = True) -> SyncReport:
    """See :meth:`runlens.History.sync`."""
    from ..steps import STEPS_VERSION
    from . import maintenance

    started = time.monotonic()
    batch_runs = batch_runs or BATCH_RUNS
    report = SyncReport()
    since_at = parse_time(since, what="since")
    until_at = parse_time(until, what="until")
    with store.locked():
        manifest = maintenance.migrated(store)
        endpoint = client.deployment_identity
        if manifest.get("endpoint") not in (None, endpoint):
            raise StoreError(f"the History store {str(store.root)!r} holds runs of {manifest['endpoint']}, not of "
                             f"{endpoint}: use one store per deployment")
        manifest = copy.deepcopy(manifest)
        manifest["endpoint"] = endpoint
        if manifest.get("steps_version") is None:
            manifest["steps_version"] = STEPS_VERSION
        elif manifest["steps_version"] != STEPS_VERSION:
            _recompute_steps(store, manifest, report)
        records = manifest.setdefault("records", {})
        state = manifest["runs"]

        # 1. discover
        scope = job or "*"
        mark = manifest["marks"].get(scope)
        run_filter: dict[str, Any] = {}
        if job:
            run_filter["pipelineName"] = job
        since_s = since_at.timestamp() if since_at else None
        if since_s is not None:
            run_filter["createdAfter"] = since_s - 0.001  # strict bound; since is inclusive
        if until_at is not None:
            run_filter["createdBefore"] = until_at.timestamp()
        use_mark = (mark is not None and until_at is None
                    and (mark.get("since") is None or (since_s is not None and since_s >= mark["since"])))
        if use_mark:
            run_filter["updatedAfter"] = mark["updated"] - OVERLAP
        discovered: dict[str, dict] = {}
        for page, _count in client._run_record_pages(run_filter):
            for record in page:
                run_id = record.get("id") or record.get("runId")
                if isinstance(run_id, str) and run_id:
                    discovered.setdefault(run_id, record)
        report.runs_discovered = len(discovered)
        updates = [u for u in (r.get("updateTime") for r in discovered.values())
                   if isinstance(u, (int, float)) and not isinstance(u, bool)]
        new_mark = max([*updates, *([mark["updated"]] if use_mark else [])], default=None)

        # 2. run rows
        changed: set[str] = set()
        for run_id, record in discovered.items():
            if run_id not in records or _record_key(records[run_id]) != _record_key(record):
                records[run_id] = record
                changed.add(run_id)
            st = state.setdefault(run_id, {"final": False, "cursor": None, "events": 0})
            st["status"] = record.get("status")
            st["job"] = record.get("jobName") or record.get("pipelineName")
            st["created_ms"] = _created_ms(record)
        report.runs_updated = len(changed)

        # 3. events of terminal runs not final yet (discovered now, or topped up from an earlier sync)
        todo = [r for r, st in state.items() if st.get("status") in TERMINAL_STATUSES and not st.get("final")]
        if not events:  # the light sync: Dagster's stepStats, once per run (see .light)
            todo = [r for r in todo if not state[r].get("light")]
        writer = _BatchWriter(store, manifest, report)
        try:
            for i in range(0, len(todo), batch_runs):
                if events:
                    _fetch_batch(client, store, manifest, todo[i:i + batch_runs], grace, max_workers, progress,
                                 writer, report, changed)
                else:
                    # The last light batch is committed with the mark below: one commit, not two.
                    last = i + batch_runs >= len(todo)
                    _light_batch(client, manifest, todo[i:i + batch_runs], grace, writer, report, changed,
                                 commit=not last)
                    if last:
                        break
                changed.clear()
            # The mark moves only now that every run discovered is stored, and only for a discovery
            # open-ended in time: runs created after `until` were not looked at.
            if new_mark is not None and until_at is None:
                manifest["marks"][scope] = {"updated": new_mark, "since": mark.get("since") if use_mark else since_s}
            if changed or manifest["marks"].get(scope) != mark or not store.exists():
                writer.commit(runs_changed=True)
            if assets:  # every asset's, whatever `job` (see .asset_events)
                from .asset_events import sync_asset_events

                sync_asset_events(store, client, manifest, report, since_s)
            maintenance.compact(store, manifest, report)  # when a partition holds more than COMPACT_AT files
        except RunlensError as exc:
            left = sum(1 for st in manifest["runs"].values()
                       if st.get("status") in TERMINAL_STATUSES and not st.get("final"))
            exc.message = (f"{exc.message} (the sync committed {report.batches} batches, {report.runs_made_final} "
                           f"runs made final, before failing; {left} finished runs still to fetch: run it again "
                           "to continue)")
            exc.args = (exc.message,)
            raise
    report.seconds = time.monotonic() - started
    return report


def _recompute_steps(store: Store, manifest: dict, report: SyncReport) -> None:
    """Stored steps of another step computation: recomputed from the stored events (no request), one commit."""
    from ..steps import STEPS_VERSION, step_durations_unchecked
    from .query import read_events, read_steps

    old = [entry["path"] for entry in manifest["files"]["steps"]]
    final = [run_id for run_id, st in manifest["runs"].items() if st.get("final")]
    light = [run_id for run_id, st in manifest["runs"].items() if st.get("light")]
    writer = _BatchWriter(store, manifest, report)
    for i in range(0, len(final), BATCH_RUNS):
        events = read_events(store, manifest, run_ids=final[i:i + BATCH_RUNS])
        if len(events):
            writer.add_steps(step_durations_unchecked(events))
    if light:  # stepStats rows do not depend on runlens's step computation: kept as they are
        writer.add_steps(read_steps(store, manifest, run_ids=light), source="stepStats")
    manifest["files"]["steps"] = []
    manifest["steps_version"] = STEPS_VERSION
    # Listed no more: deleted by the commit (a crash leaves them for the next sync's recovery).
    writer.removals += old
    writer.commit(runs_changed=False)


def _fetch_batch(client: Client, store: Store, manifest: dict, run_ids: list[str], grace: float, max_workers: int,
                 progress: bool | None, writer: _BatchWriter, report: SyncReport, changed: set[str]) -> None:
    import pandas as pd

    from ..frames import concat_events
    from ..steps import step_durations_unchecked
    from .query import read_events

    state = manifest["runs"]
    fetch_started = time.time()
    skipped: dict[str, str] = {}

    def is_final(run_id: str) -> bool:
        ended = _ended(manifest["records"].get(run_id, {}))
        return ended is not None and fetch_started - ended >= grace

    def fetch(run_id: str) -> tuple[pd.DataFrame, Any, pd.DataFrame | None]:
        st = state[run_id]
        frame = client.events(run_id, after_cursor=st.get("cursor"), progress=False)
        if st.get("events"):
            frame["seq"] = frame["seq"] + int(st["events"])
        # Converted here, in the fetching thread, while other runs' pages are on the wire (the
        # webserver answers one request at a time): storing then adds little to the fetch.
        table = writer.events_table(run_id, frame) if len(frame) else None
        steps = step_durations_unchecked(frame) if is_final(run_id) and not st.get("events") else None
        return frame, table, steps

    fetched = client._fetch_runs(run_ids, max_workers, progress, skipped, fetch)
    report.skipped.update(skipped)
    made_final: list[pd.DataFrame] = []
    for run_id in run_ids:
        if run_id in skipped:
            state.pop(run_id, None)
            manifest["records"].pop(run_id, None)
            changed.add(run_id)
            continue
        (frame, table, steps), st = fetched[run_id], state[run_id]
        final = is_final(run_id)
        if table is not None:
            writer.add_table(run_id, table)
        stored_before = int(st.get("events") or 0)
        st["events"] = stored_before + len(frame)
        st["cursor"] = frame.attrs.get("cursor") or st.get("cursor")
        changed.add(run_id)
        if final:
            st["final"] = True
            if st.pop("light", None):  # its stepStats rows give way to the events' (see .light)
                writer.drop["steps"].add(run_id)
            report.runs_made_final += 1
            if steps is None:  # topped up: the steps of its whole stored log
                steps = step_durations_unchecked(concat_events([read_events(store, manifest, run_ids=[run_id]),
                                                                frame]))
            made_final.append(steps)
    if made_final:
        writer.add_steps(pd.concat(made_final, ignore_index=True) if len(made_final) > 1 else made_final[0])
    writer.commit(runs_changed=True)


def _light_batch(client: Client, manifest: dict, run_ids: list[str], grace: float, writer: _BatchWriter,
                 report: SyncReport, changed: set[str], *, commit: bool = True) -> None:
    """The light sync's batch: Dagster's stepStats of finished runs, stored as their steps (see .light)."""
    from .light import fetch_step_stats, steps_of_step_stats

    state, records = manifest["runs"], manifest["records"]
    now = time.time()
    due = [r for r in run_ids if (_ended(records.get(r, {})) or now) <= now - grace]
    stats = fetch_step_stats(client, due)
    for run_id in due:
        if run_id not in stats:  # gone from the server
            report.skipped[run_id] = f"run {run_id} is no longer on the server"
            state.pop(run_id, None)
            records.pop(run_id, None)
        else:
            state[run_id]["light"] = True
            report.runs_light += 1
        changed.add(run_id)
    writer.add_steps(steps_of_step_stats({r: stats[r] for r in due if r in stats}), source="stepStats")
    if commit:
        writer.commit(runs_changed=True)


class _BatchWriter:
    """Collects one batch's rows, then writes them and commits the manifest."""

    def __init__(self, store: Store, manifest: dict, report: SyncReport) -> None:
        self.store, self.manifest, self.report = store, manifest, report
        self.events: dict[str, list] = {}
        self.steps: list = []
        # Rows leaving the store with this commit: kind → runs whose rows the files holding them
        # are rewritten without (a light run upgraded, a repair); and files no longer listed.
        self.drop: dict[str, set[str]] = {"events": set(), "steps": set()}
        self.removals: list[str] = []

    def add_events(self, run_id: str, frame: pd.DataFrame) -> None:
        self.add_table(run_id, self.events_table(run_id, frame))

    def events_table(self, run_id: str, frame: pd.DataFrame) -> Any:
        """A run's events frame as its stored table (thread-safe: reads the run's state only)."""
        from .tables import events_table

        st = self.manifest["runs"][run_id]
        return events_table(frame, st.get("job"), st.get("created_ms", 0))

    def add_table(self, run_id: str, table: Any) -> None:
        st = self.manifest["runs"][run_id]
        self.events.setdefault(_month(st.get("created_ms", 0)), []).append(table)

    def add_steps(self, steps: pd.DataFrame, source: str = "events") -> None:
        self.steps.append((steps, source))

    def commit(self, *, runs_changed: bool) -> None:
        import pyarrow as pa

        from ..steps import STEPS_VERSION
        from .maintenance import drop_runs, table_writer
        from .tables import runs_table, steps_table

        manifest, store = self.manifest, self.store
        manifest["batch"] = batch = int(manifest.get("batch", 0)) + 1
        renames: dict[str, str] = {}
        removals = list(self.removals)
        write = table_writer(store, batch, renames, self.report)

        for kind, runs in self.drop.items():
            if runs:  # before the new files are listed: only rows stored earlier are dropped
                drop_runs(store, manifest, kind, runs, batch, write, removals)

        order = [("job_name", "ascending"), ("run_created", "ascending"), ("run_id", "ascending"),
                 ("seq", "ascending")]
        for month, tables in sorted(self.events.items()):
            table = pa.concat_tables(tables)
            rel = f"events/month={month}/part-{batch:06d}.parquet"
            write(rel, table, order)
            for run_id in set(table.column("run_id").to_pylist()):
                files = manifest["runs"][run_id].setdefault("files", [])
                if rel not in files:
                    files.append(rel)
            jobs = sorted({j for j in table.column("job_name").to_pylist() if j is not None})
            manifest["files"]["events"].append({"path": rel, "month": month, "rows": table.num_rows, "jobs": jobs})
            self.report.events_written += table.num_rows
        if self.steps:

            state = manifest["runs"]
            jobs = {r: st.get("job") for r, st in state.items()}
            created = {r: st.get("created_ms", 0) for r, st in state.items()}
            table = pa.concat_tables([steps_table(steps, jobs, created, source) for steps, source in self.steps])
            months = [_month(created.get(r, 0)) for r in table.column("run_id").to_pylist()]
            for month in sorted(set(months)):
                part = table.filter(pa.array([m == month for m in months]))
                rel = f"steps/month={month}/part-{batch:06d}.parquet"
                write(rel, part, [("job_name", "ascending"), ("run_created", "ascending"), ("run_id", "ascending")])
                manifest["files"]["steps"].append({"path": rel, "month": month, "rows": part.num_rows,
                                                   "jobs": sorted({j for j in part.column("job_name").to_pylist()
                                                                   if j is not None}),
                                                   "light": "stepStats" in part.column("source").to_pylist()})
                self.report.steps_written += part.num_rows
            manifest["steps_version"] = STEPS_VERSION
        if runs_changed:
            records = manifest["records"]
            # One file, replaced whole by an atomic rename: run rows change (status), and a
            # store of 20,000 runs holds about 1 MB of them.
            write(RUNS_FILE, runs_table(list(records.values()), manifest["runs"]), [("created", "ascending")])
            manifest["files"]["runs"] = RUNS_FILE
        manifest["synced_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        store.commit(manifest, renames, removals)
        self.report.batches += 1
        self.events, self.steps = {}, []
        self.drop, self.removals = {"events": set(), "steps": set()}, []
