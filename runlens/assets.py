"""Assets: the keys a deployment knows, and each asset's materializations and observations.

The logic behind :meth:`runlens.Client.assets` and :meth:`runlens.Client.asset_events`;
it takes the client's transport, so it sits below the client in the layers.

Events come from ``Asset.assetEventHistory``: unlike ``assetMaterializations`` it pages by
a real cursor (an event storage id) and returns failed materializations too. Pages run
newest first; the frame holds them oldest first. Three traps of Dagster 1.13 it handles:

* an unknown key does not answer ``AssetNotFoundError``: it answers an ``Asset`` with no
  definition and no events. A key with neither a definition nor a ``latestEventSortKey``
  is :class:`~runlens.errors.AssetNotFound` (an asset removed from the code but with
  history is found);
* ``afterTimestampMillis`` / ``beforeTimestampMillis`` are strict, whole milliseconds,
  and ``"0"`` means no bound: the server is asked for a slightly wider window and the
  bounds are applied exactly here;
* a metadata entry's ``intValue`` is a 32-bit GraphQL Int (null above 2**31) and
  ``floatValue`` cannot carry nan/inf: ``intRepr`` / ``floatRepr`` are read instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from . import queries
from .errors import AssetNotFound, InvalidArgument, RunlensError, ServerError
from .text import now_iso
from .timespec import parse_time
from .transport import raise_python_error

__all__ = [
    "ASSET_EVENT_COLUMNS",
    "ASSETS_COLUMNS",
    "KINDS",
    "asset_events_frame",
    "asset_key_path",
    "asset_key_text",
    "assets_frame",
    "fetch_asset_events",
    "fetch_assets",
    "flatten_metadata",
]

#: Events per ``assetEventHistory`` request. Dagster refuses more than 10,000
#: (``MAX_LIMIT_GET_EVENT_RECORDS``) and returns exactly ``limit`` when more exist.
PAGE_SIZE = 1000
ASSETS_PAGE_SIZE = 500

#: ``kind=`` of :func:`fetch_asset_events` -> the event types asked for.
KINDS = {
    "materialization": ("MATERIALIZATION", "FAILED_TO_MATERIALIZE"),
    "observation": ("OBSERVATION",),
    "all": ("MATERIALIZATION", "FAILED_TO_MATERIALIZE", "OBSERVATION"),
}

# GraphQL type of an event -> the frame's ``status``.
_STATUS = {"MaterializationEvent": "MATERIALIZED", "FailedToMaterializeEvent": "FAILED",
           "ObservationEvent": "OBSERVED"}
STATUSES = ("MATERIALIZED", "FAILED", "OBSERVED")

#: The columns of :func:`asset_events_frame` before the ``meta.<label>`` ones, with dtypes.
ASSET_EVENT_COLUMNS = {
    "timestamp": "datetime64[ms, UTC]",
    "asset_key": "string",
    "partition": "string",
    "status": pd.CategoricalDtype(list(STATUSES)),
    "run_id": "string",
    "step_key": "string",
    "event_type": "string",
    "description": "string",
    "failure_reason": "string",
}

#: The columns of :func:`assets_frame`, with dtypes.
ASSETS_COLUMNS = {
    "key": "string",
    "group": "string",
    "partitioned": "boolean",
    "defined": "boolean",
    "last_materialization": "datetime64[ms, UTC]",
}

# Metadata entry type -> (kind, how its value is read from the entry).
_TEXT_FIELDS = {"TextMetadataEntry": "text", "MarkdownMetadataEntry": "mdStr", "PathMetadataEntry": "path",
                "NotebookMetadataEntry": "path", "UrlMetadataEntry": "url", "PipelineRunMetadataEntry": "runId",
                "JobMetadataEntry": "jobName", "PoolMetadataEntry": "pool"}

# A column's dtype by the kind of its values.
_DTYPES = {"int": "Int64", "float": "Float64", "bool": "boolean", "text": "string",
           "timestamp": "datetime64[us, UTC]", "json": "object"}


# ----------------------------------------------------------------------------- keys


def asset_key_path(key: Any) -> list[str]:
    """An asset key as Dagster's path: ``"a/b"``, ``["a", "b"]`` or ``("a", "b")`` -> ``["a", "b"]``.

    Raises
    ------
    InvalidArgument
        An empty key, an empty part (``"a//b"``) or something that is no key.
    """
    if isinstance(key, str):
        parts = key.strip().strip("/").split("/") if key.strip() else []
    elif isinstance(key, (list, tuple)) and all(isinstance(p, str) for p in key):
        parts = list(key)
    else:
        raise InvalidArgument(f"an asset key is a string 'a/b' or a list of its parts, not {key!r}")
    if not parts or any(not p.strip() for p in parts):
        raise InvalidArgument(f"an asset key needs at least one non-empty part (e.g. 'daily_orders' or "
                              f"'warehouse/sales'), not {key!r}")
    return [p.strip() for p in parts]


def asset_key_text(path: Sequence[str]) -> str:
    """``["a", "b"]`` -> ``"a/b"``, as the Dagster UI and ``dg`` write keys."""
    return "/".join(path)


# ---------------------------------------------------------------------- asset list


def fetch_assets(transport: Any, url: str, prefix: Any = None) -> pd.DataFrame:
    """Every asset key the deployment knows (defined, or with recorded events), sorted.

    See :meth:`runlens.Client.assets`.
    """
    path = asset_key_path(prefix) if prefix is not None else None
    nodes = fetch_asset_nodes(transport, url, path)
    frame = assets_frame([{**node, "key": key} for key, node in sorted(nodes.items())])
    frame.attrs.update(endpoint=url, prefix=asset_key_text(path) if path else None, fetched_at=now_iso())
    return frame


def fetch_asset_nodes(transport: Any, url: str, path: list[str] | None = None) -> dict[str, dict]:
    """The ``assetsOrError`` nodes of every asset (under the key prefix ``path``), by key text.

    Each node has ``key``, ``definition`` (``groupName``, ``isPartitioned``),
    ``latestMaterializationTimestamp`` and ``latestEventSortKey`` (the storage id of the
    asset's last event: what :class:`runlens.History` compares to know an asset has news).
    """
    nodes: dict[str, dict] = {}
    cursor = None
    while True:
        variables = {"prefix": path, "cursor": cursor, "limit": ASSETS_PAGE_SIZE}
        result = transport.execute(queries.ASSETS, variables).get("assetsOrError")
        if not isinstance(result, dict):
            raise ServerError(f"{url} answered without an asset list")
        raise_python_error(result)
        page = result.get("nodes")
        if not isinstance(page, list) or not all(isinstance(n, dict) for n in page):
            raise ServerError(f"{url} answered a malformed asset list (nodes is not a list of assets)")
        for node in page:
            key = asset_key_text(_key_path(node.get("key"), url))
            nodes.setdefault(key, node)
        next_cursor = result.get("cursor")
        if len(page) < ASSETS_PAGE_SIZE or not isinstance(next_cursor, str) or next_cursor == cursor:
            break
        cursor = next_cursor
    return nodes


def assets_frame(nodes: list[dict]) -> pd.DataFrame:
    """The frame of :meth:`runlens.Client.assets` from ``assetsOrError`` nodes (``key`` as text)."""
    keys, groups, partitioned, defined, last = [], [], [], [], []
    for node in nodes:
        definition = node.get("definition")
        definition = definition if isinstance(definition, dict) else None
        keys.append(node["key"])
        groups.append(definition.get("groupName") if definition else None)
        partitioned.append(definition.get("isPartitioned") if definition else None)
        defined.append(definition is not None)
        millis = node.get("latestMaterializationTimestamp")
        last.append(int(millis) if isinstance(millis, (int, float)) and math.isfinite(millis) else None)
    return pd.DataFrame({
        "key": pd.array(keys, dtype="string"),
        "group": pd.array(groups, dtype="string"),
        "partitioned": pd.array(partitioned, dtype="boolean"),
        "defined": pd.array(defined, dtype="boolean"),
        "last_materialization": pd.to_datetime(pd.array(last, dtype="Int64"), unit="ms", utc=True)
        .astype(ASSETS_COLUMNS["last_materialization"]),
    })


# -------------------------------------------------------------------- asset events


def fetch_asset_events(
    transport: Any,
    url: str,
    key: Any,
    *,
    kind: str = "materialization",
    partitions: Sequence[str] | str | None = None,
    since: Any = None,
    before: Any = None,
    limit: int | None = None,
    cursor: str | None = None,
    page_size: int | None = None,
) -> pd.DataFrame:
    """The events of one asset as a frame. See :meth:`runlens.Client.asset_events`."""
    path = asset_key_path(key)
    key_text = asset_key_text(path)
    page_size = page_size or PAGE_SIZE
    partitions, start, end = check_query(kind, partitions, since, before, limit)
    if cursor is not None and (not isinstance(cursor, str) or not cursor.strip()):
        raise InvalidArgument(f"cursor must be a cursor runlens returned (asset_events().attrs['cursor'] or "
                              f"err.cursor), not {cursor!r}")

    kept: list[dict] = []
    try:
        kept, end_cursor, has_more, partitioned = _fetch_records(transport, url, path, kind, partitions, start, end,
                                                                 limit, cursor, page_size, kept)
    except RunlensError as exc:
        # What arrived before the failure: ``err.cursor`` goes on from its oldest event.
        exc.partial = asset_events_frame(kept, key_text)
        raise
    frame = asset_events_frame(kept, key_text)
    frame.attrs.update(asset_key=key_text, kind=kind, endpoint=url, fetched_at=now_iso(), cursor=end_cursor,
                       has_more=has_more, complete=not has_more,
                       partitioned=partitioned if isinstance(partitioned, bool) else None)
    return frame


def fetch_asset_records(transport: Any, url: str, key: Any, *, kind: str = "all", since: datetime | None = None,
                        before: datetime | None = None) -> tuple[list[dict], bool | None]:
    """Every ``assetEventHistory`` record of an asset in ``[since, before)``, as the server pages them
    (newest first), and whether the asset is partitioned: what :class:`runlens.History` stores."""
    path = asset_key_path(key)
    records: list[dict] = []
    records, _cursor, _more, partitioned = _fetch_records(transport, url, path, kind, None, since, before, None,
                                                          None, PAGE_SIZE, records)
    return records, partitioned


def _fetch_records(transport: Any, url: str, path: list[str], kind: str, partitions: list[str] | None,
                   start: datetime | None, end: datetime | None, limit: int | None, cursor: str | None,
                   page_size: int, kept: list[dict]) -> tuple[list[dict], str | None, bool, bool | None]:
    """The records of ``path`` in ``[start, end)`` (at most ``limit``, appended to ``kept`` as they come),
    the cursor after the last kept one, whether more exist and whether the asset is partitioned."""
    key_text = asset_key_text(path)
    variables: dict[str, Any] = {
        "assetKey": {"path": path},
        "selectors": list(KINDS[kind]),
        "partitions": partitions,
        # The server's bounds are strict and in whole milliseconds: ask a second wider,
        # then keep exactly [since, before) here.
        "after": str(int(start.timestamp() * 1000) - 1000) if start is not None else None,
        "before": str(int(end.timestamp() * 1000) + 1000) if end is not None else None,
    }
    low = None if start is None else int(math.ceil(start.timestamp() * 1000))
    high = None if end is None else int(math.ceil(end.timestamp() * 1000))

    def size_for() -> int:
        # One record past the limit tells whether more exist.
        return page_size if limit is None else max(1, min(page_size, limit - len(kept) + 1))

    pages = _event_pages(transport, url, key_text, variables, cursor, size_for)
    # ``cursor``: the position after the last record kept, so far.
    return _collect(pages, kept, cursor, low, high, limit, transport, url, key_text, variables)


def check_query(kind: str, partitions: Any, since: Any, before: Any, limit: Any
                ) -> tuple[list[str] | None, datetime | None, datetime | None]:
    """The arguments :meth:`runlens.Client.asset_events` and :meth:`runlens.History.asset_events` share,
    checked: (partitions, since, before) parsed."""
    if kind not in KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(map(repr, KINDS))}, not {kind!r}")
    partitions = _check_partitions(partitions)
    start = parse_time(since, what="since")
    end = parse_time(before, what="before")
    if start is not None and end is not None and start >= end:
        raise InvalidArgument(f"since ({start.isoformat()}) must be before before ({end.isoformat()})")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgument(f"limit must be a whole number, at least 1, not {limit!r}")
    return partitions, start, end


def _collect(pages: Iterator, kept: list[dict], end_cursor: str | None, low: int | None, high: int | None,
             limit: int | None, transport: Any, url: str, key_text: str,
             variables: dict) -> tuple[list[dict], str | None, bool, bool | None]:
    """Records of ``pages`` within ``[low, high)`` ms, at most ``limit`` (appended to ``kept`` as they come):
    (kept, the cursor after the last kept, more exist, partitioned)."""
    has_more = False
    partitioned = None
    for results, page_start, page_end, page_partitioned in pages:
        partitioned = page_partitioned
        last_kept = None
        for position, record in enumerate(results):
            millis = _millis(record, url, key_text)
            if (high is not None and millis >= high) or (low is not None and millis < low):
                continue
            if limit is not None and len(kept) == limit:
                has_more = True
                break
            kept.append(record)
            last_kept = position
        if has_more:
            if last_kept is not None:
                # The limit cut this page: the cursor after its last kept record comes from
                # re-reading the page's start up to that record (a cursor is a storage id).
                end_cursor = _page_cursor(transport, url, key_text, {**variables, "cursor": page_start},
                                          last_kept + 1) or page_start
            else:
                end_cursor = page_start
            break
        if results:
            end_cursor = page_end
    return kept, end_cursor, has_more, partitioned


def _event_pages(transport: Any, url: str, key_text: str, variables: dict, cursor: str | None,
                 size_for: Any) -> Iterator[tuple[list[dict], str | None, str | None, bool | None]]:
    """``(records, cursor before them, cursor after them, partitioned)`` a page at a time, newest first."""
    fetched = 0
    while True:
        size = size_for()
        try:
            result = transport.execute(queries.ASSET_EVENTS, {**variables, "limit": size, "cursor": cursor})
            asset = _checked_asset(result, url, key_text)
            results, next_cursor = _history(asset, url, key_text)
        except RunlensError as exc:
            resume = f"cursor={cursor!r}" if cursor else "no cursor, from the newest event"
            exc.add_progress(fetched, cursor, resume_with=f"asset_events({key_text!r}, ..., {resume})")
            raise
        definition = asset.get("definition")
        yield results, cursor, next_cursor, definition.get("isPartitioned") if isinstance(definition, dict) else None
        fetched += len(results)
        # Dagster returns exactly ``limit`` records while more exist.
        if len(results) < size or next_cursor is None or next_cursor == cursor:
            return
        cursor = next_cursor


def _history(asset: dict, url: str, key_text: str) -> tuple[list[dict], str | None]:
    history = asset.get("assetEventHistory")
    results = history.get("results") if isinstance(history, dict) else None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ServerError(f"{url} answered a malformed page of asset events for {key_text!r} "
                          "(results must be a list of objects); is something between runlens and Dagster "
                          "rewriting answers?")
    next_cursor = history.get("cursor")
    return results, next_cursor if isinstance(next_cursor, str) else None


def _page_cursor(transport: Any, url: str, key_text: str, variables: dict, size: int) -> str | None:
    """The cursor after the first ``size`` records from ``variables["cursor"]``."""
    result = transport.execute(queries.ASSET_EVENTS, {**variables, "limit": size})
    return _history(_checked_asset(result, url, key_text), url, key_text)[1]


def _checked_asset(data: Any, url: str, key_text: str) -> dict:
    result = data.get("assetOrError") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        raise ServerError(f"{url} answered without a result for asset {key_text!r}")
    raise_python_error(result)
    typename = result.get("__typename")
    if typename == "AssetNotFoundError" or (
        typename == "Asset" and result.get("definition") is None and result.get("latestEventSortKey") is None
    ):
        raise AssetNotFound(f"asset {key_text!r} not found on {url}: no definition and no recorded event; "
                            "check the key ('runlens asset list' lists them) and the URL", asset_key=key_text)
    if typename != "Asset":
        raise ServerError(f"{url} answered {typename} for asset {key_text!r}: {result.get('message', 'no message')}")
    return result


def _millis(record: dict, url: str, key_text: str) -> int:
    try:
        return int(record.get("timestamp"))
    except (TypeError, ValueError):
        raise ServerError(f"{url} answered an asset event of {key_text!r} without a readable timestamp "
                          f"({record.get('timestamp')!r})") from None


def _check_partitions(partitions: Sequence[str] | str | None) -> list[str] | None:
    if partitions is None:
        return None
    if isinstance(partitions, str):
        partitions = [partitions]
    if not isinstance(partitions, (list, tuple, set, frozenset)) or not all(isinstance(p, str) for p in partitions):
        raise InvalidArgument(f"partitions must be a partition key or a list of them, not {partitions!r}")
    keys = [p.strip() for p in partitions if p.strip()]
    if not keys:
        raise InvalidArgument(f"partitions names no partition: {partitions!r}")
    return list(dict.fromkeys(keys))


def _key_path(key: Any, url: str) -> list[str]:
    path = key.get("path") if isinstance(key, dict) else None
    if not isinstance(path, list) or not path or not all(isinstance(p, str) for p in path):
        raise ServerError(f"{url} answered an asset without a readable key ({key!r})")
    return path


# ----------------------------------------------------------------- the events frame


def asset_events_frame(records: list[dict], asset_key: str, decode: Any = None) -> pd.DataFrame:
    """The frame of :meth:`runlens.Client.asset_events` from ``assetEventHistory`` records.

    ``records`` as the server pages them (newest first); rows come out oldest first.
    Base columns :data:`ASSET_EVENT_COLUMNS`, then one ``meta.<label>`` column per
    metadata label (see :func:`flatten_metadata`); ``attrs["metadata_notes"]`` explains
    any column whose values had mixed types. ``decode`` as for :func:`flatten_metadata`.
    """
    records = list(reversed(records))

    def column(name: str) -> list:
        return [r.get(name) if isinstance(r.get(name), str) else None for r in records]

    millis = [int(r["timestamp"]) for r in records]
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(pd.array(millis, dtype="int64"), unit="ms", utc=True)
        .astype(ASSET_EVENT_COLUMNS["timestamp"]),
        "asset_key": pd.array([asset_key] * len(records), dtype="string"),
        "partition": pd.array(column("partition"), dtype="string"),
        "status": pd.Categorical([_STATUS.get(r.get("__typename")) for r in records],
                                 dtype=ASSET_EVENT_COLUMNS["status"]),
        "run_id": pd.array(column("runId"), dtype="string"),
        "step_key": pd.array(column("stepKey"), dtype="string"),
        "event_type": pd.array(column("eventType"), dtype="string"),
        "description": pd.array(column("description"), dtype="string"),
        "failure_reason": pd.array(column("materializationFailureReason"), dtype="string"),
    })
    meta, notes, types = flatten_metadata([r.get("metadataEntries") or [] for r in records], decode)
    if len(meta.columns):
        meta.index = frame.index
        frame = pd.concat([frame, meta], axis=1)
    frame.attrs.update(metadata_notes=notes, metadata_types=types)
    return frame


def flatten_metadata(entries_per_event: list[list[dict]],
                     decode: Any = None) -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    """Metadata entries of each event as typed ``meta.<label>`` columns.

    Parameters
    ----------
    entries_per_event : list of list of dict
        Each event's ``metadataEntries`` (``__typename``, ``label`` and the type's value
        field), one list per row.
    decode : callable, optional
        ``entry -> (kind, value)``; by default the GraphQL entry's own (:func:`entry_value`).
        ``runlens.History`` passes its stored entries' decoder: one flattening for both.

    Returns
    -------
    (DataFrame, dict, dict)
        The columns, in the order labels first appear, one row per event (missing: NA);
        notes on columns whose values had mixed types (``{column: note}``); and each
        column's kind (``int``, ``float``, ``bool``, ``text``, ``timestamp``, ``json``).

    Notes
    -----
    Ints are ``Int64``; floats ``Float64`` (inf kept, nan read as NA); a label that is an int in
    some events and a float in others is ``Float64``; booleans ``boolean``; text,
    markdown, path, notebook, url, run, job and pool entries ``string``; timestamps
    ``datetime64[us, UTC]``; JSON, table and table-schema entries the parsed object. A
    label whose values are of kinds that do not mix (an int here, text there) becomes
    ``string`` (each value as text, JSON as JSON), with a note. Entries of a type
    runlens does not know come through as their JSON text, with a note.

    Examples
    --------
    >>> meta, notes, _ = flatten_metadata([[{"__typename": "IntMetadataEntry", "label": "rows", "intRepr": "3"}],
    ...                                    [{"__typename": "TextMetadataEntry", "label": "rows", "text": "n/a"}]])
    >>> meta["meta.rows"].tolist(), notes["meta.rows"]
    (['3', 'n/a'], 'int in 1 event, text in 1: kept as text')
    """
    values: dict[str, list] = {}
    kinds: dict[str, dict[str, int]] = {}
    notes: dict[str, str] = {}
    n = len(entries_per_event)
    for row, entries in enumerate(entries_per_event):
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("label"), str):
                continue
            name = f"meta.{entry['label']}"
            kind, value = (decode or entry_value)(entry)
            if kind == "unknown":
                notes[name] = f"{entry.get('__typename')} entries are not known to runlens: kept as their JSON text"
                kind = "text"
            cells = values.get(name)
            if cells is None:  # not setdefault: its default, n cells, would be built for every entry
                cells = values[name] = [None] * n
            cells[row] = value
            if value is not None:
                counts = kinds.setdefault(name, {})
                counts[kind] = counts.get(kind, 0) + 1
            else:
                kinds.setdefault(name, {})
    columns: dict[str, Any] = {}
    types: dict[str, str] = {}
    for name, cells in values.items():
        counts = kinds.get(name, {})
        present = set(counts)
        if present <= {"int"}:
            kind = "int" if present else "json"
        elif present == {"int", "float"}:
            kind = "float"
            notes.setdefault(name, _mix_note(counts, "kept as float"))
        elif len(present) == 1:
            kind = present.pop()
        else:
            kind = "text"
            notes[name] = _mix_note(counts, "kept as text")
            cells = [_as_text(v) for v in cells]
        types[name] = kind
        columns[name] = _typed(cells, kind)
    return pd.DataFrame(columns, index=pd.RangeIndex(n)), notes, types


def _mix_note(counts: dict[str, int], what: str) -> str:
    parts = [f"{k} in {c} event{'' if c == 1 else 's'}" for k, c in counts.items()]
    return f"{', '.join(parts)}: {what}"


def _typed(cells: list, kind: str) -> Any:
    if kind == "timestamp":
        seconds = pd.array([None if v is None else v for v in cells], dtype="Float64")
        micros = (seconds * 1_000_000).round().astype("Int64")
        return pd.to_datetime(micros, unit="us", utc=True).astype(_DTYPES["timestamp"])
    if kind == "json":
        return pd.Series(cells, dtype="object")
    if kind == "int":
        try:
            return pd.array(cells, dtype="Int64")
        except (OverflowError, TypeError, ValueError):  # beyond 64 bits: exact as text
            return pd.array([None if v is None else str(v) for v in cells], dtype="string")
    return pd.array(cells, dtype=_DTYPES[kind])


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def entry_value(entry: dict) -> tuple[str, Any]:
    """``(kind, value)`` of one metadata entry; value None when the entry holds none."""
    typename = entry.get("__typename")
    if typename == "IntMetadataEntry":
        return "int", _int(entry.get("intRepr"))
    if typename == "FloatMetadataEntry":
        return "float", _float(entry.get("floatRepr"))
    if typename == "BoolMetadataEntry":
        value = entry.get("boolValue")
        return "bool", value if isinstance(value, bool) else None
    if typename in _TEXT_FIELDS:
        value = entry.get(_TEXT_FIELDS[typename])
        return "text", value if isinstance(value, str) else None
    if typename == "TimestampMetadataEntry":
        value = entry.get("timestamp")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return "timestamp", float(value)
        return "timestamp", None
    if typename == "AssetMetadataEntry":
        key = entry.get("assetKey")
        path = key.get("path") if isinstance(key, dict) else None
        return "text", asset_key_text(path) if isinstance(path, list) else None
    if typename == "PythonArtifactMetadataEntry":
        return "text", f"{entry.get('module')}.{entry.get('name')}"
    if typename == "JsonMetadataEntry":
        try:
            return "json", json.loads(entry.get("jsonString"))
        except (TypeError, ValueError):
            return "text", entry.get("jsonString") if isinstance(entry.get("jsonString"), str) else None
    if typename == "TableMetadataEntry":
        table = entry.get("table")
        records = table.get("records") if isinstance(table, dict) else None
        try:
            return "json", [json.loads(r) for r in records] if isinstance(records, list) else None
        except (TypeError, ValueError):
            return "json", records
    if typename == "TableSchemaMetadataEntry":
        schema = entry.get("schema")
        return "json", schema.get("columns") if isinstance(schema, dict) else None
    if typename == "NullMetadataEntry":
        return "json", None
    rest = {k: v for k, v in entry.items() if k not in ("__typename", "label")}
    return "unknown", json.dumps(rest, ensure_ascii=False) if rest else None


def _int(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _float(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
