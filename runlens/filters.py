"""Filter an events frame by event type, step key and level — vectorized.

The rules are those of the seed's client-side filters (``_filter_events_by_type`` and
``_filter_events_by_step`` of ``dg api run-events get``), with the bugs of Dagster's
own releases fixed:

``types``
    A comma-separated string (``"STEP_START, STEP_SUCCESS"``) or a list of such
    strings. Each token is stripped and uppercased (``t.strip().upper()``); empty
    tokens are ignored. A row matches when its ``event_type``, uppercased, is one of the
    tokens (exact membership, not a substring). Rows whose ``event_type`` is null —
    every plain log line — or empty never match. ``RUN_X`` and the legacy
    ``PIPELINE_X`` name the same event: asking for either matches both.
    A name that is not a Dagster event type is still used as given (a newer server can
    emit types runlens does not know) but raises an :class:`UnknownEventTypeWarning`
    with a "did you mean ...?" suggestion, unless the frame holds that type: a typo is
    never silently turned into an empty result.
``step``
    A case-insensitive *literal* substring of ``step_key``: ``extract_a`` also matches
    ``extract_ab``, and ``process[emea]`` is not a regular expression. Exactly the
    seed's ``step.lower() in step_key.lower()`` with Python's :meth:`str.lower` on both
    sides (not ``casefold``), so ``'İ'`` lowers to two characters and ``'ß'`` stays
    ``'ß'`` just as in the seed. The value is not stripped. Rows without a step key
    never match.
``levels``
    Comma-separated string or list of level names, case-insensitive, exact membership
    (``"warning,error"``; not "this level and above"). A name that is not one of
    DEBUG, INFO, WARNING, ERROR, CRITICAL raises :class:`~runlens.errors.InvalidFilter`.

A list means exactly what its elements joined with commas mean. ``None``, ``""`` and
``[]`` mean "no filter" for each of them (the seed's ``if not value: return events``).
A value that is given but names nothing — ``" , ,"``, ``" "``, ``["", ""]`` — raises
:class:`~runlens.errors.InvalidFilter` for ``types`` and ``levels`` (the seed returned
an empty result). Filters that are given are combined with AND.

:func:`filter_events` returns the matching rows of the frame selected by a boolean
mask: storage order, the original index labels and ``seq`` values (no
``reset_index``), every column, and every dtype with its categories unchanged.

Nothing loops over rows: each predicate is evaluated once per *category* of the
categorical column (a handful of values) and broadcast to the rows through
``.cat.codes`` with whole-array comparisons (code ``-1``, NA, never matches). The
per-category test is plain Python ``str.upper``/``str.lower`` on purpose: pandas'
``.str.lower()`` on a pyarrow-backed string dtype uses utf8proc's simple case mapping
(``'İ'`` → ``'i'``, ``'ß'.upper()`` → ``'ẞ'``), which differs from the seed's Python
semantics. Computing the mask of a million rows takes well under a millisecond; the
cost of :func:`filter_events` is then mostly copying the selected rows out of the
frame's thirteen columns (about 0.2 µs per selected row), so :func:`event_mask` is the
cheaper call when only counts or positions are needed.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import InvalidFilter
from .event_types import EVENT_TYPES, KNOWN, twins
from .models import LEVELS

__all__ = [
    "UnknownEventTypeWarning",
    "event_mask",
    "filter_events",
    "parse_levels",
    "parse_types",
    "unknown_type_message",
    "unknown_types",
]

FilterValue = str | Sequence[str] | None


class UnknownEventTypeWarning(UserWarning):
    """A type filter names something that is not a Dagster event type (a likely typo)."""


# ---------------------------------------------------------------------------- parsing


def _tokens(value: FilterValue, what: str) -> list[str] | None:
    """Split, strip and uppercase a filter value; None when it means "no filter"."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple, set, frozenset, pd.Index, pd.Series, np.ndarray)):
        for item in value:
            if not isinstance(item, str):
                raise TypeError(f"{what} filter values must be strings, got {item!r}")
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        text = ",".join(items)  # a list means what its comma-joined string means
    else:
        raise TypeError(
            f"{what} filter must be a comma-separated string or a list of strings, "
            f"not {type(value).__name__}"
        )
    if not text:  # "" (and [] or [""]) means "no filter", as in the seed
        return None
    tokens: list[str] = []
    for part in text.split(","):
        token = part.strip().upper()  # the seed's order: strip, then upper
        if token and token not in tokens:
            tokens.append(token)
    if not tokens:
        raise InvalidFilter(
            f"the {what} filter {value!r} names no {what}: give one or more names "
            f"separated by commas (e.g. {'STEP_START,STEP_SUCCESS' if what == 'type' else 'WARNING,ERROR'})"
        )
    return tokens


def parse_types(types: FilterValue) -> list[str] | None:
    """Normalize an event type filter into the list of names it asks for.

    Parameters
    ----------
    types : str, list of str or None
        Comma-separated names, or a list of them; a list means what its elements
        joined with commas mean (so an element may itself hold commas).

    Returns
    -------
    list of str or None
        The stripped, uppercased, de-duplicated names in the order given, without the
        ``RUN_``/``PIPELINE_`` twins; None when ``types`` means "no filter" (``None``,
        ``""``, ``[]``).

    Raises
    ------
    InvalidFilter
        ``types`` is given but holds no name (only commas and spaces).
    TypeError
        ``types`` is neither a string nor a list of strings.

    Examples
    --------
    >>> parse_types(" step_start, STEP_SUCCESS,,")
    ['STEP_START', 'STEP_SUCCESS']
    >>> parse_types(["run_success", "STEP_FAILURE,step_start"])
    ['RUN_SUCCESS', 'STEP_FAILURE', 'STEP_START']
    >>> parse_types("") is None
    True
    """
    return _tokens(types, "type")


def parse_levels(levels: FilterValue) -> list[str] | None:
    """Normalize a level filter into the list of level names it asks for.

    Parameters
    ----------
    levels : str, list of str or None
        Comma-separated level names, or a list of them; case-insensitive.

    Returns
    -------
    list of str or None
        Uppercased, de-duplicated names; None when ``levels`` means "no filter".

    Raises
    ------
    InvalidFilter
        A name is not a level, or ``levels`` is given but holds no name.

    Examples
    --------
    >>> parse_levels("warning, Error")
    ['WARNING', 'ERROR']
    >>> parse_levels("WARN")
    Traceback (most recent call last):
    ...
    runlens.errors.InvalidFilter: unknown level 'WARN' (did you mean WARNING?); valid levels: DEBUG, INFO, WARNING, ERROR, CRITICAL
    """
    names = _tokens(levels, "level")
    if names is None:
        return None
    bad = [name for name in names if name not in LEVELS]
    if bad:
        hints = []
        for name in bad:
            close = difflib.get_close_matches(name, LEVELS, n=1, cutoff=0.5)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise InvalidFilter(
            f"unknown level{'s' if len(bad) > 1 else ''} {', '.join(hints)}; "
            f"valid levels: {', '.join(LEVELS)}"
        )
    return names


def unknown_types(names: Iterable[str] | None) -> list[tuple[str, list[str]]]:
    """The names that are not Dagster event types, each with its closest real names.

    Parameters
    ----------
    names : iterable of str or None
        Normalized names, as :func:`parse_types` returns them.

    Returns
    -------
    list of (str, list of str)
        ``(name, suggestions)`` for each unknown name, suggestions best first (possibly
        empty). An empty list when every name is known.

    Examples
    --------
    >>> unknown_types(["STEP_SUCESS", "RUN_SUCCESS"])
    [('STEP_SUCESS', ['STEP_SUCCESS', 'ALERT_SUCCESS', 'RUN_SUCCESS'])]
    >>> unknown_types(["PIPELINE_START"])
    []
    """
    out = []
    for name in names or ():
        if name not in KNOWN:
            out.append((name, difflib.get_close_matches(name, EVENT_TYPES, n=3, cutoff=0.6)))
    return out


def unknown_type_message(name: str, suggestions: Sequence[str]) -> str:
    """The warning text for one unknown event type name (shared with the CLI)."""
    hint = f" did you mean {' or '.join(suggestions)}?" if suggestions else (
        " see runlens.event_types.EVENT_TYPES for the valid names."
    )
    return f"{name!r} is not a Dagster event type and may match nothing;{hint}"


# ---------------------------------------------------------------------------- masks

# The rows of the selected categories are found with whole-array passes over the int
# codes, whichever way is cheapest (costs in units of one int8 pass over the rows,
# ~0.025 ms per million): ``codes == c`` per code, an unsigned range test per run of
# consecutive codes (categories are sorted, so "extract_1" hits extract_1,
# extract_10..extract_19 as one run), the same over the unselected codes, or a
# lookup table indexed by the codes (~0.8 ms per million rows whatever the count).
_LOOKUP_COST = 32
# Past the first filter, a column with more categories than this has its test run
# only on the categories that occur in the rows still selected.
_MANY_CATEGORIES = 1024


def _codes_and_values(column: pd.Series) -> tuple[np.ndarray, list]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.array.codes, column.array.categories.tolist()
    # A plain column (e.g. a frame not built by runlens): factorize it first.
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return codes, list(uniques)


def _runs(codes: np.ndarray) -> list[tuple[int, int]] | None:
    """Sorted codes → maximal runs of consecutive codes, (first, last); None if too many."""
    if not len(codes):
        return []
    breaks = np.flatnonzero(np.diff(codes) != 1)
    if len(breaks) >= _LOOKUP_COST // 2:  # every run costs at least 2 passes
        return None
    firsts = [int(codes[0])] + codes[breaks + 1].tolist()
    lasts = codes[breaks].tolist() + [int(codes[-1])]
    return list(zip(firsts, lasts, strict=True))


def _in_runs(codes: np.ndarray, runs: list[tuple[int, int]]) -> np.ndarray:
    unsigned = codes.dtype.str.replace("i", "u")
    out = np.zeros(len(codes), dtype=bool)
    for first, last in runs:
        if first == last:
            part = codes == first  # a Python int: no upcast of the int8 codes
        else:
            # first <= c <= last  ⇔  (c - first) mod 2**bits <= last - first
            part = np.subtract(codes, first, dtype=codes.dtype).view(unsigned) <= last - first
        np.bitwise_or(out, part, out=out)
    return out


def _cost(runs: list[tuple[int, int]] | None) -> float:
    if runs is None:
        return float("inf")
    return sum(2 if first == last else 3.5 for first, last in runs)


def _rows_with_codes(codes: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """Rows whose code is a selected category; code -1 (NA) is never selected."""
    selected = np.flatnonzero(hits)
    if not len(selected):
        return np.zeros(len(codes), dtype=bool)
    if len(selected) == len(hits):
        return codes >= 0
    if codes.dtype.kind != "i":
        codes = codes.astype(np.int64)
    runs = _runs(selected)
    others = _runs(np.flatnonzero(~hits))
    cost, other_cost = _cost(runs), _cost(others) + 2
    if min(cost, other_cost) >= _LOOKUP_COST:
        return _lookup(hits)[codes.astype(np.intp, copy=False)]
    if cost <= other_cost:
        return _in_runs(codes, runs)
    out = _in_runs(codes, others)
    np.logical_not(out, out=out)
    out &= codes >= 0
    return out


def _lookup(hits: np.ndarray) -> np.ndarray:
    return np.append(hits, False)  # the extra False is what code -1 (NA) indexes


def _hits(values: list, test: Callable[[list], list]) -> np.ndarray:
    return np.fromiter(test(values), dtype=bool, count=len(values))


def _column(events: pd.DataFrame, name: str) -> pd.Series:
    try:
        return events[name]
    except KeyError:
        raise KeyError(f"the events frame has no {name!r} column (see runlens.frames)") from None


def _upper_in(wanted: frozenset[str]) -> Callable[[list], list]:
    # The seed: ``event_type and event_type.upper() in types``; "" never matches
    # because every wanted name is non-empty. Levels are matched the same way.
    return lambda values: [isinstance(v, str) and v.upper() in wanted for v in values]


def _step_test(needle: str) -> Callable[[list], list]:
    # The seed: ``step_key and needle in step_key.lower()``, Python's str.lower on
    # both sides; the needle is non-empty, so "" never matches.
    return lambda values: [isinstance(v, str) and needle in v.lower() for v in values]


def _selected(
    events: pd.DataFrame, names: list[str] | None, step: str | None, levels: list[str] | None
) -> np.ndarray | None:
    """The row mask of every given filter ANDed; None when no filter is given."""
    tests = []
    if names is not None:
        wanted = frozenset(t for name in names for t in twins(name))
        tests.append(("event_type", _upper_in(wanted)))
    if levels is not None:
        tests.append(("level", _upper_in(frozenset(levels))))
    if step:
        tests.append(("step_key", _step_test(step.lower())))
    if not tests:
        return None
    mask: np.ndarray | None = None
    for name, test in tests:
        codes, values = _codes_and_values(_column(events, name))
        if mask is not None and len(values) > _MANY_CATEGORIES:
            # Test only the categories the rows still selected use (thousands of
            # step keys, few of them in the rows of the wanted types).
            seen = codes[mask]
            used = np.flatnonzero(np.bincount(seen[seen >= 0], minlength=len(values)))
            hits = np.zeros(len(values), dtype=bool)
            hits[used] = _hits([values[i] for i in used.tolist()], test)
        else:
            hits = _hits(values, test)
        part = _rows_with_codes(codes, hits)
        mask = part if mask is None else np.logical_and(mask, part, out=mask)
    return mask


def _check_step(step: Any) -> str | None:
    if step is not None and not isinstance(step, str):
        raise TypeError(f"step filter must be a string, not {type(step).__name__}")
    return step or None  # None and "" mean no filter; " " is a real (literal) filter


def event_mask(
    events: pd.DataFrame,
    types: FilterValue = None,
    step: str | None = None,
    levels: FilterValue = None,
    *,
    warn: bool = True,
) -> np.ndarray:
    """The boolean row mask of :func:`filter_events`, for filtering page by page.

    Parameters
    ----------
    events : pandas.DataFrame
        An events frame (see :mod:`runlens.frames`).
    types : str, list of str or None
        Event type names, comma-separated or as a list; see the module docstring.
    step : str or None
        Case-insensitive literal substring of the step key.
    levels : str, list of str or None
        Level names, comma-separated or as a list.
    warn : bool, default True
        Emit an :class:`UnknownEventTypeWarning` for each type name that is neither a
        Dagster event type nor present in ``events``. Callers that report
        :func:`unknown_types` themselves (the CLI, once per command) pass False.

    Returns
    -------
    numpy.ndarray
        A bool array of ``len(events)``, positional (it ignores the index); all True
        when no filter is given.

    Raises
    ------
    InvalidFilter
        ``types`` or ``levels`` is given but names nothing, or a level is unknown.

    Examples
    --------
    >>> from runlens.frames import events_frame
    >>> df = events_frame([
    ...     {"eventType": "STEP_START", "stepKey": "extract_a", "level": "DEBUG"},
    ...     {"eventType": None, "stepKey": "extract_ab", "level": "INFO"},
    ...     {"eventType": "STEP_SUCCESS", "stepKey": "EXTRACT_AB", "level": "DEBUG"},
    ... ], "r1")
    >>> event_mask(df, types="step_start, step_success", step="Extract_A")
    array([ True, False,  True])
    """
    names = parse_types(types)
    wanted_levels = parse_levels(levels)  # every filter is validated before any work
    step = _check_step(step)
    if names is not None and warn:
        _warn_unknown(names, _column(events, "event_type"))
    mask = _selected(events, names, step, wanted_levels)
    return np.ones(len(events), dtype=bool) if mask is None else mask


def _warn_unknown(names: list[str], column: pd.Series) -> None:
    unknown = unknown_types(names)
    if not unknown:
        return
    _, values = _codes_and_values(column)
    present = {v.upper() for v in values if isinstance(v, str)}
    for name, suggestions in unknown:
        if name not in present:
            warnings.warn(unknown_type_message(name, suggestions), UnknownEventTypeWarning, stacklevel=3)


def filter_events(
    events: pd.DataFrame,
    types: FilterValue = None,
    step: str | None = None,
    levels: FilterValue = None,
) -> pd.DataFrame:
    """The events that match every given filter, in storage order.

    Parameters
    ----------
    events : pandas.DataFrame
        An events frame (see :mod:`runlens.frames`).
    types : str, list of str or None
        Event type names, comma-separated (``"STEP_START, step_success"``) or as a list;
        stripped, case-insensitive, exact; ``RUN_X`` also matches ``PIPELINE_X`` and
        the other way round. Log lines (no event type) never match.
    step : str or None
        Case-insensitive literal substring of the step key (``"extract_a"`` matches
        ``"extract_ab"``; ``"process[emea]"`` is not a regex). Events without a step
        key never match.
    levels : str, list of str or None
        Level names, comma-separated or as a list; case-insensitive, exact.

    Returns
    -------
    pandas.DataFrame
        The selected rows via a boolean mask: original index labels and ``seq``
        values, same columns, same dtypes and categories. A (copy-on-write) copy of
        ``events`` when no filter is given.

    Raises
    ------
    InvalidFilter
        ``types`` or ``levels`` is given but holds no name (``" , "``), or a level name
        is unknown.

    Warns
    -----
    UnknownEventTypeWarning
        A type name is not a Dagster event type (and the frame has no such events),
        with the closest real names.

    Examples
    --------
    >>> from runlens.frames import events_frame
    >>> df = events_frame([
    ...     {"eventType": "RUN_START", "level": "DEBUG"},
    ...     {"eventType": "STEP_START", "stepKey": "process[emea]", "level": "DEBUG"},
    ...     {"eventType": None, "stepKey": "process[emea]", "level": "INFO",
    ...      "message": "hello"},
    ...     {"eventType": "STEP_SUCCESS", "stepKey": "process[EMEA]", "level": "DEBUG"},
    ... ], "r1")
    >>> filter_events(df, types="step_start, STEP_SUCCESS", step="PROCESS[emea]")["seq"].tolist()
    [1, 3]
    >>> filter_events(df, types="PIPELINE_START")["seq"].tolist()
    [0]
    >>> filter_events(df, levels="info")["message"].tolist()
    ['hello']
    """
    names = parse_types(types)
    wanted_levels = parse_levels(levels)
    step = _check_step(step)
    if names is not None:
        _warn_unknown(names, _column(events, "event_type"))
    mask = _selected(events, names, step, wanted_levels)
    if mask is None:
        return events.copy(deep=False)
    # A positional take of the rows the mask selects: storage order, their index
    # labels (whatever the index is), every column and dtype.
    return events.take(np.flatnonzero(mask))
