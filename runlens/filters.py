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
    never match. A list of substrings matches a row that contains *any* of them (the
    CLI's repeated ``--step``); :func:`parse_steps` turns ``--step`` values into such
    a list (split on commas, stripped: Dagster step keys hold neither).
``levels``
    Comma-separated string or list of level names, case-insensitive, exact membership
    (``"warning,error"``; not "this level and above"). A name that is not one of
    DEBUG, INFO, WARNING, ERROR, CRITICAL raises :class:`~runlens.errors.InvalidFilter`.

For ``types`` and ``levels`` a list means exactly what its elements joined with commas
mean. ``None``, ``""`` and ``[]`` mean "no filter" for each of them (the seed's
``if not value: return events``).
A value that is given but names nothing — ``" , ,"``, ``" "``, ``["", ""]`` — raises
:class:`~runlens.errors.InvalidFilter` for ``types`` and ``levels`` (the seed returned
an empty result). Filters that are given are combined with AND.

:func:`filter_events` returns the matching rows of the frame selected by a boolean
mask: storage order, the original index labels and ``seq`` values (no
``reset_index``), every column, and every dtype with its categories unchanged.

Nothing loops over rows: each predicate is evaluated once per *category* of the
categorical column and broadcast to the rows through the integer codes (code ``-1``,
NA, never matches). The per-category test follows Python's ``str.upper``/``str.lower``
on purpose: pandas' ``.str.lower()`` on a pyarrow-backed string dtype uses utf8proc's
simple case mapping (``'İ'`` → ``'i'``, ``'ß'.upper()`` → ``'ẞ'``), which differs from
the seed's Python semantics. Large category sets (a run's thousands of step keys) are
tested with pyarrow's *ASCII* kernels, where the two agree, and their non-ASCII values
in Python. The result per categories Index and filter value is cached (an Index is
immutable), so a repeated filter does no per-category work at all.

The first filter is one pass over its column's codes; when it leaves few rows, the
next filters only look at those rows' codes. Finding the 1,216 rows of benchmark #4
among a million takes about 0.5 ms right after the CPU caches were emptied (0.2 ms
warm); copying them out of the frame's thirteen columns (``DataFrame.take``) about
1.3 ms, so :func:`event_mask` is the cheaper call when only counts or positions are
needed.
"""

from __future__ import annotations

import difflib
import functools
import threading
import warnings
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import InvalidArgument, InvalidFilter, RunlensWarning
from .event_types import EVENT_TYPES, KNOWN, twins
from .vocabulary import LEVELS

__all__ = [
    "UnknownEventTypeWarning",
    "event_mask",
    "filter_events",
    "parse_levels",
    "parse_steps",
    "parse_types",
    "unknown_type_message",
    "unknown_types",
]

FilterValue = str | Sequence[str] | None
_LISTS = (list, tuple, set, frozenset, pd.Index, pd.Series, np.ndarray)


class UnknownEventTypeWarning(RunlensWarning):
    """A type filter names something that is not a Dagster event type (a likely typo)."""


# ---------------------------------------------------------------------------- parsing


def _tokens(value: FilterValue, what: str) -> list[str] | None:
    """Split, strip and uppercase a filter value; None when it means "no filter"."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, _LISTS):
        text = ",".join(_strings(value, what))  # a list means what its comma-joined string means
    else:
        raise InvalidFilter(
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


def _strings(values: Any, what: str) -> list[str]:
    """A list-like filter value as a list of its strings (sets sorted, for a stable order)."""
    for item in values:
        if not isinstance(item, str):
            raise InvalidFilter(f"{what} filter values must be strings, got {item!r}")
    return sorted(values) if isinstance(values, (set, frozenset)) else list(values)


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
        ``types`` is given but holds no name (only commas and spaces), or is neither a
        string nor a list of strings.

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


def parse_steps(steps: FilterValue) -> list[str] | None:
    """The step substrings that ``--step`` values ask for: split on commas, stripped.

    :func:`filter_events` takes a ``step`` string literally, as the seed does; this is
    what the CLI makes of its ``--step`` values first, the way ``--type`` values are
    split and stripped: a shell's stray space (``--step " flaky "``) or a repeated
    option (``--step a --step b`` = ``--step a,b``) then mean what the user meant.
    Dagster step keys hold no commas and no spaces, so nothing a key could contain is
    lost. Case is kept (the match ignores it anyway).

    Parameters
    ----------
    steps : str, list of str or None

    Returns
    -------
    list of str or None
        The non-empty, stripped, de-duplicated substrings in the order given, for
        ``filter_events(step=...)``; None when ``steps`` means "no filter" (``None``,
        ``""``, ``[]``).

    Raises
    ------
    InvalidFilter
        ``steps`` is given but holds no substring (only commas and spaces), or is
        neither a string nor a list of strings.

    Examples
    --------
    >>> parse_steps([" flaky ", "extract_a,load"])
    ['flaky', 'extract_a', 'load']
    """
    if steps is None:
        return None
    if isinstance(steps, str):
        text = steps
    elif isinstance(steps, _LISTS):
        text = ",".join(_strings(steps, "step"))
    else:
        raise InvalidFilter(f"step filter must be a string or a list of strings, not {type(steps).__name__}")
    if not text:
        return None
    out: list[str] = []
    for part in text.split(","):
        needle = part.strip()
        if needle and needle not in out:
            out.append(needle)
    if not out:
        raise InvalidFilter(
            f"the step filter {steps!r} names no step: give one or more step keys or parts "
            "of them, separated by commas (e.g. extract,load)"
        )
    return out


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
# ~0.03 ms per million): ``codes == c`` per code, an unsigned range test per run of
# consecutive codes (categories are sorted, so "extract_1" hits extract_1,
# extract_10..extract_19 as one run), the same over the unselected codes, or a
# lookup table indexed by the codes (~0.8 ms per million rows whatever the count).
_LOOKUP_COST = 32
# Once the first filter has left at most one row in this many, the next filters are
# tested on those rows only (a gather of their codes) instead of on the whole column.
_SPARSE = 16
# Category sets at least this large are tested with pyarrow string kernels (ASCII
# values; the others with Python's str methods) rather than a Python loop.
_VECTORIZE_AT = 256
# Per-categories results kept (see _selection): the categories Index of a categorical
# column is immutable and shared by every frame taken from it, so the thousands of step
# keys of a run are tested once per filter value, not once per call.
_CACHE_SIZE = 64


class _Test:
    """A per-category predicate: plain Python on any value, pyarrow on ASCII strings."""

    __slots__ = ("key",)

    def __init__(self, key: tuple) -> None:
        self.key = key

    def python(self, values: list) -> list[bool]:  # pragma: no cover - abstract
        raise NotImplementedError

    def arrow(self, strings: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class _UpperIn(_Test):
    # The seed: ``event_type and event_type.upper() in types``; "" never matches
    # because every wanted name is non-empty. Levels are matched the same way.
    __slots__ = ("wanted",)

    def __init__(self, wanted: frozenset[str]) -> None:
        super().__init__(("upper_in", wanted))
        self.wanted = wanted

    def python(self, values: list) -> list[bool]:
        wanted = self.wanted
        return [isinstance(v, str) and v.upper() in wanted for v in values]

    def arrow(self, strings: Any) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        return pc.is_in(pc.ascii_upper(strings), value_set=pa.array(sorted(self.wanted), pa.string()))


class _Contains(_Test):
    # The seed: ``step_key and needle in step_key.lower()``, Python's str.lower on
    # both sides, for any of the needles; needles are non-empty, so "" never matches.
    __slots__ = ("needles",)

    def __init__(self, *needles: str) -> None:
        super().__init__(("contains", needles))
        self.needles = needles

    def python(self, values: list) -> list[bool]:
        needles = self.needles
        return [isinstance(v, str) and any(n in v.lower() for n in needles) for v in values]

    def arrow(self, strings: Any) -> Any:
        import pyarrow.compute as pc

        lowered = pc.ascii_lower(strings)
        hits = None
        for needle in self.needles:  # literal, not a regex
            found = pc.match_substring(lowered, needle)
            hits = found if hits is None else pc.or_(hits, found)
        return hits


def _hits(values: list, test: _Test) -> np.ndarray:
    return np.fromiter(test.python(values), dtype=bool, count=len(values))


def _arrow_strings(categories: pd.Index) -> Any:
    """The categories as a pyarrow string array, or None unless they are stored so."""
    array = categories.array
    if not (isinstance(array.dtype, pd.StringDtype) and array.dtype.storage == "pyarrow"):
        return None
    strings = array.__arrow_array__()
    import pyarrow as pa

    return strings if pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type) else None


def _category_hits(categories: pd.Index, test: _Test) -> np.ndarray:
    """``test`` of every category, as Python's str methods evaluate it."""
    strings = _arrow_strings(categories) if len(categories) >= _VECTORIZE_AT else None
    if strings is None:
        return _hits(categories.tolist(), test)
    import pyarrow.compute as pc

    # For an ASCII string Python's str.lower/upper are the ASCII mappings, so the arrow
    # kernels agree with the seed; any other value is tested in Python.
    try:
        hits = np.array(test.arrow(strings).to_numpy(zero_copy_only=False), dtype=bool)
    except UnicodeEncodeError:  # a filter value with a lone surrogate (undecodable argv)
        return _hits(categories.tolist(), test)
    ascii_ = np.asarray(pc.string_is_ascii(strings).to_numpy(zero_copy_only=False), dtype=bool)
    if not ascii_.all():
        others = np.flatnonzero(~ascii_)
        hits[others] = test.python(categories[others].tolist())
    return hits


class _Selection:
    """The categories a test selects: a lookup table by code, and the cheapest way to
    find the rows of those codes in a whole column (planned on first use)."""

    __slots__ = ("lut", "_plan")

    def __init__(self, hits: np.ndarray) -> None:
        lut = np.append(np.asarray(hits, dtype=bool), False)  # lut[-1]: code -1 (NA)
        lut.flags.writeable = False
        self.lut = lut
        self._plan: tuple | None = None

    def _make_plan(self) -> tuple:
        hits = self.lut[:-1]
        selected = np.flatnonzero(hits)
        if not len(selected):
            return ("none",)
        if len(selected) == len(hits):
            return ("all",)
        runs = _runs(selected)
        others = _runs(np.flatnonzero(~hits))
        cost, other_cost = _cost(runs), _cost(others) + 2
        if min(cost, other_cost) >= _LOOKUP_COST:
            return ("lookup",)
        if cost <= other_cost:
            return ("in", runs)
        return ("out", others)

    def rows(self, codes: np.ndarray) -> np.ndarray:
        """The bool mask of the rows whose code is selected; code -1 (NA) never is."""
        plan = self._plan
        if plan is None:
            plan = self._plan = self._make_plan()
        how = plan[0]
        if how == "none":
            return np.zeros(len(codes), dtype=bool)
        if how == "all":
            return codes >= 0
        if how == "lookup":
            return self.lut[codes.astype(np.intp, copy=False)]  # -1 indexes lut[-1]
        if codes.dtype.kind != "i":
            codes = codes.astype(np.int64)
        if how == "in":
            return _in_runs(codes, plan[1])
        out = _in_runs(codes, plan[1])
        np.logical_not(out, out=out)
        out &= codes >= 0
        return out

    def keep(self, codes: np.ndarray) -> np.ndarray:
        """The bool mask of the given (few) codes that are selected."""
        return self.lut.take(codes)  # -1 (NA) takes lut[-1], which is False


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


_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _in_runs(codes: np.ndarray, runs: list[tuple[int, int]]) -> np.ndarray:
    unsigned = _UNSIGNED[codes.itemsize]
    as_unsigned = codes.view(unsigned)
    out: np.ndarray | None = None
    for first, last in runs:
        if first == last:
            part = codes == first  # a Python int: no upcast of the int8 codes
        else:
            # first <= c <= last  ⇔  (c - first) mod 2**bits <= last - first (0 <= first)
            part = np.subtract(as_unsigned, unsigned(first)) <= unsigned(last - first)
        if out is None:
            out = part
        else:
            np.bitwise_or(out, part, out=out)
    return np.zeros(len(codes), dtype=bool) if out is None else out


def _cost(runs: list[tuple[int, int]] | None) -> float:
    if runs is None:
        return float("inf")
    return sum(2 if first == last else 3.5 for first, last in runs)


_CACHE: dict[tuple[int, tuple], tuple[weakref.ref, _Selection]] = {}
_CACHE_LOCK = threading.Lock()


def _selection(categories: pd.Index, test: _Test) -> _Selection:
    """The selection of ``test`` on a categorical column's categories, cached.

    Keyed on the identity of the categories Index (immutable) and the test; the entry
    holds a weak reference to the Index, so a new Index that reuses a dead one's id
    never sees its result, and no frame is kept alive by the cache.
    """
    key = (id(categories), test.key)
    entry = _CACHE.get(key)
    if entry is not None and entry[0]() is categories:
        return entry[1]
    selection = _Selection(_category_hits(categories, test))
    try:
        ref = weakref.ref(categories)
    except TypeError:  # pragma: no cover - every pandas Index takes weak references
        return selection
    with _CACHE_LOCK:
        _CACHE.pop(key, None)
        _CACHE[key] = (ref, selection)
        while len(_CACHE) > _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]  # the oldest entry
    return selection


def _missing_column(name: str) -> InvalidArgument:
    return InvalidArgument(f"the events frame has no {name!r} column (see runlens.frames)")


def _column(events: pd.DataFrame, name: str) -> pd.Series:
    try:
        return events[name]
    except KeyError:
        raise _missing_column(name) from None


def _column_values(events: pd.DataFrame, name: str) -> Any:
    """A column's array as stored (a Categorical in a runlens frame), read-only use.

    ``DataFrame._get_column_array`` skips building a Series (and deep-copying the
    frame's ``attrs`` into it): a quarter of a millisecond per column when the caches
    are cold. Any frame that does not offer it goes through ``events[name]``.
    """
    try:
        loc = events.columns.get_loc(name)
    except KeyError:
        raise _missing_column(name) from None
    get = getattr(events, "_get_column_array", None)
    if get is not None and isinstance(loc, int):
        return get(loc)
    return _column(events, name).array


def _codes_and_selection(events: pd.DataFrame, name: str, test: _Test) -> tuple[np.ndarray, _Selection]:
    values = _column_values(events, name)
    if isinstance(values, pd.Categorical):
        # ``Categorical._codes`` is what the public ``.codes`` makes a read-only view of.
        codes = getattr(values, "_codes", None)
        if not isinstance(codes, np.ndarray):
            codes = values.codes
        return codes, _selection(values.categories, test)
    # A plain column (e.g. a frame not built by runlens): factorize it first.
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, _Selection(_hits(list(uniques), test))


_Plan = tuple[list[tuple[str, list[str]]], list[tuple[str, "_Test"]]]


def _plan(types: FilterValue, step: Any, levels: FilterValue) -> _Plan:
    """Validate the filters (types, levels, then step, each raising as documented) and
    return the unknown type names with their suggestions, and the column tests."""
    names = parse_types(types)
    wanted_levels = parse_levels(levels)  # every filter is validated before any work
    step = _check_step(step)
    return unknown_types(names), _tests(names, step, wanted_levels)


# The same filter strings come back call after call (a CLI invocation, a notebook
# cell, a page-by-page fetch): their parsing is kept. Only str, tuple-of-str and None
# arguments are cached (lists are not hashable); an argument that raises is not cached.
_cached_plan = functools.lru_cache(maxsize=256)(_plan)


def _hashable(value: Any) -> bool:
    # None, a str, or a tuple of str (what click's repeated options give).
    kind = type(value)
    return value is None or kind is str or (kind is tuple and all(type(v) is str for v in value))


def _filters(types: FilterValue, step: Any, levels: FilterValue) -> _Plan:
    if _hashable(types) and _hashable(step) and _hashable(levels):
        return _cached_plan(types, step, levels)
    return _plan(types, step, levels)


def _tests(
    names: list[str] | None, step: tuple[str, ...] | None, levels: list[str] | None
) -> list[tuple[str, _Test]]:
    tests: list[tuple[str, _Test]] = []
    if names is not None:
        tests.append(("event_type", _UpperIn(frozenset(t for name in names for t in twins(name)))))
    if levels is not None:
        tests.append(("level", _UpperIn(frozenset(levels))))
    if step:
        tests.append(("step_key", _Contains(*dict.fromkeys(s.lower() for s in step))))
    return tests


def _matches(
    events: pd.DataFrame, tests: list[tuple[str, _Test]]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Where every test holds: ``(mask, None)`` or ``(None, positions)``.

    The first test is a whole-column pass; when it leaves few rows, the others are
    tested on the codes of those rows only (positions, in storage order).
    """
    (name, test), *rest = tests
    codes, selection = _codes_and_selection(events, name, test)
    mask = selection.rows(codes)
    if not rest:
        return mask, None
    positions = mask.nonzero()[0]
    if len(positions) * _SPARSE > len(mask):
        # Most rows are left: whole-column passes ANDed are cheaper than gathers.
        for name, test in rest:
            codes, selection = _codes_and_selection(events, name, test)
            np.logical_and(mask, selection.rows(codes), out=mask)
        return mask, None
    for name, test in rest:
        codes, selection = _codes_and_selection(events, name, test)
        positions = positions.compress(selection.keep(codes.take(positions)))
    return None, positions


def _check_step(step: Any) -> tuple[str, ...] | None:
    """The step filter as a tuple of literal substrings; None for no filter."""
    if step is None or isinstance(step, str):
        return (step,) if step else None  # None and "" mean no filter; " " is a real (literal) filter
    if isinstance(step, _LISTS):
        return tuple(s for s in _strings(step, "step") if s) or None
    raise InvalidFilter(f"step filter must be a string or a list of strings, not {type(step).__name__}")


def event_mask(
    events: pd.DataFrame,
    types: FilterValue = None,
    step: FilterValue = None,
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
    step : str, list of str or None
        Case-insensitive literal substring of the step key, or a list of them (any).
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
    unknown, tests = _filters(types, step, levels)
    if unknown and warn:
        _warn_unknown(unknown, events)
    if not tests:
        return np.ones(len(events), dtype=bool)
    mask, positions = _matches(events, tests)
    if mask is None:
        mask = np.zeros(len(events), dtype=bool)
        mask[positions] = True
    return mask


def _warn_unknown(unknown: list[tuple[str, list[str]]], events: pd.DataFrame) -> None:
    """Warn about each unknown type name (see :func:`unknown_types`) absent from the frame."""
    column = _column(events, "event_type")
    if isinstance(column.dtype, pd.CategoricalDtype):
        values = column.cat.categories.tolist()
    else:
        values = pd.unique(column.dropna()).tolist()
    present = {v.upper() for v in values if isinstance(v, str)}
    for name, suggestions in unknown:
        if name not in present:
            warnings.warn(unknown_type_message(name, suggestions), UnknownEventTypeWarning, stacklevel=3)


def filter_events(
    events: pd.DataFrame,
    types: FilterValue = None,
    step: FilterValue = None,
    levels: FilterValue = None,
    *,
    warn: bool = True,
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
    step : str, list of str or None
        Case-insensitive literal substring of the step key (``"extract_a"`` matches
        ``"extract_ab"``; ``"process[emea]"`` is not a regex), or a list of them: a row
        matches if its step key contains any. Events without a step key never match.
    levels : str, list of str or None
        Level names, comma-separated or as a list; case-insensitive, exact.
    warn : bool, default True
        Emit the :class:`UnknownEventTypeWarning` below. A caller that filters one
        fetch page by page warns once up front and passes False for the pages, so a
        typo is reported once, even with warnings set to "always".

    Returns
    -------
    pandas.DataFrame
        The selected rows via a boolean mask: original index labels and ``seq``
        values, same columns, same dtypes and categories. A (copy-on-write) copy of
        ``events`` when no filter is given.

    Raises
    ------
    InvalidFilter
        ``types`` or ``levels`` is given but holds no name (``" , "``), a level name
        is unknown, or a filter is neither a string nor a list of strings.
    InvalidArgument
        ``events`` lacks a column a given filter reads.

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
    unknown, tests = _filters(types, step, levels)
    if unknown and warn:
        _warn_unknown(unknown, events)
    if not tests:
        return events.copy(deep=False)
    mask, positions = _matches(events, tests)
    # A positional take of the selected rows: storage order, their index labels
    # (whatever the index is), every column and dtype.
    return take_rows(events, mask.nonzero()[0] if positions is None else positions)


def take_rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``frame.take(positions)`` for valid non-negative positions, with ``attrs`` copied cheaply.

    ``DataFrame.take`` deep-copies ``attrs`` (through ``copy.deepcopy``), and an events
    frame of 450 runs carries 450 run ids and cursors: that copy cost as much as the
    take of a 1,000,000-row frame's selected rows. Lists and dicts of strings are copied
    one level, which is what a deep copy of them amounts to; anything else is deep-copied.

    The columns are taken array by array (:func:`_take_arrays`) and the frame rebuilt
    around them: pandas' block-by-block take spent ~50 µs of bookkeeping a column, more
    than the take itself for the thousand rows a filter keeps.
    """
    attrs = frame.attrs
    if type(frame) is not pd.DataFrame or not frame.flags.allows_duplicate_labels:
        return frame.take(positions)
    try:
        result = _take_arrays(frame, positions)
    except (AttributeError, TypeError, ValueError):  # a pandas whose internals differ: the public way
        return frame.take(positions)
    if result is None:
        return frame.take(positions)
    result.attrs = _copy_attrs(attrs) if attrs else {}
    return result


def _take_arrays(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame | None:
    """``frame``'s rows at ``positions``, column array by column array; None when a column is of a
    kind this does not handle (the caller then takes the public way)."""
    import pyarrow as pa

    manager = frame._mgr
    if not frame.columns.is_unique or manager.ndim != 2:
        return None
    arrays: list[Any] = []
    strings: dict[int, Any] = {}  # column -> its Arrow string array, taken together below
    for i in range(len(frame.columns)):
        values = manager.iget_values(i)
        if isinstance(values, pd.Categorical):
            arrays.append(values._from_backing_data(values._ndarray.take(positions)))
        elif isinstance(values, pd.arrays.ArrowStringArray):
            strings[i] = values
            arrays.append(None)  # filled below
        else:  # numpy, datetimes and any other extension array take themselves
            arrays.append(values.take(positions))
    if strings:
        # One Arrow take of every string column: one dispatch instead of one a column.
        taken = pa.table({str(i): v._pa_array for i, v in strings.items()}).take(pa.array(positions))
        for j, (i, values) in enumerate(strings.items()):
            arrays[i] = type(values)(taken.column(j), dtype=values.dtype)
    return pd.DataFrame._from_arrays(arrays, columns=frame.columns, index=frame.index.take(positions),
                                     verify_integrity=False)


_TEXT_TYPES = {str, type(None)}


def _copy_attrs(attrs: dict) -> dict:
    import copy

    out = {}
    for key, value in attrs.items():
        kind = type(value)
        if value is None or kind in (str, int, float, bool):
            out[key] = value
        elif kind is list and set(map(type, value)) <= _TEXT_TYPES:
            out[key] = list(value)
        elif kind is dict and set(map(type, value)) <= _TEXT_TYPES and set(map(type, value.values())) <= _TEXT_TYPES:
            out[key] = dict(value)
        else:
            out[key] = copy.deepcopy(value)
    return out
