"""``since``/``until``: one parser for every time bound runlens takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import runlens
from runlens.timespec import parse_time


def test_parse_time_takes_durations_iso_dates_and_datetimes():
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_time("90d", now=now) == now - timedelta(days=90)
    assert parse_time(" 12h ", now=now) == now - timedelta(hours=12)
    assert parse_time("30m", now=now) == now - timedelta(minutes=30)
    assert parse_time("1.5H", now=now) == now - timedelta(hours=1.5)
    assert parse_time("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_time("2026-11-01T06:00Z") == datetime(2026, 11, 1, 6, tzinfo=UTC)
    assert parse_time("2026-11-01T08:00+02:00") == datetime(2026, 11, 1, 6, tzinfo=UTC)
    assert parse_time(datetime(2026, 11, 1, 6)) == datetime(2026, 11, 1, 6, tzinfo=UTC)
    assert parse_time(pd.Timestamp("2026-11-01T06:00Z")) == datetime(2026, 11, 1, 6, tzinfo=UTC)
    assert parse_time(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_time(None) is None
    for bad in ("yesterday", "90", "d", "", True, [1]):
        with pytest.raises(runlens.InvalidArgument, match="since must be a duration"):
            parse_time(bad)
