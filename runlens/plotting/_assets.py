"""An asset's metadata value over time or over its partitions (``Client.asset_events`` frames)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import InvalidArgument
from ._common import COLORS, date_axis, new_axes, say_empty, style, utc_naive
from ._trend import PALETTE

#: Beyond this many partitions, ``x="time"`` draws a line per asset, not per partition.
MAX_PARTITION_LINES = len(PALETTE)
#: Up to this many dated partitions get a tick each.
MAX_PARTITION_TICKS = 16
_NEEDED = {"timestamp", "asset_key", "partition", "status"}


def plot_asset_metadata(frame: pd.DataFrame, column: str, *, x: str = "time", ax: Any = None,
                        title: str | None = None):
    """Plot a numeric metadata value of asset events: over time, or over partitions.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :meth:`runlens.Client.asset_events` (one asset or several concatenated).
    column : str
        The metadata label, ``"row_count"`` or ``"meta.row_count"``.
    x : {"time", "partition"}
        ``"time"``: the value at each event's time, a line per partition (when one
        asset has at most 8) or per asset. ``"partition"``: the partitions along x (in
        order; dates as dates), a line per asset through each partition's latest value,
        earlier materializations of a partition as hollow grey dots.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.
    title : str, optional
        Defaults to the label and the asset.

    Returns
    -------
    matplotlib.axes.Axes
        Failed materializations are red crosses along the bottom (``gid="failed"``);
        lines carry ``gid="value"``.

    Raises
    ------
    InvalidArgument
        Not an asset events frame, no such metadata column, or a column that is not numeric.
    """
    if x not in ("time", "partition"):
        raise InvalidArgument(f'x must be "time" or "partition", not {x!r}')
    name = _metadata_column(frame, column)
    if ax is None:
        ax = new_axes(12, width=10.0)
    label = name[5:]
    assets = sorted(frame["asset_key"].dropna().astype(str).unique())
    ax.set_title(title or f"{label} of {', '.join(assets) or 'no asset'}", loc="left", fontsize=11)
    if frame.empty or frame[name].dropna().empty and not (frame["status"] == "FAILED").any():
        say_empty(ax, f"no {label} values to plot")
        return ax
    style(ax, grid="y")
    if x == "time":
        _over_time(frame, name, ax)
    else:
        _over_partitions(frame, name, ax)
    ax.set_ylabel(label)
    handles, labels = ax.get_legend_handles_labels()
    if labels:
        ax.legend(handles, labels, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def _metadata_column(frame: Any, column: str) -> str:
    if not isinstance(frame, pd.DataFrame) or not _NEEDED <= set(frame.columns):
        raise InvalidArgument("plot_asset_metadata expects an asset events frame (Client.asset_events), with "
                              f"columns {', '.join(sorted(_NEEDED))}")
    name = column if str(column).startswith("meta.") else f"meta.{column}"
    available = [c[5:] for c in frame.columns if c.startswith("meta.")]
    if name not in frame.columns:
        raise InvalidArgument(f"the frame has no metadata {column!r}; it has: {', '.join(available) or 'none'}")
    if not (pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name])):
        raise InvalidArgument(f"metadata {name[5:]!r} is {frame[name].dtype}, not numeric: nothing to plot as a line"
                              + (f" ({frame.attrs['metadata_notes'][name]})"
                                 if name in frame.attrs.get("metadata_notes", {}) else ""))
    return name


def _over_time(frame: pd.DataFrame, name: str, ax: Any) -> None:
    data = frame.sort_values("timestamp", kind="stable")
    partitions = data["partition"].dropna().astype(str).unique()
    by_partition = data["asset_key"].nunique() == 1 and 0 < len(partitions) <= MAX_PARTITION_LINES
    key = "partition" if by_partition else "asset_key"
    ok = data[data["status"] != "FAILED"]
    for i, (group, part) in enumerate(ok.groupby(ok[key].astype(object).fillna("(none)"), sort=True)):
        part = part[part[name].notna()]
        if part.empty:
            continue
        ax.plot(utc_naive(part["timestamp"]), part[name].astype(float).to_numpy(), marker="o", markersize=4,
                linewidth=1.4, color=PALETTE[i % len(PALETTE)], label=str(group), gid="value")
    _mark_failures(ax, data, lambda failed: utc_naive(failed["timestamp"]))
    date_axis(ax)
    ax.set_xlabel("materialized at (UTC)")


def _partition_keys(partitions: pd.Series) -> list[str]:
    """Partition keys in order: by date when every key is one, else as text."""
    keys = sorted(partitions.dropna().astype(str).unique())
    dates = pd.to_datetime(pd.Series(keys, dtype=object), errors="coerce", utc=True)
    if keys and dates.notna().all():
        return [k for _, k in sorted(zip(dates, keys, strict=True))]
    return keys


def _over_partitions(frame: pd.DataFrame, name: str, ax: Any) -> None:
    keys = _partition_keys(frame["partition"])
    if not keys:
        raise InvalidArgument('x="partition" needs partitioned events; these have no partition (use x="time")')
    dated = pd.to_datetime(pd.Series(keys, dtype=object), errors="coerce", utc=True)
    as_dates = dated.notna().all()
    where = dict(zip(keys, utc_naive(dated) if as_dates else range(len(keys)), strict=True))
    data = frame[frame["partition"].notna()].sort_values("timestamp", kind="stable")
    ok = data[(data["status"] != "FAILED") & data[name].notna()]
    earlier_labelled = False
    for i, (asset, part) in enumerate(ok.groupby(ok["asset_key"].astype(str), sort=True)):
        latest = part.groupby(part["partition"].astype(str), sort=False).tail(1)
        latest = latest.assign(_x=latest["partition"].astype(str).map(where)).sort_values("_x")
        ax.plot(latest["_x"].to_numpy(), latest[name].astype(float).to_numpy(), marker="o", markersize=5,
                linewidth=1.6, color=PALETTE[i % len(PALETTE)], label=f"{asset} (latest)", gid="value")
        earlier = part.drop(latest.index)
        if not earlier.empty:
            ax.scatter(earlier["partition"].astype(str).map(where).to_numpy(), earlier[name].astype(float).to_numpy(),
                       s=28, facecolors="none", edgecolors=COLORS["muted"], linewidths=1.1, zorder=3, gid="earlier",
                       label=None if earlier_labelled else "earlier materializations")
            earlier_labelled = True
    _mark_failures(ax, data, lambda failed: failed["partition"].astype(str).map(where).to_numpy())
    if as_dates and len(keys) <= MAX_PARTITION_TICKS:
        import matplotlib.dates as mdates

        ax.set_xticks(list(where.values()))  # one tick a partition, never one between two days
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d" if len(set(dated.dt.year)) == 1 else "%Y-%m-%d",
                                                          tz="UTC"))
    elif as_dates:
        date_axis(ax)
    else:
        ax.set_xticks(range(len(keys)), keys, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("partition")


def _mark_failures(ax: Any, data: pd.DataFrame, xs: Any) -> None:
    """Failed materializations as red crosses on the bottom edge (they carry no value)."""
    failed = data[data["status"] == "FAILED"]
    if failed.empty:
        return
    import numpy as np

    where = xs(failed)
    transform = ax.get_xaxis_transform()  # x in data, y in axes fractions
    ax.scatter(where, [0.02] * len(failed), transform=transform, marker="x", s=40, color=COLORS["FAILURE"],
               linewidths=1.6, zorder=4, clip_on=False, gid="failed", label="failed")
    # Points placed in axes fractions do not widen the x limits: a failure after the last
    # success would fall outside. Widen them by hand.
    ax.dataLim.update_from_data_x(np.asarray(ax.convert_xunits(where), dtype=float), ignore=False)
    ax.autoscale_view(scaley=False)
