"""Small text conventions every output shares: UTC times, durations, error messages.

One home for each, so the CLI, the summaries, the plots and the widgets write a time
or a duration the same way.

>>> import pandas as pd
>>> iso_utc(pd.Timestamp("2026-11-26 14:03:07.250", tz="UTC"))
'2026-11-26T14:03:07.250Z'
>>> duration_text(pd.Timedelta(seconds=75.5))
'1 min 15.5 s'
>>> without_class_prefix("dagster.DagsterError: boom", "DagsterError")
'boom'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["MISSING", "LONE_SURROGATE", "duration_text", "iso_utc", "key_value_text", "now_iso",
           "replace_lone_surrogates", "without_class_prefix"]

#: What a missing time or duration reads as.
MISSING = "—"

#: A UTF-16 surrogate on its own: JSON may carry one ("\\ud800"), no encoder accepts it.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def iso_utc(value: Any, *, timespec: str = "milliseconds", missing: str | None = MISSING) -> str | None:
    """ISO 8601 text in UTC with a ``Z``: ``2026-11-26T14:03:07.250Z``.

    Parameters
    ----------
    value : datetime, pandas.Timestamp or None
        A naive value is taken as UTC.
    timespec : str, default "milliseconds"
        As :meth:`datetime.isoformat` (``"seconds"`` drops the fraction).
    missing : str or None, default "—"
        What None or NaT gives.
    """
    if value is None or (isinstance(value, float) and value != value):
        return missing
    if type(value) is datetime:  # pydantic's models hold these: no need to import pandas (`run get`)
        stamp = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    else:
        import pandas as pd

        if value is pd.NaT:
            return missing
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.isoformat(timespec=timespec).replace("+00:00", "Z")


def key_value_text(rows: list[tuple[str, str]]) -> str:
    """``(label, value)`` rows as two aligned columns, one row a line (summaries' ``str()``)."""
    width = max((len(k) for k, _ in rows), default=0)
    pad = "\n" + " " * (width + 2)  # a value of several lines stays in its column
    return "\n".join(f"{k:<{width}}  {v.replace(chr(10), pad)}" for k, v in rows)


def now_iso() -> str:
    """The current time as :func:`iso_utc` text, to the second (``attrs["fetched_at"]``)."""
    return iso_utc(datetime.now(UTC), timespec="seconds")  # type: ignore[return-value]


def duration_text(value: Any, *, missing: str = MISSING) -> str:
    """A duration as a person reads it: ``0.250 s``, ``12.5 s``, ``1 min 15.5 s``, ``2 h 05 min``.

    Parameters
    ----------
    value : pandas.Timedelta, datetime.timedelta, float seconds or None
    missing : str, default "—"
        What None or NaT/NaN gives.
    """
    if value is None or (isinstance(value, float) and value != value):
        return missing
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif type(value) is timedelta:  # no need to import pandas (`run get`)
        seconds = value.total_seconds()
    else:
        import pandas as pd

        if not isinstance(value, str) and pd.isna(value):
            return missing
        seconds = pd.Timedelta(value).total_seconds()
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 10:
        text = f"{seconds:.3f} s"
    elif seconds < 60:
        text = f"{seconds:.1f} s"
    elif seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        text = f"{int(minutes)} min {rest:04.1f} s"
    else:
        hours, rest = divmod(seconds, 3600)
        text = f"{int(hours)} h {int(rest // 60):02d} min"
    return sign + text


def without_class_prefix(message: str, error_class: object) -> str:
    """Drop a leading ``Class: `` (or ``pkg.mod.Class: ``) that repeats `error_class`."""
    # Dagster's messages repeat the class, often fully qualified: "pkg.mod.Cls: text".
    head, sep, rest = message.partition(": ")
    if sep and isinstance(error_class, str) and head.rsplit(".", 1)[-1] == error_class:
        return rest
    return message


def replace_lone_surrogates(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, so it can always be encoded."""
    return text if text.isascii() else LONE_SURROGATE.sub("\ufffd", text)
