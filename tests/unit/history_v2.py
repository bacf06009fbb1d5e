"""A generator of History stores in format 2 (before the ``asset_events`` table), for the migration tests.

Not a test module. Format 2 differs from format 3 in that it has no ``asset_events`` table
and its manifest no ``assets`` marks and says ``format_version: 2``. The generator syncs a
store with today's code and takes those back out as runlens 2 had it: no file is written by hand.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import runlens


def write_v2_store(root: Path, client: runlens.Client) -> Path:
    """Sync ``client``'s deployment into ``root`` and turn the store into what a format-2 runlens wrote."""
    runlens.History(root).sync(client)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"].pop("asset_events", None)
    manifest.pop("assets", None)
    shutil.rmtree(root / "asset_events", ignore_errors=True)
    manifest["format_version"] = 2
    (root / "manifest.json").write_text(json.dumps(manifest, separators=(",", ":")))
    return root
