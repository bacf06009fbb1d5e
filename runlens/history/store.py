"""The History store on disk: layout, manifest, lock and the commit protocol.

Layout (every data file Parquet, zstd, readable as it lies by DuckDB, pyarrow, Polars,
Spark, Dask)::

    STORE/
      manifest.json                         what is committed: format version, files, per-run state
      .lock                                 flock()ed by a sync
      runs/runs.parquet                     one row per run (replaced whole, by a rename, when runs change)
      events/month=2026-11/part-000007.parquet   events, by the *run's* creation month (UTC)
      steps/month=2026-11/part-000007.parquet    step_durations rows of final runs, likewise
      asset_events/month=2026-11/part-000008.parquet   asset events, by the *event's* month
                                                 (see :mod:`runlens.history.asset_events`)

Partitioning by the run's creation month keeps a run's events in one partition (a run
never moves: its creation time never changes) and lets a time-bounded query skip whole
months. Inside a file rows are sorted by job, run creation, run id and ``seq``, so a
job's or a run's rows form contiguous row groups whose statistics let readers skip the rest.

Commit protocol (one *batch*, several per sync):

1. each new file is written to ``.tmp-<name>.partial`` beside its final name, flushed
   and fsynced: readers' ``*.parquet`` globs do not match it;
2. ``manifest.json`` is written to a temporary file, fsynced and ``os.replace``\\ d: the
   commit point. It lists the new files under their final names and, in ``pending``,
   the renames still to do (``runs.parquet`` is replaced by its rename, atomically);
3. the files the new manifest no longer lists (merged by a compaction, rewritten without a
   run's rows) are deleted, *then* each temporary file is ``os.replace``\\ d to its final
   name and the directories fsynced: a ``*.parquet`` glob may miss those rows for a moment,
   never sees them twice.

A crash before 2 leaves only temporary files, which every reader ignores and the next
sync deletes. A crash between 2 and 3 leaves committed files under their temporary
names: runlens's readers read them there, and the next sync deletes what is no longer
listed and finishes the renames (:meth:`Store.recover`). So
a visible ``*.parquet`` file is always a committed, complete one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import StoreError, StoreLocked

#: The on-disk format this runlens writes; a store with a higher one was written by a newer runlens.
#: 2: steps files have a ``source`` column ("events" or "stepStats", the light sync's rows).
#: 3: the ``asset_events`` table and each asset's marks (``assets`` in the manifest).
#: A store of an older format is migrated in place by the next sync (or :meth:`History.migrate`).
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
RUNS_FILE = "runs/runs.parquet"
LOCK = ".lock"
#: The partitioned tables (``asset_events`` since format 3).
DATA_KINDS = ("events", "steps", "asset_events")
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-", ".partial"

# A test hook: the sync sends itself SIGKILL at the named commit point
# (before-temp-fsync, before-manifest, after-manifest, after-remove, after-rename); a
# compaction's, a migration's and the asset events' commits name theirs with a prefix
# (compact-after-manifest, migrate-after-manifest, assets-after-manifest, ...).
KILL_ENV = "RUNLENS_HISTORY_KILL_AT"
#: What the errors about a damaged store tell the user to run.
REPAIR_HINT = "run `runlens sync --repair` (History.repair(client)) to drop what is broken and refetch it"


def crash_point(name: str) -> None:
    """Die here if the test hook asks to (see :data:`KILL_ENV`)."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def temp_name(rel: str, batch: int) -> str:
    """The temporary path a file is written under before its commit: hidden, not ``*.parquet``.

    The batch number makes it unique: a reader that finds a pending rename of an older
    manifest never mistakes a newer sync's half-written file for it.
    """
    head, _, name = rel.rpartition("/")
    temp = f"{TEMP_PREFIX}{name}.{batch:06d}{TEMP_SUFFIX}"
    return f"{head}/{temp}" if head else temp


def empty_manifest(endpoint: str | None) -> dict[str, Any]:
    return {
        "format": "runlens-history",
        "format_version": FORMAT_VERSION,
        "endpoint": endpoint,
        "steps_version": None,
        "batch": 0,
        "marks": {},
        "files": {"events": [], "steps": [], "runs": None, "asset_events": []},
        "assets": {},
        "pending": {},
        "runs": {},
        "synced_at": None,
    }


class Store:
    """A store directory: reading the manifest, resolving files, locking and committing."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.root = Path(path).expanduser()
        self._cached: tuple[tuple, dict[str, Any]] | None = None
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"the History store {str(self.root)!r} is a file, not a folder: give a folder path "
                             "(it is created on first use)")

    # -- reading ------------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.root / MANIFEST).is_file()

    def manifest(self, *, allow_old: bool = False) -> dict[str, Any]:
        """The committed manifest; an empty one for a store not created yet.

        A store of an older format is refused (with what to run to migrate it) unless
        ``allow_old``: only a writer holding the lock, which migrates it, reads it so.

        Parsed once per commit: every commit replaces the file (a new inode), so its stat
        tells whether the cached one is current. It holds every run's record, so a store of
        20,000 runs would otherwise pay the JSON parse on every query. Callers must not
        change it (a sync works on a deep copy).
        """
        path = self.root / MANIFEST
        try:
            stat = path.stat()
        except OSError:
            stat = None
        key = None if stat is None else (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if key is not None and self._cached is not None and self._cached[0] == key:
            manifest = self._cached[1]
        else:
            manifest = self._read_manifest(path)
            self._cached = None if key is None else (key, manifest)
        version = manifest["format_version"]
        if version < FORMAT_VERSION and not allow_old:
            raise StoreError(f"the History store {str(self.root)!r} has format version {version}, written by an older "
                             f"runlens; this one reads version {FORMAT_VERSION}: run `runlens sync --migrate --store "
                             f"{self.root}` (or History(path).migrate(); any sync migrates it too) to upgrade it in place")
        return manifest

    def _read_manifest(self, path: Path) -> dict[str, Any]:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if self.root.is_dir() and any(self.root.glob("*/**/*.parquet")):
                raise _damaged(f"{path} is missing but the store holds data files: the store is damaged; "
                               f"{REPAIR_HINT} (without its manifest the store is rebuilt from the server)") from None
            return empty_manifest(None)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            manifest = json.loads(text)
            version = manifest["format_version"]
        except (ValueError, KeyError, TypeError):
            raise _damaged(f"{path} is not a runlens History manifest (unreadable JSON or no format_version): "
                           f"the store is damaged; {REPAIR_HINT} (without its manifest the store is rebuilt from "
                           "the server)") from None
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise StoreError(f"the History store {str(self.root)!r} has format version {version}, written by a newer "
                             f"runlens; this one reads up to version {FORMAT_VERSION}: upgrade runlens "
                             "(pip install -U runlens)")
        return manifest

    def resolve(self, rel: str, manifest: dict[str, Any]) -> Path:
        """Where a committed file is: its final name, or its temporary one if the rename is still pending."""
        final = self.root / rel
        temp = manifest.get("pending", {}).get(rel)
        if temp is not None and (self.root / temp).is_file():
            return self.root / temp
        if not final.is_file():
            raise StoreError(f"the History store's manifest lists {final} but the file is missing: the store is "
                             f"damaged; {REPAIR_HINT}")
        return final

    # -- writing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, *, recover: bool = True) -> Iterator[None]:
        """Hold the store's lock (failing at once if a sync holds it) and recover from a crash
        (unless not ``recover``: a repair first checks that the manifest can be read)."""
        try:
            import fcntl  # POSIX only; imported here so reading works anywhere
        except ImportError:
            raise StoreError("syncing a History store needs a POSIX system (fcntl locks); reading works "
                             "anywhere") from None

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot write to the History store {str(self.root)!r}: {exc.strerror or exc}; "
                             "check the path and its permissions") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreLocked(f"another sync is writing to the History store {str(self.root)!r}: wait for it to "
                                  "finish and run this one again") from None
            self._check_writable()
            if recover:
                self.recover()
            yield
        finally:
            os.close(fd)  # releases the lock; so does a killed process's exit

    def _check_writable(self) -> None:
        try:
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX):
                pass
        except OSError as exc:
            raise StoreError(f"cannot write to the History store {str(self.root)!r}: {exc.strerror or exc}; "
                             "check its permissions and free space") from None

    def recover(self) -> None:
        """Finish a committed batch: delete what it no longer lists, do its pending renames, delete
        every uncommitted temporary file.

        Deleting comes before renaming, as in :meth:`commit`: a reader globbing ``*.parquet``
        may miss rows for a moment (a compaction's merged files), never see them twice.
        """
        manifest = self.manifest(allow_old=True)
        # Data files a committed manifest no longer lists (replaced by a compaction, a light
        # run's upgrade or a steps recomputation, whose deletion a crash cut short).
        listed = {entry["path"] for kind in DATA_KINDS for entry in manifest["files"].get(kind, [])}
        for kind in DATA_KINDS:
            for path in (self.root / kind).rglob("*.parquet"):
                if path.relative_to(self.root).as_posix() not in listed:
                    path.unlink()
        pending = manifest.get("pending", {})
        for rel, temp in pending.items():
            if (self.root / temp).is_file():
                os.replace(self.root / temp, self.root / rel)
                _fsync_dir((self.root / rel).parent)
        for stray in self.root.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                stray.unlink()

    def write_temp(self, rel: str, write, batch: int, stage: str = "") -> str:
        """Write a new file with ``write(file_object)`` under its temporary name, fsynced; returns that name.

        ``stage`` prefixes the names of the crash points (``compact-``, ``migrate-``)."""
        temp = temp_name(rel, batch)
        path = self.root / temp
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "wb") as f:
                write(f)
                f.flush()
                crash_point(f"{stage}before-temp-fsync")
                os.fsync(f.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            raise StoreError(f"cannot write {path}: {exc.strerror or exc} (the store is left as it was; "
                             "check free space and permissions)") from None
        return temp

    def commit(self, manifest: dict[str, Any], renames: dict[str, str], remove: list[str] = (),
               stage: str = "") -> None:
        """Make ``manifest`` (listing the files of ``renames``: final → temporary) the store's state.

        ``remove`` are files the new manifest no longer lists (merged, rewritten): deleted
        after the commit point and before the renames, so a ``*.parquet`` glob never sees
        their rows twice. ``stage`` prefixes the crash points' names.
        """
        manifest = dict(manifest, pending=renames)
        path = self.root / MANIFEST
        temp = self.root / temp_name(MANIFEST, int(manifest.get("batch", 0)))
        crash_point(f"{stage}before-manifest")
        try:
            with open(temp, "w", encoding="utf-8") as f:
                json.dump(manifest, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
            _fsync_dir(self.root)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise StoreError(f"cannot write {path}: {exc.strerror or exc} (the store is left as it was; "
                             "check free space and permissions)") from None
        crash_point(f"{stage}after-manifest")
        dirs = set()
        for rel in remove:
            if rel in renames:
                continue  # replaced in place by its rename
            with contextlib.suppress(FileNotFoundError):
                (self.root / rel).unlink()
            dirs.add((self.root / rel).parent)
        if remove:
            crash_point(f"{stage}after-remove")
        for rel, temp_rel in renames.items():
            os.replace(self.root / temp_rel, self.root / rel)
            dirs.add((self.root / rel).parent)
        for directory in dirs:
            _fsync_dir(directory)
        crash_point(f"{stage}after-rename")

    def remove(self, rels: list[str]) -> None:
        """Delete files a committed manifest no longer lists."""
        for rel in rels:
            with contextlib.suppress(FileNotFoundError):
                (self.root / rel).unlink()


def _damaged(message: str) -> StoreError:
    """The error of a store whose manifest is lost: ``damaged`` tells a repair it may rebuild the store
    (and not, say, a store of a newer runlens)."""
    exc = StoreError(message)
    exc.damaged = True
    return exc


def _fsync_dir(directory: Path) -> None:
    # A rename is durable only once its directory is; not every platform allows this.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
