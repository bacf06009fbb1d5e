"""Numpy helpers for :mod:`runlens.steps`: grouped first/last/sum and span pairing.

Private. Every helper works on rows already sorted by group (one group per run and
step), in storage order within a group, with times as epoch milliseconds in int64 and
:data:`NAT` for a missing time. No per-row Python: a million events take well under a
second. The plain-loop oracle these must agree with is ``reference_step_stats`` and
``reference_overheads`` in ``tests/unit/test_steps.py``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

NAT = np.iinfo(np.int64).min  # what datetime64/timedelta64 NaT is, as int64
NEVER = np.iinfo(np.int64).max


def codes(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 for NA) and categories of a column, categorical or not."""
    if not isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("category")
    return series.cat.codes.to_numpy().astype(np.int64), series.cat.categories


def millis(series: pd.Series) -> np.ndarray:
    """Epoch milliseconds as int64 (NaT → :data:`NAT`), without per-row objects."""
    if not isinstance(series.dtype, pd.DatetimeTZDtype) and series.dtype.kind != "M":
        series = pd.to_datetime(series, utc=True)
    if getattr(series.dtype, "unit", "ms") != "ms":
        series = series.dt.as_unit("ms")
    return np.asarray(series.array.asi8, dtype=np.int64)


def edges(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First/last-row masks of the runs of equal values in a sorted group array."""
    if len(g) == 0:
        return np.zeros(0, bool), np.zeros(0, bool)
    change = g[1:] != g[:-1]
    return np.r_[True, change], np.r_[change, True]


def ffill(values: np.ndarray, valid: np.ndarray, seg_start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Carry ``values[valid]`` forward, never across a row where ``seg_start`` is True."""
    n = len(values)
    if n == 0:
        return values.copy(), valid.copy()
    pos = np.arange(n)
    src = np.maximum.accumulate(np.where(valid | seg_start, pos, 0))
    has = valid[src]
    return np.where(has, values[src], NAT), has


def first(g: np.ndarray, values: np.ndarray, mask: np.ndarray, n: int, *, last: bool = False,
          fill: Any = NAT) -> np.ndarray:
    """Per group (``g`` sorted), the value at the first (or last) row where ``mask`` holds."""
    out = np.full(n, fill, dtype=values.dtype)
    sel = np.flatnonzero(mask)
    if sel.size:
        head, tail = edges(g[sel])
        pick = sel[tail if last else head]
        out[g[pick]] = values[pick]
    return out


def total(g: np.ndarray, delta: np.ndarray, valid: np.ndarray, n: int, *, empty: int = NAT) -> np.ndarray:
    """Per-group sum of ``delta[valid]`` in ms; ``empty`` where a group has no valid row."""
    sums = np.bincount(g[valid], weights=delta[valid].astype(np.float64), minlength=n)
    count = np.bincount(g[valid], minlength=n)
    return np.where(count > 0, np.rint(sums).astype(np.int64), empty)


def diff(end: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``end - start`` in ms and where both are known (no arithmetic on NAT)."""
    ok = (end != NAT) & (start != NAT)
    return np.where(ok, end, 0) - np.where(ok, start, 0), ok


def previous(values: np.ndarray, fill: int = NAT) -> np.ndarray:
    """``values`` shifted down one row (``fill`` in the first)."""
    return np.r_[fill, values[:-1]] if len(values) else values.copy()


class Spans(NamedTuple):
    """Spans in group order, storage order within a group (see :func:`spans`)."""

    group: np.ndarray
    start: np.ndarray
    end: np.ndarray  # NAT while open
    closed: np.ndarray
    row: np.ndarray  # the row that ended the span (its closer, or a trailing opener)


def spans(g: np.ndarray, t: np.ndarray, opens: np.ndarray, closes: np.ndarray, *, lone_close: bool) -> Spans:
    """Pair openers with the next closer of the same group (rows sorted by group, storage order).

    A closer pairs with the latest opener since the group's previous closer. A trailing
    opener with no closer gives an open span (``end`` NAT, ``closed`` False).
    ``lone_close``: a closer with no opener makes a zero-length span (Dagster's rule for
    attempts) instead of being dropped.
    """
    rows = np.flatnonzero(opens | closes)
    rg, rt, ro, rc = g[rows], t[rows], opens[rows], closes[rows]
    head, tail = edges(rg)
    seg_start = (head | previous(rc, False).astype(bool)) if len(rg) else head
    open_t, has_open = ffill(rt, ro & (rt != NAT), seg_start)
    start = np.where(has_open, open_t, rt) if lone_close else open_t
    keep_closed = rc if lone_close else rc & has_open
    take = keep_closed | (tail & ~rc & has_open)
    end = np.where(rc, rt, NAT)
    return Spans(rg[take], start[take], end[take], rc[take], rows[take])


def closes_before(g: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """Per row, how many closers its group had strictly before it."""
    seen = np.cumsum(closes) - closes
    head, _ = edges(g)
    base = np.zeros(int(g[-1]) + 1 if len(g) else 0, dtype=np.int64)
    base[g[head]] = seen[head]
    return seen - base[g]


def timestamps(ms: np.ndarray) -> pd.DatetimeIndex:
    """Epoch milliseconds (NAT allowed) as a UTC DatetimeIndex of unit ms."""
    return pd.DatetimeIndex(np.asarray(ms, dtype=np.int64).view("datetime64[ms]")).tz_localize("UTC")


def span_lists(n: int, g: np.ndarray, start: np.ndarray, end: np.ndarray) -> list[list[tuple]]:
    """Per group, the list of ``(start, end)`` Timestamp pairs (end None while open)."""
    out: list[list[tuple]] = [[] for _ in range(n)]
    starts = timestamps(start).tolist()
    ends = [None if e == NAT else ts for e, ts in zip(end.tolist(), timestamps(end).tolist(), strict=True)]
    for group, s, e in zip(g.tolist(), starts, ends, strict=True):
        out[group].append((s, e))
    return out


def latest_by_key(keys: np.ndarray, t: np.ndarray, wanted: np.ndarray, n_keys: int) -> np.ndarray:
    """For each of ``wanted`` keys, the latest ``t`` among rows with that key (NAT if none).

    Dense keys use a table of ``n_keys`` slots (no sort); sparse ones a sort.
    """
    if n_keys <= max(4 * len(keys), 1 << 20):
        table = np.full(n_keys, NAT, dtype=np.int64)
        np.maximum.at(table, keys, t)
        return table[wanted]
    unique, inverse = np.unique(keys, return_inverse=True)
    table = np.full(len(unique), NAT, dtype=np.int64)
    np.maximum.at(table, inverse, t)
    return table[np.searchsorted(unique, wanted)] if len(wanted) else np.zeros(0, np.int64)
