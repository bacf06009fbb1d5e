"""``since`` / ``until``: the one parser of the time bounds runlens takes everywhere.

Accepted forms (all UTC):

* a duration back from now: ``90d``, ``12h``, ``30m``, ``45s``, ``2w`` (a number and one
  unit; ``1.5h`` works);
* an ISO 8601 date (``2026-11-01``, midnight UTC) or datetime (``2026-11-01T06:00``,
  ``...Z`` or with an offset; naive means UTC);
* a ``datetime`` or ``pandas.Timestamp`` (naive means UTC);
* epoch seconds as an int or float.

Importable without pandas (the CLI parses ``--since`` before loading anything heavy).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .errors import InvalidArgument

__all__ = ["parse_time"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: Any, *, what: str = "since", now: datetime | None = None) -> datetime | None:
    """A time bound as an aware UTC ``datetime``; None stays None.

    Parameters
    ----------
    value : str, datetime, date, int, float or None
        See the module docstring.
    what : str
        The argument's name, for the error message.
    now : datetime, optional
        What durations count back from (default: the current time).

    Raises
    ------
    InvalidArgument
        Anything else, naming the forms accepted.

    Examples
    --------
    >>> parse_time("2026-11-01")
    datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> parse_time("12h", now=datetime(2026, 11, 2, tzinfo=UTC))
    datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise _bad(what, value)
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise _bad(what, value) from None
    if isinstance(value, datetime):  # pandas.Timestamp is one
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            delta = timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})
            return (now or datetime.now(UTC)) - delta
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _bad(what, value) from None
    else:
        raise _bad(what, value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if hasattr(moment, "to_pydatetime"):
        moment = moment.to_pydatetime()
    return moment.astimezone(UTC)


def _bad(what: str, value: Any) -> InvalidArgument:
    return InvalidArgument(f"{what} must be a duration back from now (90d, 12h, 30m), an ISO date or datetime "
                           f"(2026-11-01, 2026-11-01T06:00Z) or a datetime, not {value!r}")
