"""runlens.filters: the seed's --type/--step rules on an events frame, plus levels.

The property tests compare :func:`filter_events` with the seed's own client-side loops,
copied below verbatim (they operate on the raw GraphQL dicts).
"""

from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runlens.filters as filters_module
from runlens.errors import InvalidArgument, InvalidFilter
from runlens.event_types import EVENT_TYPES, twins
from runlens.filters import (
    UnknownEventTypeWarning,
    _category_hits,
    _Contains,
    _hits,
    _Selection,
    _UpperIn,
    event_mask,
    filter_events,
    parse_levels,
    parse_steps,
    parse_types,
    take_rows,
    unknown_type_message,
    unknown_types,
)
from runlens.frames import empty_events_frame, events_frame
from runlens.models import LEVELS
from tests.builders import record
from tests.seed_reference import _filter_events_by_step, _filter_events_by_type

# --------------------------------------------------------------------- helpers


# Records at T1, logged at DEBUG whatever their type, each with its own "seq" (not read by
# events_frame: it lets the tests name rows).
T1 = 1_700_000_000_000


def numbered(i, event_type=None, step=None, level="DEBUG"):
    return record(i, event_type, step, "m", level=level, t0=T1, runId="run-1", seq=i)


def frame(*rows):
    """rows: (event_type, step[, level]) tuples → (records, events frame)."""
    records = [numbered(i, *row) for i, row in enumerate(rows)]
    return records, events_frame(records, "run-1")


def seqs(df):
    return df["seq"].tolist()


@pytest.fixture
def run():
    """A small run with log lines, parallel steps, brackets and legacy names."""
    return frame(
        ("RUN_START", None, "DEBUG"),  # 0
        ("STEP_START", "extract_a", "DEBUG"),  # 1
        (None, "extract_a", "INFO"),  # 2: a user log line
        ("STEP_START", "extract_ab", "DEBUG"),  # 3
        ("STEP_SUCCESS", "extract_a", "DEBUG"),  # 4
        ("STEP_START", "process[emea]", "DEBUG"),  # 5
        (None, "process[emea]", "WARNING"),  # 6
        ("STEP_FAILURE", "process[EMEA]", "ERROR"),  # 7
        ("STEP_SUCCESS", "Extract_AB", "DEBUG"),  # 8
        ("PIPELINE_SUCCESS", None, "DEBUG"),  # 9: a legacy server's name
        (None, None, "CRITICAL"),  # 10
    )[1]


# --------------------------------------------------------------------- types


def test_spaced_tokens_match_every_type(run):
    # Dagster 1.12.17 forgot to strip: "A, B" silently dropped B.
    assert seqs(filter_events(run, types="STEP_START, STEP_SUCCESS")) == [1, 3, 4, 5, 8]


def test_types_are_case_insensitive_and_empty_tokens_ignored(run):
    assert seqs(filter_events(run, types=" step_start ,, Step_Success , ")) == [1, 3, 4, 5, 8]


def test_types_as_a_list(run):
    assert seqs(filter_events(run, types=["step_start", " STEP_SUCCESS"])) == [1, 3, 4, 5, 8]
    assert seqs(filter_events(run, types=("STEP_START,STEP_SUCCESS",))) == [1, 3, 4, 5, 8]
    assert seqs(filter_events(run, types=["STEP_FAILURE", ""])) == [7]


def test_type_membership_is_exact_not_substring(run):
    with pytest.warns(UnknownEventTypeWarning):
        assert seqs(filter_events(run, types="STEP")) == []
    with pytest.warns(UnknownEventTypeWarning):
        assert seqs(filter_events(run, types="STEP_STAR")) == []


def test_log_lines_and_empty_types_never_match():
    _, df = frame((None, "a"), ("", "a"), ("STEP_START", "a"), (None, None))
    assert seqs(filter_events(df, types="STEP_START")) == [2]
    with pytest.warns(UnknownEventTypeWarning):
        assert seqs(filter_events(df, types="NONE,NAN,NULL")) == []


def test_event_type_values_are_uppercased_like_the_seed():
    records, df = frame(("step_start", "a"), ("Step_Start", "b"), ("STEP_START", "c"), (" STEP_START", "d"))
    assert seqs(filter_events(df, types="STEP_START")) == [0, 1, 2]
    assert seqs(filter_events(df, types="STEP_START")) == [r["seq"] for r in _filter_events_by_type(records, "STEP_START")]


@pytest.mark.parametrize(("asked", "expected"), [
    ("RUN_SUCCESS", [9]),
    ("PIPELINE_SUCCESS", [9]),
    ("run_success", [9]),
    ("PIPELINE_START", [0]),
    ("RUN_START", [0]),
    ("RUN_START,PIPELINE_START", [0]),
])
def test_run_and_pipeline_names_are_twins(run, asked, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # twins are known names: no warning
        assert seqs(filter_events(run, types=asked)) == expected


def test_twins_of_the_event_types_module():
    assert twins("PIPELINE_SUCCESS") == ("PIPELINE_SUCCESS", "RUN_SUCCESS")
    assert twins("RUN_ENQUEUED") == ("RUN_ENQUEUED", "PIPELINE_ENQUEUED")


def test_parse_types():
    assert parse_types(None) is None
    assert parse_types("") is None
    assert parse_types([]) is None
    assert parse_types([""]) is None
    assert parse_types(" step_start, STEP_SUCCESS,,step_start ") == ["STEP_START", "STEP_SUCCESS"]
    assert parse_types(["run_success", "STEP_FAILURE,step_start"]) == ["RUN_SUCCESS", "STEP_FAILURE", "STEP_START"]
    assert parse_types("\tSTEP_START\u3000") == ["STEP_START"]  # str.strip's whitespace, as the seed


@pytest.mark.parametrize("bad", [" , ,", ",", " ", ",,,", "\t,\n", [" "], [",", " , "], ["", " ,"], ["", ""]])
def test_a_type_filter_that_names_nothing_is_invalid(run, bad):
    with pytest.raises(InvalidFilter, match="names no type") as info:
        filter_events(run, types=bad)
    assert info.value.exit_code == 2
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidFilter):
        event_mask(run, types=bad)
    with pytest.raises(InvalidFilter):
        parse_types(bad)


@pytest.mark.parametrize("nothing", [None, "", [], [""], ()])
def test_no_filter_returns_every_row(run, nothing):
    step = nothing if nothing is None or isinstance(nothing, str) else None
    out = filter_events(run, types=nothing, step=step, levels=nothing)
    pd.testing.assert_frame_equal(out, run)
    assert out is not run
    assert event_mask(run, types=nothing).all()


def test_wrong_filter_types_raise_invalid_filter(run):
    # A RunlensError (exit 2 in the CLI), not a bare TypeError (issue 13).
    for bad in [{"types": 5}, {"types": ["STEP_START", None]}, {"step": 3}, {"step": ["a", None]},
                {"levels": 1.5}]:
        with pytest.raises(InvalidFilter, match="string"):
            filter_events(run, **bad)


# --------------------------------------------------------------------- unknown types


def test_unknown_type_warns_with_a_suggestion(run):
    with pytest.warns(UnknownEventTypeWarning, match="did you mean STEP_SUCCESS") as record_:
        assert seqs(filter_events(run, types="STEP_SUCESS")) == []
    assert len(record_) == 1
    assert "'STEP_SUCESS'" in str(record_[0].message)
    assert record_[0].filename == __file__  # points at the caller


def test_warn_false_silences_the_unknown_type_warning(run):
    # For a caller that warned once for a whole fetch (Client.events page by page).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert seqs(filter_events(run, types="STEP_SUCESS,STEP_START", warn=False)) == [1, 3, 5]


def test_unknown_type_still_filters_the_known_ones(run):
    with pytest.warns(UnknownEventTypeWarning, match="STEP_FAILURE"):
        assert seqs(filter_events(run, types="step_failur,STEP_START")) == [1, 3, 5]


def test_unknown_type_without_close_name(run):
    with pytest.warns(UnknownEventTypeWarning, match="EVENT_TYPES"):
        filter_events(run, types="ZZZ")


def test_a_type_the_frame_holds_is_not_warned_about():
    # A newer Dagster can emit a type runlens does not know: that is no typo.
    _, df = frame(("BRAND_NEW_EVENT", "a"), ("STEP_START", "a"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert seqs(filter_events(df, types="brand_new_event")) == [0]


def test_event_mask_warns_unless_told_not_to(run):
    with pytest.warns(UnknownEventTypeWarning):
        event_mask(run, types="STEP_SUCESS")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not event_mask(run, types="STEP_SUCESS", warn=False).any()


def test_unknown_types_for_the_cli():
    assert unknown_types(["STEP_START", "PIPELINE_FAILURE", "RUN_FAILURE"]) == []
    assert unknown_types(None) == []
    found = unknown_types(parse_types("step_sucess, STEP_START, zzz"))
    assert [name for name, _ in found] == ["STEP_SUCESS", "ZZZ"]
    assert found[0][1][0] == "STEP_SUCCESS"
    assert found[1][1] == []
    assert "did you mean STEP_SUCCESS" in unknown_type_message(*found[0])


# --------------------------------------------------------------------- step


def test_step_is_a_case_insensitive_substring(run):
    # The seed's semantics, kept: extract_a also matches extract_ab.
    assert seqs(filter_events(run, step="extract_a")) == [1, 2, 3, 4, 8]
    assert seqs(filter_events(run, step="EXTRACT_AB")) == [3, 8]
    assert seqs(filter_events(run, step="ract")) == [1, 2, 3, 4, 8]


def test_a_list_of_steps_matches_any_of_them(run):
    # The CLI's repeated --step: an event matches if its key contains any value.
    assert seqs(filter_events(run, step=["extract_ab", "EMEA"])) == [3, 5, 6, 7, 8]
    assert seqs(filter_events(run, step=("extract_ab",))) == seqs(filter_events(run, step="extract_ab"))
    assert seqs(filter_events(run, types="STEP_START", step=["nothing", "[emea]"])) == [5]
    assert event_mask(run, step=["extract_ab", "emea"]).sum() == 5
    assert seqs(filter_events(run, step=[" extract_ab "])) == []  # list values are literal too
    pd.testing.assert_frame_equal(filter_events(run, step=["", ""]), run)  # no needle: no filter


def test_a_list_of_steps_on_a_big_category_set_follows_the_seed():
    # Over _VECTORIZE_AT categories the arrow kernels run: one OR per needle.
    records, df = frame(*[("STEP_START", f"step_{i}") for i in range(400)], ("STEP_START", "ÉTAPE_9"))
    needles = ["step_39", "É", "_12"]
    expected = [r["seq"] for r in records if any(n.lower() in r["stepKey"].lower() for n in needles)]
    assert len(expected) > 20 and seqs(filter_events(df, step=needles)) == expected


def test_parse_steps_splits_strips_and_keeps_case():
    assert parse_steps(None) is None and parse_steps("") is None and parse_steps(()) is None
    assert parse_steps(" flaky ") == ["flaky"]
    assert parse_steps(("Extract_A, load", "load", " x ")) == ["Extract_A", "load", "x"]
    for bad in [" ", " , ", ("", " ")]:
        with pytest.raises(InvalidFilter, match="names no step"):
            parse_steps(bad)
    with pytest.raises(InvalidFilter):
        parse_steps(3)


def test_tuples_from_repeated_options_are_cached_like_strings(run, monkeypatch):
    calls = []
    monkeypatch.setattr(filters_module, "_cached_plan", lambda *a: calls.append(a) or filters_module._plan(*a))
    filter_events(run, types=("STEP_START",), step=("extract",), levels=("debug",))
    assert calls  # went through the cache, not the uncached path


def test_events_without_a_step_key_never_match(run):
    assert 0 not in seqs(filter_events(run, step="e"))
    _, df = frame(("STEP_START", ""), ("STEP_START", None), ("STEP_START", " "))
    assert seqs(filter_events(df, step=" ")) == [2]  # not stripped: a literal space


@pytest.mark.parametrize(("step", "expected"), [
    ("process[emea]", [5, 6, 7]),
    ("PROCESS[EMEA]", [5, 6, 7]),
    ("[emea]", [5, 6, 7]),
    ("[", [5, 6, 7]),
    ("]", [5, 6, 7]),
    ("s[e", [5, 6, 7]),
    ("process[e-m]", []),
    ("process.emea.", []),
    (".*", []),
    ("(", []),
    ("\\", []),
])
def test_step_is_literal_not_a_regex(run, step, expected):
    assert seqs(filter_events(run, step=step)) == expected


def test_regex_metacharacters_in_step_keys():
    keys = ["a.*b", "a+b", "x(y)", "q?", "back\\slash", "c{2}", "^$", "p|q", "axxb"]
    records, df = frame(*[("STEP_START", k) for k in keys])
    for step in [".*", "+", "(y)", "?", "\\s", "{2}", "^$", "|", "a.*B", "x"]:
        expected = [r["seq"] for r in _filter_events_by_step(records, step)]
        assert seqs(filter_events(df, step=step)) == expected, step
        assert len(expected) >= 1


@pytest.mark.parametrize(("key", "step", "matches"), [
    ("İstanbul", "İSTANBUL", True),
    ("İstanbul", "stanbul", True),
    ("İstanbul", "istanbul", False),  # 'İ'.lower() is 'i' + U+0307: two characters
    ("İstanbul", "i\u0307s", True),
    ("istanbul", "İ", False),
    ("straße", "STRASSE", False),  # str.lower, not casefold, as the seed
    ("straße", "STRAßE", True),
    ("STRASSE", "straße", False),
    ("ΟΔΟΣ", "οδος", True),  # final sigma: 'ΟΔΟΣ'.lower() == 'οδος'
    ("ΟΔΟΣ", "οδοσ", False),
    ("ΟΔΟΣ", "ΟΔΟΣ", True),
    ("σίσυφος", "ΣΊΣΥΦΟΣ", True),
    ("ǅemal", "ǆ", True),
    ("\u212a_kelvin", "k_", True),  # KELVIN SIGN lowers to 'k'
    ("日本語ステップ", "本語", True),
    ("emoji_🚀_step", "🚀", True),
])
def test_unicode_step_keys_follow_python_str_lower(key, step, matches):
    records, df = frame(("STEP_START", key), ("STEP_START", "other"))
    expected = [r["seq"] for r in _filter_events_by_step(records, step)]
    assert expected == ([0] if matches else [])
    assert seqs(filter_events(df, step=step)) == expected


# --------------------------------------------------------------------- levels


def test_levels(run):
    assert seqs(filter_events(run, levels="warning, Error")) == [6, 7]
    assert seqs(filter_events(run, levels=["critical"])) == [10]
    assert seqs(filter_events(run, levels="INFO,,")) == [2]
    assert parse_levels(" info ,DEBUG,info") == ["INFO", "DEBUG"]


def test_levels_are_exact_not_a_threshold(run):
    assert seqs(filter_events(run, levels="ERROR")) == [7]


@pytest.mark.parametrize("bad", ["WARN", "information", "warning,fatal"])
def test_unknown_level_is_invalid_and_lists_the_valid_ones(run, bad):
    with pytest.raises(InvalidFilter, match="DEBUG, INFO, WARNING, ERROR, CRITICAL") as info:
        filter_events(run, levels=bad)
    assert info.value.exit_code == 2


def test_unknown_level_suggests_the_close_one(run):
    with pytest.raises(InvalidFilter, match="did you mean WARNING"):
        filter_events(run, levels="WARN")


def test_a_level_filter_that_names_nothing_is_invalid(run):
    with pytest.raises(InvalidFilter, match="names no level"):
        filter_events(run, levels=" , ")


def test_a_bad_filter_is_reported_before_any_work(run):
    # Even with a valid types filter first, a bad level fails the call.
    with pytest.raises(InvalidFilter):
        event_mask(run, types="STEP_START", levels="LOUD")


# --------------------------------------------------------------------- combined, frame shape


def test_filters_are_anded(run):
    assert seqs(filter_events(run, types="STEP_START,STEP_SUCCESS", step="extract_ab")) == [3, 8]
    assert seqs(filter_events(run, types="STEP_START,STEP_FAILURE", step="[emea]")) == [5, 7]
    assert seqs(filter_events(run, types="STEP_START,STEP_FAILURE", step="[emea]", levels="error")) == [7]
    assert seqs(filter_events(run, step="process", levels="WARNING,ERROR")) == [6, 7]
    assert seqs(filter_events(run, types="RUN_START", step="extract")) == []


def test_dtypes_columns_index_and_attrs_are_kept(run):
    run.attrs["run_ids"] = ["run-1"]
    out = filter_events(run, types="STEP_START,STEP_FAILURE", step="[emea]")
    assert list(out.columns) == list(run.columns)
    pd.testing.assert_series_equal(out.dtypes, run.dtypes)
    for column in ["run_id", "level", "event_type", "step_key", "kind", "error_class"]:
        assert out[column].cat.categories.equals(run[column].cat.categories), column
        assert out[column].cat.ordered == run[column].cat.ordered
    assert out.index.tolist() == [5, 7]  # the original rows' labels, not reset
    assert seqs(out) == [5, 7]
    pd.testing.assert_frame_equal(out, run.loc[[5, 7]])
    assert out.attrs == run.attrs


def test_filtering_a_filtered_frame_keeps_its_labels(run):
    first = filter_events(run, types="STEP_START,STEP_SUCCESS")
    second = filter_events(first, step="ab")
    assert second.index.tolist() == [3, 8]
    assert seqs(second) == [3, 8]
    mask = event_mask(first, step="ab")
    assert mask.tolist() == [False, True, False, False, True]


def test_start_seq_is_kept():
    records = [numbered(i, "STEP_START", "s") for i in range(3)]
    df = events_frame(records, "run-1", start_seq=100)
    assert seqs(filter_events(df, types="STEP_START", step="S")) == [100, 101, 102]


def test_empty_frame():
    df = empty_events_frame("run-1")
    out = filter_events(df, types="STEP_START", step="x", levels="INFO")
    assert len(out) == 0
    pd.testing.assert_series_equal(out.dtypes, df.dtypes)
    assert event_mask(df, types="STEP_START").shape == (0,)
    with pytest.warns(UnknownEventTypeWarning):
        filter_events(df, types="STEP_SUCESS")


def test_no_match_keeps_dtypes(run):
    out = filter_events(run, step="nothing-like-this")
    assert len(out) == 0
    pd.testing.assert_series_equal(out.dtypes, run.dtypes)


def test_event_mask_is_a_positional_numpy_bool_array(run):
    mask = event_mask(run, types="STEP_START", step="extract")
    assert isinstance(mask, np.ndarray)
    assert mask.dtype == bool
    assert mask.shape == (len(run),)
    assert np.flatnonzero(mask).tolist() == [1, 3]
    assert event_mask(run).all()


def test_plain_non_categorical_columns_work_too(run):
    plain = run.astype({"event_type": object, "step_key": object, "level": object})
    out = filter_events(plain, types="step_start", step="EXTRACT", levels="debug")
    assert seqs(out) == [1, 3]
    pd.testing.assert_series_equal(out.dtypes, plain.dtypes)


def test_a_missing_column_is_named(run):
    with pytest.raises(InvalidArgument, match="step_key"):
        filter_events(run.drop(columns="step_key"), step="x")


def test_many_step_keys_follow_the_seed():
    # More categories than the "test only the used categories" threshold.
    records = [
        numbered(i, EVENT_TYPES[i % 7] if i % 5 else None, f"step_{i % 3001}" if i % 11 else None)
        for i in range(9000)
    ]
    df = events_frame(records, "run-1")
    assert len(df["step_key"].cat.categories) > 1024
    for types, step in [("STEP_START", "step_1"), ("STEP_INPUT,STEP_FAILURE", "_29"), (EVENT_TYPES[0], "STEP_30")]:
        expected = [r["seq"] for r in _filter_events_by_step(_filter_events_by_type(records, types), step)]
        assert seqs(filter_events(df, types=types, step=step)) == expected
        assert expected


# --------------------------------------------------------------------- properties

ODD_TYPES = ["step_start", "Step_Success", " STEP_START", "STEP_START ", "", "ß", "SS", "ǆ", "ǅ", "İ",
             "custom_event", "run_success", "pipeline_failure", "Ⅸ", "ﬁ", "FI"]
# Step keys and filters: case pairs whose lowering is not one-to-one, brackets, regex
# metacharacters, whitespace and commas.
STEP_ALPHABET = "aAbBxX_-. [](){}*+?^$|\\/İiIıßSsẞΣσςΟοKk\u212aÅåǄǅǆﬁ\u0307 \t,日🚀"
TOKEN_ALPHABET = "aAsStTpP_İıßΣσςǆﬁ ,\t"

step_keys = st.one_of(st.none(), st.just(""), st.text(STEP_ALPHABET, max_size=10),
                      st.sampled_from(["process[emea]", "İstanbul", "ΟΔΟΣ", "straße", "STRASSE", "extract_a"]))
event_types = st.one_of(st.none(), st.sampled_from(EVENT_TYPES), st.sampled_from(ODD_TYPES))


@st.composite
def runs(draw):
    n = draw(st.integers(0, 40))
    rows = [(draw(event_types), draw(step_keys), draw(st.sampled_from(LEVELS))) for _ in range(n)]
    return frame(*rows)


@st.composite
def type_filters(draw, records=(), anchor=None):
    present = sorted({r["eventType"] for r in records if r["eventType"]})
    names = st.one_of(st.sampled_from(EVENT_TYPES), st.sampled_from(ODD_TYPES), st.text(TOKEN_ALPHABET, max_size=6))
    if present:  # mostly names the run holds, so that the filters select something
        names = st.one_of(st.sampled_from(present), st.sampled_from(present), names)
    tokens = draw(st.lists(names, max_size=5))
    if anchor is not None:
        tokens.append(anchor["eventType"])
    cased = [draw(st.sampled_from([t, t.lower(), t.upper(), t.swapcase(), t.title()])) for t in tokens]
    padded = [draw(st.sampled_from(["", " ", "  ", "\t"])) + t + draw(st.sampled_from(["", " ", "\u3000"]))
              for t in cased]
    if draw(st.booleans()):
        padded += [draw(st.sampled_from(["", " ", "  "])) for _ in range(draw(st.integers(1, 3)))]
    order = draw(st.permutations(padded))
    return ",".join(order)


@st.composite
def step_filters(draw, records, anchor=None):
    keys = [r["stepKey"] for r in records if r["stepKey"]]
    if anchor is not None or keys and draw(st.booleans()):
        key = anchor["stepKey"] if anchor is not None else draw(st.sampled_from(keys))
        start = draw(st.integers(0, len(key)))
        end = draw(st.integers(start, len(key)))
        part = key[start:end]
        return draw(st.sampled_from([part, part.upper(), part.lower(), part.swapcase(), part.casefold()]))
    return draw(st.one_of(st.none(), st.text(STEP_ALPHABET, max_size=4)))


@st.composite
def filters(draw, records):
    """(types, step); half the time both aimed at one event, so that the AND keeps rows."""
    both = [r for r in records if r["eventType"] and r["stepKey"]]
    anchor = draw(st.sampled_from(both)) if both and draw(st.booleans()) else None
    return draw(type_filters(records, anchor)), draw(step_filters(records, anchor))


def seed_reference(records, types, step):
    """The seed's two loops, type then step, as get_run_events_via_graphql applies them."""
    events_data = records
    if types:
        events_data = _filter_events_by_type(events_data, types)
    if step:
        events_data = _filter_events_by_step(events_data, step)
    return [e["seq"] for e in events_data]


def with_twins(types):
    """The seed's type string plus the RUN_/PIPELINE_ twin of each token (ASCII names)."""
    if not types:
        return types
    tokens = [t.strip().upper() for t in types.split(",")]
    extra = [twin for t in tokens for twin in twins(t) if twin != t]
    return ",".join([types, *extra]) if extra else types


def run_filter(df, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownEventTypeWarning)
        return filter_events(df, **kwargs)


PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data(), built=runs())
def test_property_same_rows_as_the_seed(data, built):
    records, df = built
    types, step = data.draw(filters(records), label="types, step")
    try:
        out = run_filter(df, types=types, step=step)
    except InvalidFilter:
        # Given but naming nothing: the seed silently returned no events at all.
        assert types and not parse_types_safe(types)
        assert seed_reference(records, types, step) == []
        return
    assert seqs(out) == seed_reference(records, with_twins(types), step)
    assert out.index.tolist() == seqs(out)
    pd.testing.assert_series_equal(out.dtypes, df.dtypes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownEventTypeWarning)
        assert np.flatnonzero(event_mask(df, types=types, step=step)).tolist() == seqs(out)


def parse_types_safe(types):
    try:
        return parse_types(types)
    except InvalidFilter:
        return None


@PROPERTY
@given(data=st.data(), built=runs())
def test_property_literal_seed_without_twins(data, built):
    """No RUN_/PIPELINE_ name in the filter: the seed's loops, unmodified, are the reference."""
    records, df = built
    types, step = data.draw(filters(records), label="types, step")
    types = ",".join(t for t in types.split(",") if len(twins(t.strip().upper())) == 1)
    try:
        out = run_filter(df, types=types, step=step)
    except InvalidFilter:
        assert seed_reference(records, types, step) == []
        return
    assert seqs(out) == seed_reference(records, types, step)


@PROPERTY
@given(data=st.data(), built=runs())
def test_property_levels_and_list_input(data, built):
    records, df = built
    types, step = data.draw(filters(records), label="types, step")
    levels = data.draw(st.lists(st.sampled_from(LEVELS), min_size=1, max_size=3), label="levels")
    spelled = [data.draw(st.sampled_from([lv, lv.lower(), lv.title(), f" {lv} "])) for lv in levels]
    as_list = types.split(",") if types else types
    try:
        out = run_filter(df, types=types, step=step, levels=",".join(spelled))
    except InvalidFilter:
        with pytest.raises(InvalidFilter):
            run_filter(df, types=as_list, step=step, levels=spelled)
        return
    kept = set(seed_reference(records, with_twins(types), step))
    assert seqs(out) == [r["seq"] for r in records if r["seq"] in kept and r["level"] in levels]
    # A list of tokens means the same as the comma-joined string.
    pd.testing.assert_frame_equal(run_filter(df, types=as_list, step=step, levels=spelled), out)


@settings(max_examples=300, deadline=None)
@given(
    n_categories=st.integers(1, 300),
    data=st.data(),
)
def test_property_rows_with_codes_matches_a_lookup_table(n_categories, data):
    dtype = np.int8 if n_categories < 128 else np.int16
    hits = np.array(data.draw(st.lists(st.booleans(), min_size=n_categories, max_size=n_categories)))
    if data.draw(st.booleans()):  # runs of consecutive selected codes, as substring hits on sorted keys
        start = data.draw(st.integers(0, n_categories - 1))
        hits[:] = False
        hits[start: data.draw(st.integers(start + 1, n_categories))] = True
    codes = np.array(data.draw(st.lists(st.integers(-1, n_categories - 1), max_size=200)), dtype=dtype)
    expected = np.append(hits, False)[codes.astype(np.intp)]
    assert _Selection(hits).rows(codes).tolist() == expected.tolist()


# --------------------------------------------------------------------- fast paths
# The per-categories cache, the pyarrow test of large category sets, the positions
# path of a second filter must all be invisible.

# Category values whose Python case mapping differs from utf8proc's or from ASCII's.
TRICKY = ["ß", "SS", "straße", "STRASSE", "STRAẞE", "İstanbul", "istanbul", "ı", "ǅemal", "ǆ", "Ǆ", "ﬁx",
          "FIX", "Ⅸ", "ⅸ", "ΟΔΟΣ", "οδος", "\u212a_kelvin", "k_kelvin", "Å", "å", "日本", "🚀_step",
          "step_start", "STEP_START", "Step_Success", "process[emea]", "PROCESS[EMEA]", "a.*b", ""]


def test_cached_selection_follows_each_frames_categories():
    # Same filter, frames with different step key categories, alternately: each frame
    # gets its own answer, never the previous frame's.
    a_records, a = frame(("STEP_START", "extract_a"), ("STEP_START", "load_b"))
    b_records, b = frame(("STEP_START", "load_b"), ("STEP_START", "extract_ab"), ("STEP_START", "x"))
    for _ in range(3):
        assert seqs(filter_events(a, step="extract")) == [0]
        assert seqs(filter_events(b, step="extract")) == [1]
        assert seqs(filter_events(a, step="load")) == [1]
        assert seqs(filter_events(b, step="load")) == [0]


def test_cache_is_keyed_on_the_categories_object_and_holds_no_frame():
    _, df = frame(("STEP_START", "extract_a"), ("STEP_SUCCESS", "extract_b"))
    categories = df["step_key"].cat.categories
    test = _Contains("extract_a")
    first = filters_module._selection(categories, test)
    assert filters_module._selection(categories, _Contains("extract_a")) is first
    # Equal values in another Index object: computed again (no stale identity).
    other = pd.Index(list(categories), dtype=categories.dtype)
    assert filters_module._selection(other, test) is not first
    # The cache does not keep an Index (or its frame) alive, and a new Index that may
    # reuse the dead one's id is not answered from the dead one's entry.
    ref = weakref.ref(categories)
    del df, categories, other
    gc.collect()
    assert ref() is None
    for _ in range(20):
        # Sorted categories ["aaa", "extract_a_2"]: a stale [True, False] would pick "aaa".
        _, fresh = frame(("STEP_START", "extract_a_2"), ("STEP_START", "aaa"))
        assert seqs(filter_events(fresh, step="extract_a")) == [0]


def test_a_cache_entry_whose_index_died_is_not_used_for_a_new_index_with_its_id():
    test = _Contains("extract_a")
    new = pd.Index(["aaa", "extract_a_2"])
    dead = pd.Index(["gone"])
    ref = weakref.ref(dead)
    del dead
    gc.collect()
    assert ref() is None
    # Forge the collision: the dead Index's entry under the new Index's id.
    filters_module._CACHE[(id(new), test.key)] = (ref, filters_module._Selection(np.array([True, False])))
    assert filters_module._selection(new, test).lut.tolist() == [False, True, False]


def test_cache_stays_bounded():
    _, df = frame(("STEP_START", "extract_a"))
    for i in range(filters_module._CACHE_SIZE * 2):
        filter_events(df, step=f"step-{i}")
    assert len(filters_module._CACHE) <= filters_module._CACHE_SIZE


def test_a_categorical_with_non_string_categories():
    # A frame not built by runlens: categories of mixed objects, non-strings never match.
    df = pd.DataFrame({
        "event_type": pd.Categorical(["STEP_START", 3, None, "step_start"]),
        "step_key": pd.Categorical(["a", "b", "a", 7]),
        "level": pd.Categorical(["DEBUG"] * 4),
    })
    assert filter_events(df, types="STEP_START").index.tolist() == [0, 3]
    assert filter_events(df, step="a").index.tolist() == [0, 2]


def arrow_index(values):
    return pd.Index(values, dtype=pd.StringDtype("pyarrow"))


@pytest.mark.parametrize("needle", ["ss", "ß", "i\u0307", "i", "k", "k_", "step", "[emea]", "ǆ", "ﬁ", "fi", "å",
                                    "日", "🚀", " ", ".*"])
def test_large_category_sets_are_tested_like_python(needle):
    values = TRICKY + [f"filler_{i}_{needle}" if i % 7 == 0 else f"filler_{i}" for i in range(300)]
    index = arrow_index(values)
    assert len(index) >= filters_module._VECTORIZE_AT
    test = _Contains(needle.lower())
    assert _category_hits(index, test).tolist() == _hits(values, test).tolist()


@pytest.mark.parametrize("wanted", [{"SS"}, {"\udcff"}, {"STRASSE", "STRAẞE"}, {"İSTANBUL", "ISTANBUL"}, {"Ǆ", "ǄEMAL"},
                                    {"FIX"}, {"Ⅸ"}, {"STEP_START", "STEP_SUCCESS"}, {"FILLER_3"}, {"I"}])
def test_large_category_sets_are_uppercased_like_python(wanted):
    values = TRICKY + [f"filler_{i}" for i in range(300)]
    index = arrow_index(values)
    test = _UpperIn(frozenset(wanted))
    assert _category_hits(index, test).tolist() == _hits(values, test).tolist()


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.text(STEP_ALPHABET, max_size=8), min_size=1, max_size=40, unique=True),
       needle=st.text(STEP_ALPHABET, min_size=1, max_size=3))
def test_property_vectorized_category_test(values, needle):
    index = arrow_index(values)
    original = filters_module._VECTORIZE_AT
    filters_module._VECTORIZE_AT = 1  # force the pyarrow path on small sets
    try:
        for test in (_Contains(needle.lower()), _UpperIn(frozenset([needle.upper(), needle.strip().upper()]))):
            assert _category_hits(index, test).tolist() == _hits(values, test).tolist()
    finally:
        filters_module._VECTORIZE_AT = original


def test_many_step_keys_with_unicode_follow_the_seed():
    keys = TRICKY[:-1] + [f"process_region[amer_{i}]" for i in range(400)] + ["PROCESS_REGION[Ω]", "ǅprocess_region"]
    records = [numbered(i, ["STEP_START", "STEP_SUCCESS", None][i % 3], keys[i % len(keys)]) for i in range(3000)]
    df = events_frame(records, "run-1")
    assert len(df["step_key"].cat.categories) >= filters_module._VECTORIZE_AT
    for step in ["process_region", "PROCESS_REGION[", "ss", "ß", "k_", "i\u0307", "ǆ", "_1]", "🚀"]:
        for types in [None, "STEP_START", "STEP_START,STEP_SUCCESS"]:
            expected = seed_reference(records, types, step)
            assert seqs(filter_events(df, types=types, step=step)) == expected, (types, step)
            assert np.flatnonzero(event_mask(df, types=types, step=step)).tolist() == expected


@pytest.mark.parametrize("sparse", [True, False])
def test_second_and_third_filters_on_positions_or_masks(sparse):
    # The first filter leaves few rows (positions path) or most rows (mask path).
    common = "STEP_START" if sparse else "STEP_OUTPUT"
    records = [
        numbered(i, common if i % 40 == 0 else "STEP_OUTPUT" if sparse else ("STEP_START" if i % 40 == 0 else common),
                 f"step_{i % 13}" if i % 9 else None, LEVELS[i % 5])
        for i in range(2000)
    ]
    df = events_frame(records, "run-1")
    first = event_mask(df, types="STEP_START" if sparse else "STEP_OUTPUT")
    assert (first.sum() * filters_module._SPARSE <= len(df)) == sparse
    for step in ["step_1", "STEP_", "nothing"]:
        for levels in [None, "DEBUG", "info,ERROR"]:
            types = "STEP_START" if sparse else "STEP_OUTPUT"
            expected = [s for s in seed_reference(records, types, step)
                        if levels is None or records[s]["level"] in parse_levels(levels)]
            assert seqs(filter_events(df, types=types, step=step, levels=levels)) == expected
            mask = event_mask(df, types=types, step=step, levels=levels)
            assert mask.dtype == bool and mask.shape == (len(df),)
            assert np.flatnonzero(mask).tolist() == expected


def test_parsed_filters_are_cached_but_still_validated_and_warned(run):
    assert seqs(filter_events(run, types="STEP_START", step="extract")) == [1, 3]
    assert seqs(filter_events(run, types=["STEP_START"], step="extract")) == [1, 3]
    for _ in range(2):  # an error is raised every time, not cached away
        with pytest.raises(InvalidFilter):
            filter_events(run, types=" , ")
        with pytest.raises(InvalidFilter):
            filter_events(run, step=3)
    for _ in range(2):  # and so is the warning
        with pytest.warns(UnknownEventTypeWarning, match="STEP_SUCESS"):
            filter_events(run, types="STEP_SUCESS")


def test_without_get_column_array_the_public_column_is_used(run, monkeypatch):
    expected = seqs(filter_events(run, types="STEP_START,STEP_FAILURE", step="[emea]", levels="debug,error"))
    monkeypatch.delattr(pd.DataFrame, "_get_column_array")
    assert seqs(filter_events(run, types="STEP_START,STEP_FAILURE", step="[emea]", levels="debug,error")) == expected
    with pytest.raises(InvalidArgument, match="step_key"):
        filter_events(run.drop(columns="step_key"), step="x")


def test_filtered_rows_are_independent_of_the_source(run):
    out = filter_events(run, types="STEP_START")
    out.loc[out.index[0], "message"] = "changed"
    out.loc[out.index[0], "seq"] = -1
    assert run.loc[out.index[0], "message"] == "m"
    assert run.loc[out.index[0], "seq"] == out.index[0]


def test_filtered_runlens_frame_is_the_take_of_the_mask(run):
    run.attrs["run_ids"] = ["run-1"]
    positions = np.flatnonzero(event_mask(run, types="STEP_START,STEP_SUCCESS"))
    got = filter_events(run, types="STEP_START,STEP_SUCCESS")
    pd.testing.assert_frame_equal(got, run.take(positions))
    assert got.attrs == run.attrs


def test_a_filter_with_a_lone_surrogate_matches_nothing_on_a_big_run():
    # Undecodable bytes in argv arrive as surrogates; Arrow cannot encode them.
    keys = [f"step_{i}" for i in range(400)]
    _, big = frame(*[("STEP_START", k) for k in keys])
    assert len(filter_events(big, step="\udcff")) == 0
    with pytest.warns(UnknownEventTypeWarning):
        assert len(filter_events(big, types="STEP_START\udcff")) == 0


@pytest.mark.parametrize("positions", [[], [0], [4, 1, 3], [0, 1, 2, 3, 4], [2, 2, 0]])
def test_take_rows_equals_dataframe_take_for_every_kind_of_column(positions):
    # take_rows rebuilds the frame from each column's own take: it must be DataFrame.take
    # for any column a user may add to an events frame, not only the events columns.
    frame = pd.DataFrame(
        {
            "ints": np.arange(5, dtype=np.int64),
            "floats": [0.5, np.nan, 2.5, 3.5, 4.5],
            "bools": [True, False, True, False, True],
            "objects": ["a", None, 3, "d", "e"],
            "utc": pd.date_range("2026-01-01", periods=5, freq="s", tz="UTC").as_unit("ms"),
            "naive": pd.date_range("2026-01-01", periods=5, freq="h"),
            "deltas": pd.to_timedelta([1, 2, None, 4, 5], unit="s"),
            "labels": pd.Categorical(["x", None, "y", "x", "z"], categories=["z", "y", "x"]),
            "ordered": pd.Categorical(["lo", "hi", "lo", None, "hi"], categories=["lo", "hi"], ordered=True),
            "text": pd.array(["α", None, "c" * 100, "", "e"], dtype="string[pyarrow]"),
            "more_text": pd.array([None, None, None, None, None], dtype="string[pyarrow]"),
            "nullable": pd.array([1, None, 3, 4, None], dtype="Int64"),
        },
        index=pd.Index([10, 20, 30, 40, 50], name="row"),
    )
    frame.attrs = {"run_ids": ["r1", "r2"], "cursors": {"r1": "c1"}, "nested": {"a": [1, 2]}}
    positions = np.array(positions, dtype=np.intp)
    got = take_rows(frame, positions)
    pd.testing.assert_frame_equal(got, frame.take(positions))
    # ... by its own path, not by falling back to DataFrame.take
    pd.testing.assert_frame_equal(filters_module._take_arrays(frame, positions), frame.take(positions))
    assert got.attrs == frame.attrs
    got.attrs["nested"]["a"].append(3)  # a copy, not the input's
    assert frame.attrs["nested"] == {"a": [1, 2]}
    assert frame["ints"].tolist() == [0, 1, 2, 3, 4]  # the input is untouched
