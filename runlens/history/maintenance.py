"""Keeping a History store healthy: compaction, repair and migration.

Every change here is a commit of :mod:`runlens.history.store`'s protocol (temporary files,
the manifest replaced atomically, then the files no longer listed deleted *before* the new
ones are renamed into place), so a kill at any point leaves a store that readers read as
its last commit, that the next writer completes, and in which a ``*.parquet`` glob never
sees a row twice (it may miss the rows being merged for a moment).

* **Compaction** (:func:`compact`): each sync batch writes one file per partition it
  touches, so months of syncs leave many small files. When a partition (a table's month)
  holds more than :data:`COMPACT_AT` files, its files under :data:`TARGET_ROWS` rows are
  merged into files of up to that many rows, sorted as a sync writes them. A sync runs it
  at its end; ``History.compact()`` / ``runlens sync --compact`` run it on demand (every
  partition with two small files or more).
* **Repair** (:func:`repair`): every listed file is read whole; a missing, corrupt or
  truncated one (or one with another row count than the manifest's) is dropped, with every
  other row of the runs (or assets) it held, and those are fetched again by the sync that follows.
  Steps lost with a broken steps file are recomputed from the stored events. An unreadable
  manifest leaves nothing to go by: the store is rebuilt from the server.
* **Migration** (:func:`migrated`): a store of an older format version is brought to
  :data:`~runlens.history.store.FORMAT_VERSION` in place, in one commit, by the first writer
  that opens it (a sync, a compaction, a repair, or ``History.migrate()``). Readers of an
  older store get an error saying what to run.
"""

from __future__ import annotations

import copy
import io
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import StoreError
from .store import DATA_KINDS, FORMAT_VERSION, MANIFEST, Store
from .tables import ASSET_EVENTS_SCHEMA, EVENTS_SCHEMA, STEPS_SCHEMA

if TYPE_CHECKING:
    from ..client import Client
    from .sync import SyncReport

#: A partition (a table's month) holding more files than this is compacted by the next sync.
COMPACT_AT = 8
#: Compaction merges files smaller than this (rows) into files of at most about this many.
TARGET_ROWS = 1_000_000

SCHEMAS = {"events": EVENTS_SCHEMA, "steps": STEPS_SCHEMA, "asset_events": ASSET_EVENTS_SCHEMA}
ORDER = {
    "events": [("job_name", "ascending"), ("run_created", "ascending"), ("run_id", "ascending"),
               ("seq", "ascending")],
    "steps": [("job_name", "ascending"), ("run_created", "ascending"), ("run_id", "ascending")],
    "asset_events": [("asset_key", "ascending"), ("seq", "ascending")],
}


def table_writer(store: Store, batch: int, renames: dict[str, str], report: Any = None, stage: str = ""):
    """``write(rel, table, sort)``: a Parquet file of this batch under its temporary name (into ``renames``)."""
    from .sync import ROW_GROUP_ROWS, STEPS_ROW_GROUP_ROWS

    def write(rel: str, table: pa.Table, sort: list[tuple[str, str]] | None) -> None:
        if sort:
            table = table.sort_by(sort)  # stable: a run's rows keep their order
        data = io.BytesIO()
        rows = STEPS_ROW_GROUP_ROWS if rel.startswith("steps/") else ROW_GROUP_ROWS
        pq.write_table(table, data, compression="zstd", row_group_size=rows, write_statistics=True)
        renames[rel] = store.write_temp(rel, lambda f: f.write(data.getbuffer()), batch, stage)
        if report is not None:
            report.files_written += 1

    return write


def _entry(rel: str, month: str, table: pa.Table, kind: str) -> dict[str, Any]:
    if kind == "asset_events":
        from .asset_events import file_entry

        return file_entry(rel, month, table)
    entry = {"path": rel, "month": month, "rows": table.num_rows,
             "jobs": sorted({j for j in pc.unique(table.column("job_name")).to_pylist() if j is not None})}
    if kind == "steps":
        entry["light"] = "stepStats" in pc.unique(table.column("source")).to_pylist()
    return entry


def _new_name(manifest: dict, kind: str, month: str, batch: int, taken: set[str]) -> str:
    listed = {e["path"] for e in manifest["files"][kind]}
    k = 0
    while True:
        rel = f"{kind}/month={month}/part-{batch:06d}-{k:02d}.parquet"
        if rel not in listed and rel not in taken:
            taken.add(rel)
            return rel
        k += 1


def _read(store: Store, manifest: dict, kind: str, rels: list[str]) -> pa.Table:
    paths = [str(store.resolve(rel, manifest)) for rel in rels]
    return ds.dataset(paths, format="parquet", schema=SCHEMAS[kind]).to_table()


def _month_of(state: dict) -> str:
    return datetime.fromtimestamp(state.get("created_ms", 0) / 1000, tz=UTC).strftime("%Y-%m")


def _move_run_files(manifest: dict, table: pa.Table, old: set[str], new: str) -> None:
    """The events files each run of ``table`` is listed in: ``old`` ones become ``new``."""
    for run_id in pc.unique(table.column("run_id")).to_pylist():
        st = manifest["runs"].get(run_id)
        if st is not None:
            files = [f for f in st.get("files", []) if f not in old]
            st["files"] = [*files, new] if new not in files else files


def drop_runs(store: Store, manifest: dict, kind: str, runs: set[str], batch: int, write, removals: list[str]) -> None:
    """Rewrite the listed ``kind`` files holding rows of ``runs`` without those rows (into ``write``/``removals``).

    For ``events`` the runs' own file lists say where their rows are, and are emptied; for
    ``steps`` every file of the runs' months is looked at (its ``run_id`` column only).
    """
    state = manifest["runs"]
    if kind == "events":
        holding = {f for r in runs for f in state.get(r, {}).get("files", [])}
        candidates = [e for e in manifest["files"][kind] if e["path"] in holding]
    else:
        months = {_month_of(state[r]) for r in runs if r in state}
        candidates = [e for e in manifest["files"][kind] if e["month"] in months]
    wanted = pa.array(sorted(runs), type=pa.string())
    taken: set[str] = set()
    for entry in candidates:
        path = store.resolve(entry["path"], manifest)
        mask = pc.is_in(pq.read_table(path, columns=["run_id"]).column("run_id"), value_set=wanted)
        if not pc.any(mask).as_py():
            continue
        kept = _read(store, manifest, kind, [entry["path"]]).filter(pc.invert(mask))
        manifest["files"][kind].remove(entry)
        removals.append(entry["path"])
        if kept.num_rows:
            rel = _new_name(manifest, kind, entry["month"], batch, taken)
            write(rel, kept, ORDER[kind])
            manifest["files"][kind].append(_entry(rel, entry["month"], kept, kind))
            if kind == "events":
                _move_run_files(manifest, kept, {entry["path"]}, rel)
    if kind == "events":
        for run_id in runs:
            if run_id in state:
                state[run_id]["files"] = []


# ------------------------------------------------------------------------------ compaction


def _plan(manifest: dict, force: bool) -> list[tuple[str, str, list[dict]]]:
    """(kind, month, files to merge into one) for every partition due."""
    plan = []
    for kind in DATA_KINDS:
        months: dict[str, list[dict]] = {}
        for entry in manifest["files"].get(kind, []):
            months.setdefault(entry["month"], []).append(entry)
        for month, entries in sorted(months.items()):
            if len(entries) <= COMPACT_AT and not force:
                continue
            group: list[dict] = []
            rows = 0
            for entry in (e for e in entries if e["rows"] < TARGET_ROWS):
                if group and rows + entry["rows"] > TARGET_ROWS:
                    plan.append((kind, month, group))
                    group, rows = [], 0
                group.append(entry)
                rows += entry["rows"]
            plan.append((kind, month, group))
    return [p for p in plan if len(p[2]) >= 2]


def compact(store: Store, manifest: dict, report: Any = None, *, force: bool = False) -> int:
    """Merge the small files of every partition due (all with two or more when ``force``); one commit.

    ``manifest`` is the writer's working copy (updated). Returns the number of files merged.
    """
    plan = _plan(manifest, force)
    if not plan:
        return 0
    manifest["batch"] = batch = int(manifest.get("batch", 0)) + 1
    renames: dict[str, str] = {}
    removals: list[str] = []
    write = table_writer(store, batch, renames, stage="compact-")
    taken: set[str] = set()
    merged = 0
    for kind, month, group in plan:
        rels = [e["path"] for e in group]
        table = _read(store, manifest, kind, rels)
        rel = _new_name(manifest, kind, month, batch, taken)
        write(rel, table, ORDER[kind])
        for entry in group:
            manifest["files"][kind].remove(entry)
        manifest["files"][kind].append(_entry(rel, month, table, kind))
        if kind == "events":
            _move_run_files(manifest, table, set(rels), rel)
        removals += rels
        merged += len(group)
    store.commit(manifest, renames, removals, stage="compact-")
    if report is not None:
        report.files_compacted += merged
    return merged


@dataclass
class CompactReport:
    """What :meth:`History.compact` did."""

    files_before: int = 0
    files_after: int = 0
    files_merged: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"Compacted: {self.files_merged} files merged, {self.files_before} data files before, "
                f"{self.files_after} after, in {self.seconds:.1f} s")

    def as_dict(self) -> dict[str, Any]:
        return {"files_before": self.files_before, "files_after": self.files_after,
                "files_merged": self.files_merged, "seconds": round(self.seconds, 3)}


def _count(manifest: dict) -> int:
    return sum(len(manifest["files"].get(kind, [])) for kind in DATA_KINDS)


def compact_store(store: Store, *, force: bool = True) -> CompactReport:
    """:meth:`History.compact`: under the lock, migrating an older store first."""
    started = time.monotonic()
    report = CompactReport()
    with store.locked():
        manifest = copy.deepcopy(migrated(store))
        report.files_before = _count(manifest)
        report.files_merged = compact(store, manifest, force=force)
        report.files_after = _count(manifest)
    report.seconds = time.monotonic() - started
    return report


# -------------------------------------------------------------------------------- migration


def _v1_to_v2(store: Store, manifest: dict, write) -> None:
    """Format 1 → 2: steps files gain ``source`` ("events": format 1 stored no other rows)."""
    for entry in manifest["files"]["steps"]:
        table = pq.read_table(store.resolve(entry["path"], manifest))
        if "source" not in table.column_names:
            table = table.append_column("source", pa.array(["events"] * table.num_rows, type=pa.string()))
        write(entry["path"], table.select(STEPS_SCHEMA.names).cast(STEPS_SCHEMA), None)  # replaced by its rename
        entry["light"] = False


def _v2_to_v3(store: Store, manifest: dict, write) -> None:
    """Format 2 → 3: the ``asset_events`` table, empty (the next sync fills it), and each asset's marks."""
    manifest["files"].setdefault("asset_events", [])
    manifest.setdefault("assets", {})


#: version → the step that brings a store of that version to the next.
MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3}


def migrated(store: Store) -> dict:
    """The committed manifest, after migrating the store in place if it is of an older format.

    Call it holding the lock. One commit for all the steps (crash points ``migrate-*``): a
    kill before it leaves the old store, which the next writer migrates again; after it the
    next writer's recovery finishes the renames.
    """
    manifest = store.manifest(allow_old=True)
    version = manifest["format_version"]
    if version >= FORMAT_VERSION:
        return manifest
    manifest = copy.deepcopy(manifest)
    manifest["batch"] = batch = int(manifest.get("batch", 0)) + 1
    renames: dict[str, str] = {}
    write = table_writer(store, batch, renames, stage="migrate-")
    while version < FORMAT_VERSION:
        MIGRATIONS[version](store, manifest, write)
        version += 1
    manifest["format_version"] = FORMAT_VERSION
    store.commit(manifest, renames, stage="migrate-")
    return store.manifest()


def migrate_store(store: Store) -> int | None:
    """:meth:`History.migrate`: the version the store had (None for a store not created yet)."""
    if not store.exists():
        return None
    with store.locked():
        before = store.manifest(allow_old=True)["format_version"]
        migrated(store)
    return before


# ----------------------------------------------------------------------------------- repair


@dataclass
class RepairReport:
    """What :meth:`History.repair` found and did; ``sync`` is the sync that refetched."""

    problems: dict[str, str] = field(default_factory=dict)
    runs_refetched: list[str] = field(default_factory=list)
    steps_recomputed: list[str] = field(default_factory=list)
    assets_refetched: list[str] = field(default_factory=list)
    rebuilt: bool = False
    sync: SyncReport | None = None

    def summary(self) -> str:
        if not self.problems:
            head = "Repair: every file of the store is whole"
        else:
            head = (f"Repair: {len(self.problems)} broken file(s) dropped ({', '.join(sorted(self.problems))}), "
                    f"{len(self.runs_refetched)} runs refetched, steps of {len(self.steps_recomputed)} runs "
                    "recomputed from their events")
            if self.assets_refetched:
                head += f", events of {len(self.assets_refetched)} assets refetched"
            if self.rebuilt:
                head += "; the manifest was unreadable: the store was rebuilt from the server"
        return f"{head}. {self.sync.summary() if self.sync else ''}".strip()

    def as_dict(self) -> dict[str, Any]:
        return {"problems": self.problems, "runs_refetched": self.runs_refetched,
                "steps_recomputed": self.steps_recomputed, "assets_refetched": self.assets_refetched,
                "rebuilt": self.rebuilt,
                "sync": self.sync.as_dict() if self.sync else None}


def check_files(store: Store, manifest: dict) -> dict[str, str]:
    """Every listed file that is missing, unreadable, or holds another number of rows than listed."""
    problems: dict[str, str] = {}
    listed = [(e["path"], e["rows"]) for kind in DATA_KINDS for e in manifest["files"].get(kind, [])]
    if manifest["files"].get("runs"):
        listed.append((manifest["files"]["runs"], None))
    for rel, rows in listed:
        temp = manifest.get("pending", {}).get(rel)
        path = store.root / (temp if temp and (store.root / temp).is_file() else rel)
        if not path.is_file():
            problems[rel] = "missing"
            continue
        try:
            got = pq.read_table(path).num_rows
        except Exception as exc:  # noqa: BLE001 - whatever the reader says, the file is broken
            problems[rel] = f"corrupt or truncated ({exc})"
            continue
        if rows is not None and got != rows:
            problems[rel] = f"holds {got} rows, the manifest lists {rows}"
    return problems


def _drop_broken(store: Store, manifest: dict, problems: dict[str, str], result: RepairReport) -> None:
    from ..steps import step_durations_unchecked
    from .asset_events import drop_broken
    from .query import read_events
    from .sync import SyncReport, _BatchWriter

    # Assets that lost events: all their rows go (a commit of its own), the sync refetches them whole.
    result.assets_refetched = drop_broken(store, manifest, problems)
    state = manifest["runs"]
    writer = _BatchWriter(store, manifest, SyncReport())
    broken_steps_months = {e["month"] for e in manifest["files"]["steps"] if e["path"] in problems}
    for kind in ("events", "steps"):
        manifest["files"][kind] = [e for e in manifest["files"][kind] if e["path"] not in problems]
    writer.removals += [rel for rel in problems if not rel.startswith("runs/")]
    # Runs that lost events: every other row of theirs goes too, and the sync refetches them whole.
    lost = sorted(r for r, st in state.items() if set(st.get("files", [])) & set(problems))
    for run_id in lost:
        st = state[run_id]
        st["files"] = [f for f in st.get("files", []) if f not in problems]
        st.update(final=False, events=0, cursor=None)
        st.pop("light", None)
    writer.drop["events"].update(lost)
    writer.drop["steps"].update(lost)
    # Runs that lost steps with a broken steps file: recomputed from their (whole) stored events.
    if broken_steps_months:
        remaining = [e["path"] for e in manifest["files"]["steps"] if e["month"] in broken_steps_months]
        present = set() if not remaining else set(
            pc.unique(_read(store, manifest, "steps", remaining).column("run_id")).to_pylist())
        for run_id, st in state.items():
            if run_id in present or run_id in lost or _month_of(st) not in broken_steps_months:
                continue
            if st.get("final"):
                result.steps_recomputed.append(run_id)
            elif st.pop("light", None):
                lost.append(run_id)  # its stepStats are asked for again
        if result.steps_recomputed:
            events = read_events(store, manifest, run_ids=result.steps_recomputed)
            if len(events):
                writer.add_steps(step_durations_unchecked(events))
    result.runs_refetched = lost
    writer.commit(runs_changed=True)  # the runs file is rewritten from the manifest's records


def repair(store: Store, client: Client, **sync_options: Any) -> RepairReport:
    """:meth:`History.repair`: drop what is broken, then a sync that refetches it."""
    from .sync import sync

    result = RepairReport()
    with store.locked(recover=False):
        try:
            manifest = store.manifest(allow_old=True)
        except StoreError as exc:
            if not getattr(exc, "damaged", False):
                raise  # e.g. a store of a newer runlens: not ours to rebuild
            # Nothing left to go by: start over (the data files are the server's to give again).
            result.problems[MANIFEST] = str(exc)
            result.rebuilt = True
            (store.root / MANIFEST).unlink(missing_ok=True)
            for kind in (*DATA_KINDS, "runs"):
                shutil.rmtree(store.root / kind, ignore_errors=True)
            manifest = None
        if manifest is not None:
            store.recover()
            manifest = copy.deepcopy(store.manifest(allow_old=True))
            problems = check_files(store, manifest)
            if problems:
                result.problems.update(problems)
                _drop_broken(store, manifest, problems, result)
    result.sync = sync(store, client, **sync_options)
    return result


def maintain(history: Any, client: Client, *, compact: bool, migrate: bool, **sync_options: Any
             ) -> tuple[dict[str, Any], str]:
    """``runlens sync --compact`` / ``--migrate`` / ``--repair``: run it; its report as JSON and as one line."""
    if compact:
        result: Any = history.compact()
        return result.as_dict(), result.summary()
    if migrate:
        before = history.migrate()
        line = ("No store yet: nothing to migrate" if before is None else
                f"Migrated: format {before} to {FORMAT_VERSION}" if before < FORMAT_VERSION else
                f"The store is already of format {FORMAT_VERSION}")
        return {"format_version_before": before, "format_version": FORMAT_VERSION}, line
    result = history.repair(client, **sync_options)
    return result.as_dict(), result.summary()
