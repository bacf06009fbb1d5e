"""Raw GraphQL records → typed pandas DataFrames. Every column and dtype is defined here.

Events frame (one row per event, in storage order — the order of the run's log, which
is *not* timestamp order when steps run in parallel):

=================  ==========================  =============================================
column             dtype                       meaning
=================  ==========================  =============================================
seq                int64                       0-based position in the run's log; filters and
                                               slices keep the original values
run_id             category                    the run
timestamp          datetime64[ms, UTC]         when the event was stored (ms, truncated)
level              category (ordered)          DEBUG < INFO < WARNING < ERROR < CRITICAL
event_type         category                    a ``DagsterEventType`` name; NA for log lines
step_key           category                    e.g. ``process[emea]``; NA for run-level events
message            string                      may be empty, multi-line, any unicode
kind               category                    the GraphQL ``__typename``
error_class        category                    error events: the Python class raised
error_message      string                      error events: its message
error_cause        string                      error events: the cause chain, ``Class: msg``
                                               per link, joined by `` <- ``
error_stack        string                      error events: the stack (server paths); for a
                                               STEP_FAILURE, Dagster's wrapper around the user's
                                               error
error_cause_stack  string                      error events: the stack of the error's ``cause``;
                                               for a STEP_FAILURE, where the user's code raised
                                               (file and line)
asset_key          string                      materializations/observations: ``a/b/c``
=================  ==========================  =============================================

``df.attrs`` of a fetched frame (:meth:`runlens.Client.events`):

* ``run_ids``, ``endpoint``, ``fetched_at`` (UTC ISO);
* ``filtered``: whether a type, step or level filter thinned the rows;
* ``has_more``: True when a ``limit`` cut the result (at least one more matching event
  exists); ``complete`` is its opposite: every matching event of the log is here;
* ``cursor``: where the log was read up to, to resume or poll from;
* from :meth:`runlens.Client.events_many`, also ``skipped`` (run id → why it was left
  out) and ``cursors`` (run id → cursor).

``pd.concat`` loses categories and ``attrs``: :func:`concat_events` keeps both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import InvalidArgument
from .event_types import EVENT_TYPES
from .text import LONE_SURROGATE, replace_lone_surrogates
from .vocabulary import LEVELS, RUN_STATUSES, STEP_STATUSES

LEVEL_DTYPE = pd.CategoricalDtype(list(LEVELS), ordered=True)
STRING = pd.StringDtype()

EVENT_COLUMNS: dict[str, Any] = {
    "seq": "int64",
    "run_id": "category",
    "timestamp": "datetime64[ms, UTC]",
    "level": LEVEL_DTYPE,
    "event_type": "category",
    "step_key": "category",
    "message": STRING,
    "kind": "category",
    "error_class": "category",
    "error_message": STRING,
    "error_cause": STRING,
    "error_stack": STRING,
    "error_cause_stack": STRING,
    "asset_key": STRING,
}


def _categorical(values: Sequence[Any], known: Sequence[str] = ()) -> pd.Categorical:
    """A categorical whose categories are ``known`` first, then any other values seen.

    Fixed categories keep dtypes equal across runs and pages (so concatenation stays
    categorical); an unknown value is added, never turned into NA. Categories are
    always ``str``: a number, list or dict where a name belongs (a broken server or
    proxy) becomes its text rather than failing the page.
    """
    values = _label_values(list(values))
    seen = set(values)
    known_set = set(known)
    extra = sorted(v for v in seen if v is not None and v not in known_set)
    return pd.Categorical(values, categories=list(known) + extra)


def _label_values(values: list) -> list:
    """``values`` as category names: clean text or None (see :func:`_label`).

    Only the distinct values are checked, so well-formed pages pay almost nothing.
    """
    try:
        seen = set(values)
    except TypeError:  # an unhashable list or dict
        return [_label(v) for v in values]
    if any(v is not None and not (isinstance(v, str) and _clean(v)) for v in seen):
        return [_label(v) for v in values]
    return values


def _clean(text: str) -> bool:
    return text.isascii() or LONE_SURROGATE.search(text) is None


def _label(value: Any) -> str | None:
    """A value as category text: None and NaN stay missing, anything else becomes clean text."""
    if value is None or isinstance(value, float) and value != value:
        return None
    return _text(value)


# datetime64[ms] spans far more, but pandas converts through nanoseconds: keep to the
# years 1678-2261 it can represent, and turn anything outside into NaT.
_MIN_MS, _MAX_MS = -9_223_372_036_854, 9_223_372_036_854


def _millis(raw: list[Any]) -> np.ndarray:
    """Epoch milliseconds (ints, or the API's strings of digits) as ``datetime64[ms]``."""
    try:
        millis = np.array(raw, dtype=np.int64)
        if millis.ndim != 1 or len(millis) and (millis.min() < _MIN_MS or millis.max() > _MAX_MS):
            raise OverflowError  # lists where numbers belong, or out of range
        return millis.view("datetime64[ms]")
    except (TypeError, ValueError, OverflowError):
        # A missing or malformed timestamp becomes NaT rather than failing the page.
        millis = pd.to_numeric(pd.Series([_number(v) for v in raw], dtype=object),
                               errors="coerce").to_numpy(dtype="float64")
        millis = np.where((millis >= _MIN_MS) & (millis <= _MAX_MS), millis, np.nan)
    return pd.to_datetime(millis, unit="ms").as_unit("ms").to_numpy()


def _number(value: Any) -> Any:
    # to_numeric coerces bad strings to NaN, but raises on lists, dicts and huge ints.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, int) and not _MIN_MS <= value <= _MAX_MS:
        return None
    return value


def _error_fields(error: dict | None) -> tuple[Any, Any, Any, Any, Any]:
    """An event's ``error`` as (class, message, cause chain, stack, cause's stack).

    A STEP_FAILURE's error is Dagster's wrapper (``DagsterExecutionStepExecutionError``);
    its ``cause`` is what the user's code raised, and its stack says where.
    """
    if not isinstance(error, dict):
        return None, None, None, None, None
    chain = []
    cause = error.get("cause")
    while isinstance(cause, dict):
        name, text = cause.get("className") or "Error", str(cause.get("message") or "").strip()
        # Dagster's messages usually start with the class name already.
        chain.append(text if text.startswith(f"{name}:") else f"{name}: {text}")
        cause = cause.get("cause")
    cause = error.get("cause")
    return (
        error.get("className"),
        _label(error.get("message")),
        _label(" <- ".join(chain) or None),
        _stack_text(error.get("stack")),
        _stack_text(cause.get("stack")) if isinstance(cause, dict) else None,
    )


def _stack_text(stack: Any) -> str | None:
    """A ``PythonError.stack`` (a list of lines) as one text; None when there is none."""
    if isinstance(stack, list):
        stack = "".join(_text(line) for line in stack if line is not None)
    return _label(stack)


def _asset_key(key: Any) -> Any:
    if isinstance(key, dict) and isinstance(key.get("path"), list):
        return _text("/".join(_text(part) for part in key["path"]))
    return None


def events_frame(records: Sequence[dict], run_id: str, *, start_seq: int = 0) -> pd.DataFrame:
    """Build the typed events frame of one run from raw ``logsForRun`` event records.

    Parameters
    ----------
    records : sequence of dict
        Events as the GraphQL API returns them (``message``, ``timestamp``, ``level``,
        ``stepKey``, ``eventType``, ``__typename``, optionally ``error``, ``assetKey``).
    run_id : str
        The run they belong to.
    start_seq : int
        The position of the first record in the run's log.

    Returns
    -------
    pandas.DataFrame
        Columns and dtypes as in :data:`EVENT_COLUMNS`, even when ``records`` is empty.
    """
    return EventColumns(run_id, start_seq=start_seq).add(records).frame()


class EventColumns:
    """Event records → Arrow column chunks page by page; the typed frame built once.

    ``Client.events`` gets each page as columns from the thread that fetched it, appends
    them with :meth:`extend`, and builds one frame at the end. Each page's values go into
    Arrow arrays at once, so the millions of short-lived Python strings a decoded page holds are freed
    while still in cache instead of piling up until the end (that alone was 0.4 s of
    1,000,000 events, ``make bench`` #3). A frame per page plus their concatenation
    would cost far more: pandas' fixed cost per column and page (about 4 ms a page of
    1000) and unioning categories across a thousand pages. :func:`events_frame` is
    the same in one call.

    Pages come in two ways: :meth:`add` takes raw records (dicts, whatever a server
    sent), :meth:`add_columns` takes column lists, checked already if ``clean`` (see
    :mod:`runlens.event_decoder`).
    """

    def __init__(self, run_id: str, *, start_seq: int = 0) -> None:
        self.run_id = run_id
        self.start_seq = start_seq
        self._n = 0
        # One chunk per page: datetime64[ms] arrays for timestamps, Arrow string
        # arrays for the rest.
        self._timestamp: list[np.ndarray] = []
        self._level: list[pa.Array] = []
        self._event_type: list[pa.Array] = []
        self._step_key: list[pa.Array] = []
        self._message: list[pa.Array] = []
        self._kind: list[pa.Array] = []
        self._errors: list[tuple[int, tuple]] = []  # (row, _error_fields(...)): rare
        self._assets: list[tuple[int, Any]] = []  # (row, asset key): rare

    def __len__(self) -> int:
        return self._n

    def _chunks(self) -> tuple[list, ...]:
        return self._timestamp, self._level, self._event_type, self._step_key, self._message, self._kind

    def add(self, records: Sequence[dict]) -> EventColumns:
        """Append a page of raw event records (in storage order); returns self."""
        get = dict.get
        try:
            timestamp = [get(r, "timestamp") for r in records]  # TypeError on anything but dicts
        except TypeError:
            raise InvalidArgument("events must be a sequence of event records (dicts, as logsForRun sends "
                                  f"them), not {type(records).__name__} of other things") from None
        return self.add_columns(
            timestamp=timestamp,
            level=[get(r, "level") for r in records],
            event_type=[get(r, "eventType") for r in records],
            step_key=[get(r, "stepKey") for r in records],
            message=[get(r, "message") for r in records],
            kind=[get(r, "__typename") for r in records],
            # One pass finds the few records with an error or an asset key.
            extras=[(i, get(r, "error"), get(r, "assetKey"))
                    for i, r in enumerate(records) if "error" in r or "assetKey" in r],
        )

    def add_columns(self, *, timestamp: list, level: list, event_type: list, step_key: list, message: list,
                    kind: list, extras: Iterable[tuple[int, Any, Any]] = (), clean: bool = False) -> EventColumns:
        """Append a page given as column lists of equal length; returns self.

        Parameters
        ----------
        timestamp, level, event_type, step_key, message, kind : list
            One value per event, as the API sends them.
        extras : iterable of (int, error, asset key)
            The raw ``error`` and ``assetKey`` of the few events that have one, by
            position in this page.
        clean : bool
            True promises every value is a ``str`` (None where the column allows it)
            without lone surrogates, and skips the checks that turn anything else
            into text.
        """
        n = len(message)
        if not len(timestamp) == len(level) == len(event_type) == len(step_key) == len(kind) == n:
            raise InvalidArgument("every column of a page must have one value per event")
        labels = partial(pa.array, type=_LABEL) if clean else _labels
        offset = self._n
        self._timestamp.append(_millis(timestamp))
        self._level.append(labels(level))
        self._event_type.append(labels(event_type))
        self._step_key.append(labels(step_key))
        self._message.append(pa.array(message if clean else _texts(message), type=_TEXT))
        self._kind.append(labels(kind))
        self._n += n
        for i, error, asset in extras:
            if error:
                self._errors.append((offset + i, _error_fields(error)))
            if asset is not None:
                self._assets.append((offset + i, _asset_key(asset)))
        return self

    def extend(self, other: EventColumns, rows: int | None = None) -> EventColumns:
        """Append the first ``rows`` events (default all) of ``other``: a later page of the same run."""
        n = len(other) if rows is None else max(0, min(rows, len(other)))
        offset = self._n
        for mine, theirs in zip(self._chunks(), other._chunks(), strict=True):
            mine += _head(theirs, n)
        self._errors += [(offset + i, f) for i, f in other._errors if i < n]
        self._assets += [(offset + i, a) for i, a in other._assets if i < n]
        self._n += n
        return self

    def frame(self) -> pd.DataFrame:
        """The typed frame of every event added so far."""
        n = self._n
        rows = [i for i, _ in self._errors]
        fields = list(zip(*(f for _, f in self._errors))) or [()] * 5
        millis = np.concatenate(self._timestamp) if self._timestamp else np.empty(0, dtype="datetime64[ms]")
        return pd.DataFrame(
            {
                "seq": np.arange(self.start_seq, self.start_seq + n, dtype=np.int64),
                "run_id": pd.Categorical.from_codes(np.zeros(n, dtype=np.int8),
                                                    dtype=pd.CategoricalDtype([self.run_id])),
                "timestamp": pd.DatetimeIndex(millis).tz_localize("UTC"),
                "level": _encoded(_concat(self._level, _LABEL), LEVELS, ordered=True),
                "event_type": _encoded(_concat(self._event_type, _LABEL), EVENT_TYPES),
                "step_key": _encoded(_concat(self._step_key, _LABEL)),
                "message": _string_array(_concat(self._message, _TEXT)),
                "kind": _encoded(_concat(self._kind, _LABEL)),
                "error_class": _sparse_categorical(n, rows, fields[0]),
                "error_message": _sparse_strings(n, rows, fields[1]),
                "error_cause": _sparse_strings(n, rows, fields[2]),
                "error_stack": _sparse_strings(n, rows, fields[3]),
                "error_cause_stack": _sparse_strings(n, rows, fields[4]),
                "asset_key": _sparse_strings(n, [i for i, _ in self._assets], [a for _, a in self._assets]),
            }
        )


# Arrow types of the chunks: short labels (categories to be), and text in pandas' own
# storage type for string columns (large_string: no conversion when wrapped).
_LABEL = pa.string()
_TEXT = pa.large_string()


def _labels(values: list) -> pa.Array:
    """A page's category names as Arrow strings: clean text or null."""
    return pa.array(_label_values(values), type=_LABEL)


def _head(chunks: list, n: int) -> list:
    """The chunks that hold the first ``n`` values, the last one cut (Arrow and numpy slice alike)."""
    out = []
    for chunk in chunks:
        if n <= 0:
            break
        out.append(chunk if len(chunk) <= n else chunk[:n])
        n -= len(chunk)
    return out


def _concat(chunks: list[pa.Array], kind: pa.DataType) -> pa.Array:
    if len(chunks) == 1:
        return chunks[0]
    return pa.concat_arrays(chunks) if chunks else pa.array([], type=kind)


def _texts(values: list) -> list[str]:
    """``[_text(v) for v in values]``, without a call per value when all are clean text."""
    try:
        joined = "".join(values)  # TypeError on None or a non-string
    except TypeError:
        return [_text(v) for v in values]
    if joined.isascii():
        return values
    # A lone surrogate in any value is one in the joined text (Python never pairs
    # them), and strict UTF-8 encoding fails on exactly those: faster than the regex.
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return [_text(v) for v in values]
    return values


def _encoded(column: pa.Array, known: Sequence[str] = (), *, ordered: bool = False) -> pd.Categorical:
    """A categorical of Arrow strings: ``known`` categories first, then the others sorted.

    Arrow's hash table codes a million values in about 10 ms; only the few distinct
    values are then placed among the categories.
    """
    encoded = column.dictionary_encode()  # a dictionary array is taken as it is
    indices = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy()
    uniques: list = encoded.dictionary.to_pylist()
    if pa.types.is_dictionary(column.type):
        # A read's dictionary may hold values no row uses: they are no categories.
        used = np.zeros(len(uniques) + 1, dtype=bool)
        used[indices] = True
        uniques = [u if used[i] else None for i, u in enumerate(uniques)]
    known_set = set(known)
    categories = list(known) + sorted({u for u in uniques if u is not None and u not in known_set})
    position = {c: i for i, c in enumerate(categories)}
    remap = np.array([position.get(u, -1) for u in uniques] + [-1], dtype=np.int64)
    codes = remap[indices]
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories, ordered=ordered))


def _string_array(column: pa.Array) -> Any:
    """An Arrow string array as a column of :data:`STRING` dtype."""
    if STRING.storage == "pyarrow":
        return pd.arrays.ArrowStringArray(column)  # no copy for large_string
    return pd.array(column.to_numpy(zero_copy_only=False), dtype=STRING)


def _sparse_categorical(n: int, rows: list[int], values: Sequence[Any]) -> pd.Categorical:
    """``_categorical`` of ``n`` values, None but ``values`` at ``rows``."""
    values = _label_values(list(values))
    categories = sorted({v for v in values if v is not None})
    position = {c: i for i, c in enumerate(categories)}
    codes = np.full(n, -1, dtype=np.int64)
    codes[np.array(rows, dtype=np.intp)] = [position.get(v, -1) for v in values]
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories))


def _sparse_strings(n: int, rows: list[int], values: Sequence[Any]) -> Any:
    """A :data:`STRING` column of ``n`` missing values but ``values`` at ``rows``."""
    if not rows:
        return _string_array(pa.nulls(n, type=_TEXT))
    where = np.full(n, -1, dtype=np.int64)
    where[np.array(rows, dtype=np.intp)] = np.arange(len(rows))
    return _string_array(pa.array(list(values), type=_TEXT).take(pa.array(where, mask=where < 0)))


def _text(value: Any) -> str:
    # Messages are str, but a broken server or proxy can hand over anything; lone
    # surrogates (JSON's "\\ud800") become U+FFFD so the frame always holds valid text.
    if isinstance(value, str):
        return replace_lone_surrogates(value)
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return _text(json.dumps(value, ensure_ascii=False, default=str))
    return _text(str(value))


def empty_events_frame(run_id: str | None = None) -> pd.DataFrame:
    """An events frame with no rows but every column and dtype."""
    frame = events_frame([], run_id or "")
    if run_id is None:
        frame["run_id"] = frame["run_id"].cat.set_categories([])
    return frame


def concat_events(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate events frames (of one run or several), keeping dtypes and ``attrs``.

    ``pd.concat`` turns a categorical column into ``object`` as soon as two frames'
    categories differ, and drops ``attrs`` unless they are all equal. This unions the
    categories (Dagster's event types and levels first, in their order, then the others
    sorted, as in a frame built in one go), restores
    every column's documented dtype (so frames that went through a plain
    ``pd.concat``, Parquet or CSV and lost their categories are accepted too), and
    merges ``attrs``:

    ============  ======================================================================
    key           merged as
    ============  ======================================================================
    run_ids       every run, in order of first appearance (from the rows too)
    complete      True only if every frame was complete (a frame without it counts True)
    has_more      True if any frame's limit cut it
    filtered      True if any frame was filtered
    cursors       each run's last cursor, by run id
    cursor        dropped: one per run, see ``cursors``
    skipped       the union of the skipped run ids and their reasons
    fetched_at    the earliest: every run's rows are at least that fresh
    others        kept when every frame that has the key agrees (``endpoint``, ...)
    ============  ======================================================================

    Frames of a single run are taken as successive fetches of its log (a ``limit``,
    then ``after_cursor``; the batches of :meth:`~runlens.Client.follow`): the last
    frame's value wins for every key (``cursor``, ``complete``, ``has_more``,
    ``fetched_at``, ...), ``filtered`` and ``skipped`` merge as above.

    Parameters
    ----------
    frames : iterable of pandas.DataFrame
        Events frames (:meth:`runlens.Client.events`, :func:`events_frame`); columns
        beyond the documented ones are kept after them.

    Returns
    -------
    pandas.DataFrame
        A new index from 0; rows in the order given.

    Raises
    ------
    InvalidArgument
        If a frame is not an events frame.

    Examples
    --------
    >>> both = concat_events([client.events(a), client.events(b)])    # doctest: +SKIP
    >>> both.attrs["run_ids"]                                           # doctest: +SKIP
    ['a', 'b']
    """
    frames = list(frames)
    for frame in frames:
        require_kind(frame, "events", func="concat_events")
    if not frames:
        return empty_events_frame()
    extra = list(dict.fromkeys(c for f in frames for c in f.columns if c not in EVENT_COLUMNS))
    # Built column by column from the frames' arrays, once: a pd.concat of hundreds of
    # frames pays pandas's per-frame, per-column overhead (2.6-3 s for 450 runs) and
    # leaves every string column in hundreds of Arrow chunks, whose row take is ten times
    # slower than one chunk's (filter_events of a frame of 450 runs).
    parts = [_event_arrays(f, extra) for f in frames]
    out: dict[str, Any] = {}
    for column, dtype in EVENT_COLUMNS.items():
        arrays = [part[column] for part in parts]
        if isinstance(dtype, pd.CategoricalDtype) or dtype == "category":
            known = list(dtype.categories) if isinstance(dtype, pd.CategoricalDtype) else _KNOWN.get(column, [])
            out[column] = _union_categoricals(arrays, known, ordered=getattr(dtype, "ordered", False),
                                              sort=column != "run_id")
        else:
            out[column] = _concat_arrays(arrays)
    for column in extra:
        out[column] = pd.concat([pd.Series(part[column]) for part in parts], ignore_index=True).array
    n = sum(len(f) for f in frames)
    result = pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)
    result.attrs = _merged_attrs(frames, [_present(part["run_id"]) for part in parts])
    return result


def _present(values: pd.Categorical) -> list[str]:
    """The categories a categorical's rows hold, in order of first appearance."""
    codes = values.codes
    present = pd.unique(codes[codes >= 0]) if (codes < 0).any() else pd.unique(codes)
    return [str(c) for c in values.categories.take(present).tolist()]


def _union_categoricals(arrays: list[pd.Categorical], known: Sequence[str], *, ordered: bool,
                        sort: bool = True) -> pd.Categorical:
    """One categorical of ``arrays``: categories ``known`` first, then the others sorted.

    As a frame built in one go has them, so the batches of a follow concatenate to exactly
    the frame of one fetch. With ``sort=False`` (run ids) the others keep their order of
    appearance: the runs in the order they were joined.
    """
    seen = dict.fromkeys(known)
    names = []
    for values in arrays:
        listed = values.categories.tolist()
        names.append(listed)
        seen.update(dict.fromkeys(listed))
    known_set = set(known)
    others = [name for name in seen if name not in known_set]
    categories = list(known) + (sorted(others) if sort else others)
    position = {name: i for i, name in enumerate(categories)}
    codes = []
    for values, listed in zip(arrays, names, strict=True):
        if listed == categories[: len(listed)]:
            codes.append(values.codes)
        else:  # -1 (missing) indexes the -1 appended last
            codes.append(np.array([position[name] for name in listed] + [-1], dtype=np.int64)[values.codes])
    joined = np.concatenate(codes) if len(codes) > 1 else codes[0]
    return pd.Categorical.from_codes(joined, dtype=pd.CategoricalDtype(categories, ordered=ordered), validate=False)


def _concat_arrays(arrays: list[Any]) -> Any:
    """Arrays of one dtype as one; Arrow strings as one Arrow chunk."""
    if len(arrays) == 1:
        values = arrays[0]
    else:
        values = type(arrays[0])._concat_same_type(arrays)
    if isinstance(values, pd.arrays.ArrowStringArray):
        chunked = values.__arrow_array__()
        if isinstance(chunked, pa.ChunkedArray) and chunked.num_chunks > 1:
            try:
                values = type(values)(chunked.combine_chunks())
            except (pa.ArrowInvalid, pa.ArrowCapacityError):  # over 2 GiB of text in a 32-bit-offset column
                pass
    return values


# Categories every events frame starts with, in this order.
_KNOWN: dict[str, list[str]] = {"event_type": list(EVENT_TYPES)}


def _event_arrays(frame: pd.DataFrame, extra: list[str]) -> dict[str, Any]:
    """``frame``'s columns as arrays of their documented dtypes (converted where they are not: frames
    that went through a plain ``pd.concat``, Parquet or CSV); missing extra columns as NA."""
    out = {}
    n = len(frame)
    # Columns read from an attrs-less view: pandas deep-copies a frame's attrs into every
    # column taken from it (450 runs' ids and cursors, 15 times per frame).
    frame = pd.DataFrame(frame, copy=False)
    for column, dtype in EVENT_COLUMNS.items():
        categorical = isinstance(dtype, pd.CategoricalDtype) or dtype == "category"
        if column not in frame.columns:  # error_cause_stack, in frames of older versions
            out[column] = (pd.Categorical.from_codes(np.full(n, -1), categories=[]) if categorical
                           else pd.array([None] * n, dtype=STRING))
            continue
        values = frame[column]
        kind = values.dtype
        try:
            if categorical:
                if not isinstance(kind, pd.CategoricalDtype):
                    values = pd.Series(_categorical(values.astype(object).where(values.notna(), None).tolist()),
                                       index=values.index)
            elif column == "timestamp":
                if not (isinstance(kind, pd.DatetimeTZDtype) and kind.unit == "ms" and str(kind.tz) == "UTC"):
                    values = pd.to_datetime(values, utc=True).dt.as_unit("ms")
            elif kind != dtype:
                values = values.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"concat_events(): the column {column!r} cannot be read as {dtype} ({exc})") from None
        out[column] = values.array
    for column in extra:
        out[column] = frame[column].array if column in frame.columns else pd.Series([None] * n).array
    return out


def _merged_attrs(frames: list[pd.DataFrame], rows: list[list[str]]) -> dict[str, Any]:
    """The ``attrs`` of frames concatenated (see :func:`concat_events`); ``rows``: each frame's run ids."""
    all_attrs = [f.attrs for f in frames]
    run_ids = list(dict.fromkeys(
        r for f, present in zip(frames, rows, strict=True) for r in [*(f.attrs.get("run_ids") or []), *present]))
    if len(run_ids) == 1:
        # Frames of one run are successive fetches (a limit, then after_cursor; polls):
        # the last one says how far the log was read.
        merged: dict[str, Any] = {}
        for attrs in all_attrs:
            merged.update(attrs)
    else:
        merged = {}
        for key in dict.fromkeys(k for a in all_attrs for k in a):
            values = [a[key] for a in all_attrs if key in a]
            if all(_same(v, values[0]) for v in values):
                merged[key] = values[0]
        if any("complete" in a for a in all_attrs):
            merged["complete"] = all(a.get("complete", True) is not False for a in all_attrs)
        if any("has_more" in a for a in all_attrs):
            merged["has_more"] = any(a.get("has_more") is True for a in all_attrs)
        times = [a["fetched_at"] for a in all_attrs if isinstance(a.get("fetched_at"), str)]
        if times:
            merged["fetched_at"] = min(times)  # every run's rows are at least that fresh
        merged.pop("cursor", None)  # one cursor per run: see "cursors"
    merged["run_ids"] = run_ids
    if any("filtered" in a for a in all_attrs):
        merged["filtered"] = any(a.get("filtered") is True for a in all_attrs)
    cursors: dict[str, Any] = {}
    for attrs in all_attrs:
        cursors.update(attrs.get("cursors") or {})
        ids = attrs.get("run_ids") or []
        if attrs.get("cursor") is not None and len(ids) == 1:
            cursors[ids[0]] = attrs["cursor"]
    if cursors:
        merged["cursors"] = cursors
    if any("skipped" in a for a in all_attrs):
        merged["skipped"] = {k: v for a in all_attrs for k, v in (a.get("skipped") or {}).items()}
    return merged


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays compare element-wise
        return a is b


RUN_COLUMNS = ["run_id", "job_name", "status", "created", "started", "ended", "duration"]
RUN_STATUS_DTYPE = pd.CategoricalDtype(list(RUN_STATUSES))


_MAX_SECONDS = 9_223_372_036.0  # the nanosecond range pandas converts through


def _float_seconds(value: Any) -> float:
    """Epoch seconds as a float; NaN for anything that is not a usable time."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return np.nan
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return np.nan
    return seconds if -_MAX_SECONDS <= seconds <= _MAX_SECONDS else np.nan


def _seconds(values: Sequence[Any]) -> pd.Series:
    try:
        floats = pd.Series(values, dtype="float64")
        if not floats.abs().le(_MAX_SECONDS).where(floats.notna(), True).all():
            raise OverflowError
    except (TypeError, ValueError, OverflowError):
        floats = pd.Series([_float_seconds(v) for v in values], dtype="float64")
    return pd.to_datetime(floats, unit="s", utc=True).dt.as_unit("ms")


def runs_frame(records: Sequence[dict]) -> pd.DataFrame:
    """Build the runs frame from raw ``runsOrError`` results (newest first).

    Columns: ``run_id`` (string), ``job_name`` (category), ``status`` (category of the ten
    run statuses, plus any unknown one), ``created``, ``started``, ``ended``
    (datetime64[ms, UTC]; ``started`` is NaT for a run that never started, even where Dagster
    reports its end time as its start), ``duration`` (timedelta; NA unless started and ended), and one
    ``tags.<key>`` string column per tag key seen.
    """
    statuses = [r.get("status") for r in records]
    frame = pd.DataFrame(
        {
            "run_id": pd.array([_label(r.get("id") or r.get("runId")) for r in records], dtype=STRING),
            "job_name": _categorical([r.get("jobName") or r.get("pipelineName") for r in records]),
            "status": _categorical(statuses, list(RUN_STATUS_DTYPE.categories)),
            "created": _seconds([r.get("creationTime") for r in records]),
            "started": _seconds([r.get("startTime") for r in records]),
            "ended": _seconds([r.get("endTime") for r in records]),
        }
    )
    # A run canceled while queued has startTime == endTime though it never started (as
    # models.Run): no start and no duration, not 0 s.
    frame["started"] = frame["started"].where(frame["started"] != frame["ended"])
    frame["duration"] = frame["ended"] - frame["started"]
    tag_rows = [_tag_dict(r.get("tags")) for r in records]
    keys = sorted({k for row in tag_rows for k in row})
    for key in keys:
        frame[f"tags.{key}"] = pd.array([row.get(key) for row in tag_rows], dtype=STRING)
    return frame


def _tag_dict(tags: Any) -> dict[str, str | None]:
    # [{key, value}] as Dagster sends them; malformed entries are skipped, not fatal.
    if not isinstance(tags, list):
        return {}
    return {_text(t["key"]): _label(t.get("value")) for t in tags if isinstance(t, dict) and t.get("key") is not None}


STEP_STATS_COLUMNS = ["run_id", "step_key", "status", "start", "end", "duration", "attempts",
                      "attempt_spans", "markers"]


def step_stats_frame(records: Sequence[tuple[str, dict]]) -> pd.DataFrame:
    """Build a frame from ``(run_id, stepStats record)`` pairs: Dagster's own step numbers.

    Columns: ``run_id``, ``step_key`` (category), ``status`` (category), ``start``,
    ``end`` (datetime64[ms, UTC]), ``duration`` (timedelta), ``attempts`` (int64),
    ``attempt_spans`` and ``markers`` (lists of ``(start, end)`` UTC Timestamp pairs, end
    None while running).
    """

    def spans(items: list | None) -> list[tuple]:
        return [(_ts(s.get("startTime")), _ts(s.get("endTime"))) for s in (items or [])]

    frame = pd.DataFrame(
        {
            "run_id": _categorical([run_id for run_id, _ in records]),
            "step_key": _categorical([r.get("stepKey") for _, r in records]),
            "status": _categorical([r.get("status") for _, r in records]),
            "start": _seconds([r.get("startTime") for _, r in records]),
            "end": _seconds([r.get("endTime") for _, r in records]),
            "attempts": pd.array([len(r.get("attempts") or []) for _, r in records], dtype="int64"),
            "attempt_spans": pd.Series([spans(r.get("attempts")) for _, r in records], dtype=object),
            "markers": pd.Series([spans(r.get("markers")) for _, r in records], dtype=object),
        }
    )
    frame.insert(5, "duration", frame["end"] - frame["start"])
    return frame


def _ts(value: Any):
    seconds = _float_seconds(value)
    return None if seconds != seconds else pd.Timestamp(seconds, unit="s", tz="UTC")


# ----------------------------------------------------------------------- step frames

STEP_STATUS_DTYPE = pd.CategoricalDtype(list(STEP_STATUSES))

#: The columns of :func:`runlens.step_durations`, in order, with their dtypes.
STEP_COLUMNS: dict[str, Any] = {
    "run_id": "category",
    "step_key": "category",
    "status": STEP_STATUS_DTYPE,
    "start": "datetime64[ms, UTC]",
    "end": "datetime64[ms, UTC]",
    "duration": "timedelta64[ms]",
    "attempts": "int64",
    "attempt_time": "timedelta64[ms]",
    "retry_wait": "timedelta64[ms]",
    "worker_startup": "timedelta64[ms]",
    "resource_init": "timedelta64[ms]",
    "input_loading": "timedelta64[ms]",
    "output_handling": "timedelta64[ms]",
    "error_class": "category",
    "error_message": STRING,
    "last_event": "datetime64[ms, UTC]",
    "attempt_spans": object,
    "worker_spans": object,
}

#: The columns of :func:`runlens.duration_trend` (``job_name``, ``run_status`` and
#: ``created`` follow when a runs frame was given).
TREND_COLUMNS = ["run_id", "step_key", "status", "start", "run_start", "duration"]


# ------------------------------------------------------------------------ frame kinds

#: What each kind of frame is called in messages, and where a user gets one.
FRAME_KINDS: dict[str, str] = {
    "events": "an events frame (Client.events, runlens.events)",
    "steps": "a step_durations frame (runlens.step_durations)",
    "step_stats": "a step_stats frame (Client.step_stats: Dagster's own stepStats)",
    "runs": "a runs frame (Client.runs, runlens.runs)",
    "trend": "a duration_trend frame (runlens.duration_trend)",
}

# Checked in this order: the first whose columns are all present wins. A steps frame
# holds every step_stats column, so "steps" comes first.
_KIND_COLUMNS: dict[str, frozenset[str]] = {
    "events": frozenset(c for c in EVENT_COLUMNS if c != "error_cause_stack"),
    "steps": frozenset(STEP_COLUMNS),
    "step_stats": frozenset(STEP_STATS_COLUMNS),
    "runs": frozenset(RUN_COLUMNS),
    "trend": frozenset(TREND_COLUMNS),
}


def frame_kind(frame: Any) -> str | None:
    """What kind of runlens frame `frame` is, from its full column set.

    The columns decide, not a tag in ``attrs``: ``pd.concat``, DuckDB, Parquet and Dask
    keep columns but drop ``attrs``.

    Returns
    -------
    str or None
        ``"events"``, ``"steps"``, ``"step_stats"``, ``"runs"``, ``"trend"``, or None for
        anything else (including a frame with some of a kind's columns missing).

    Examples
    --------
    >>> frame_kind(empty_events_frame())
    'events'
    >>> frame_kind(pd.DataFrame({"x": [1]})) is None
    True
    """
    if not isinstance(frame, pd.DataFrame):
        return None
    columns = set(frame.columns)
    for kind, needed in _KIND_COLUMNS.items():
        if needed <= columns:
            return kind
    return None


def require_kind(frame: Any, *kinds: str, func: str) -> str:
    """Return `frame`'s kind if it is one of `kinds`; raise :class:`InvalidArgument` otherwise.

    Parameters
    ----------
    frame : object
        What the user passed.
    *kinds : str
        The kinds `func` accepts (keys of :data:`FRAME_KINDS`).
    func : str
        The function's name, for the message.

    Raises
    ------
    InvalidArgument
        Naming what `func` expected and what it got (with the missing columns when the
        frame is close to an accepted kind).
    """
    kind = frame_kind(frame)
    if kind in kinds:
        return kind  # type: ignore[return-value]
    expected = " or ".join(FRAME_KINDS[k] for k in kinds)
    if kind is not None:
        got = FRAME_KINDS[kind]
    elif isinstance(frame, pd.DataFrame):
        columns = set(frame.columns)
        nearest = min(kinds, key=lambda k: len(_KIND_COLUMNS[k] - columns))
        missing = sorted(_KIND_COLUMNS[nearest] - columns)
        got = f"a frame without the column(s) {', '.join(missing)}"
    else:
        got = f"a {type(frame).__name__}"
    raise InvalidArgument(f"{func}() expects {expected}; got {got}.")


from . import accessor as _accessor  # noqa: E402,F401  registers df.runlens
