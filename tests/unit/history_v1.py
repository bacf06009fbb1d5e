"""A generator of History stores in format 1 (before steps files had a ``source`` column), for the migration tests.

Not a test module. Format 1 differs from format 2 (:mod:`tests.unit.history_v2`) in two things only: steps files have no
``source`` column, and the manifest says ``format_version: 1`` (its steps entries carry no
``light`` flag). The generator syncs a store with today's code and writes those two things
back as runlens 1 wrote them, with pyarrow: no file is written by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

import runlens
from tests.unit.history_v2 import write_v2_store


def write_v1_store(root: Path, client: runlens.Client) -> Path:
    """Sync ``client``'s deployment into ``root`` and turn the store into what a format-1 runlens wrote
    (format 2's store, without the steps' ``source``)."""
    write_v2_store(root, client)
    manifest = json.loads((root / "manifest.json").read_text())
    for entry in manifest["files"]["steps"]:
        path = root / entry["path"]
        table = pq.read_table(path)
        assert set(table.column("source").to_pylist()) <= {"events"}, "format 1 stored steps of events only"
        pq.write_table(table.drop_columns(["source"]), path, compression="zstd", row_group_size=32 * 1024)
        entry.pop("light", None)
    manifest["format_version"] = 1
    (root / "manifest.json").write_text(json.dumps(manifest, separators=(",", ":")))
    return root
