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


# ----------------------------------------------------------------- status grid

#: The cell values of :func:`partition_status_table`, and their colours.
GRID_STATES = {"": "#FFFFFF", "MATERIALIZED": COLORS["SUCCESS"], "FAILED": COLORS["FAILURE"],
               "MISSING": "#E6E6E6"}
#: At most this many runs are rows of the grid (the newest).
MAX_GRID_RUNS = 40


def partition_status_table(frame: pd.DataFrame, partitions: Any = None) -> pd.DataFrame:
    """Which run materialized (or failed) which partition: plain data behind the status grid.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :meth:`runlens.Client.asset_events` (materializations) of one asset.
    partitions : list of str, optional
        Every partition key of the asset, so those never materialized show as
        ``MISSING``; defaults to the partitions seen in ``frame``.

    Returns
    -------
    pandas.DataFrame
        Columns: the partitions in order. Rows: one per run (oldest first, labelled
        ``"<start UTC> <run id[:8]>"``) with ``MATERIALIZED``, ``FAILED`` or ``""`` (not
        in that run; a partition's last event in the run decides), then ``latest``: each
        partition's last status, ``MISSING`` if it has none.
    """
    _metadata_free_check(frame)
    data = frame[frame["partition"].notna() & frame["status"].isin(["MATERIALIZED", "FAILED"])]
    data = data.sort_values("timestamp", kind="stable")
    seen = _partition_keys(data["partition"])
    keys = seen if partitions is None else list(dict.fromkeys([*map(str, partitions), *seen]))
    runs = data.groupby(data["run_id"].astype(str), sort=False)["timestamp"].min().sort_values(kind="stable")
    rows = {}
    for run_id, start in runs.items():
        part = data[data["run_id"].astype(str) == run_id]
        last = part.groupby(part["partition"].astype(str), sort=False)["status"].last().astype(str)
        label = f"{start.tz_convert('UTC'):%Y-%m-%d %H:%M} {run_id[:8]}"
        rows[label] = [last.get(k, "") for k in keys]
    latest = data.groupby(data["partition"].astype(str), sort=False)["status"].last().astype(str)
    rows["latest"] = [latest.get(k, "MISSING") for k in keys]
    return pd.DataFrame.from_dict(rows, orient="index", columns=keys)


def _metadata_free_check(frame: Any) -> None:
    if not isinstance(frame, pd.DataFrame) or not (_NEEDED | {"run_id"}) <= set(frame.columns):
        raise InvalidArgument("expects an asset events frame (Client.asset_events), with columns "
                              f"{', '.join(sorted(_NEEDED | {'run_id'}))}")
    if frame["asset_key"].nunique() > 1:
        raise InvalidArgument("a status grid is of one asset; select one: frame[frame['asset_key'] == key]")


def plot_partition_status(frame: pd.DataFrame, *, partitions: Any = None, ax: Any = None,
                          title: str | None = None):
    """A partition × run grid: which run materialized or failed which partition, and the latest state.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :meth:`runlens.Client.asset_events` of one partitioned asset.
    partitions : list of str, optional
        Every partition key, so the ones never materialized show as missing (grey).
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        The grid is an image with ``gid="status_grid"``; the newest 40 runs are rows, the
        bottom row is each partition's latest state. See :func:`partition_status_table`.
    """
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    table = partition_status_table(frame, partitions)
    if len(table) > MAX_GRID_RUNS + 1:
        table = table.iloc[-(MAX_GRID_RUNS + 1):]
    if ax is None:
        ax = new_axes(len(table), width=min(4.0 + 0.35 * len(table.columns), 16.0), row=0.32)
    asset = ", ".join(sorted(frame["asset_key"].dropna().astype(str).unique())) or "no asset"
    ax.set_title(title or f"partitions of {asset} by run", loc="left", fontsize=11)
    if table.columns.empty:
        say_empty(ax, "no partitioned materializations")
        return ax
    states = list(GRID_STATES)
    codes = np.vectorize(states.index)(table.to_numpy(dtype=object))
    ax.imshow(codes, cmap=ListedColormap(list(GRID_STATES.values())), vmin=0, vmax=len(states) - 1, aspect="auto",
              interpolation="nearest", gid="status_grid")
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=90, fontsize=8)
    ax.set_yticks(range(len(table)), table.index, fontsize=8)
    ax.axhline(len(table) - 1.5, color=COLORS["text"], linewidth=1.0)  # above the "latest" row
    ax.set_xticks(np.arange(-0.5, len(table.columns)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(table)), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("partition")
    handles = [Patch(facecolor=GRID_STATES[s], edgecolor="#BBBBBB", label=s.lower()) for s in states[1:]]
    ax.legend(handles=handles, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax
