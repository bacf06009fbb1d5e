"""runlens: Dagster runs as pandas DataFrames, plots, notebook widgets and a CLI.

>>> import runlens
>>> events = runlens.Client().events(run_id)      # doctest: +SKIP
>>> runlens.plot_timeline(events)                  # doctest: +SKIP

``import runlens`` is light: names are imported on first use (PEP 562), so pandas,
matplotlib, ipywidgets and dagster load only when something needs them.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Client": "client",
    "MockTransport": "transport",
    "Run": "models",
    "RunStatus": "models",
    "RunEventLevel": "models",
    "EventPage": "models",
    "RunStats": "models",
    "RunlensError": "errors",
    "ConfigError": "errors",
    "InvalidArgument": "errors",
    "InvalidFilter": "errors",
    "RunNotFound": "errors",
    "LogsNotFound": "errors",
    "LogText": "logs",
    "AssetNotFound": "errors",
    "AuthError": "errors",
    "TransportError": "errors",
    "RateLimited": "errors",
    "ServerError": "errors",
    "GraphQLError": "errors",
    "StoreError": "errors",
    "StoreLocked": "errors",
    "History": "history",
    "RunlensWarning": "errors",
    "UnknownEventTypeWarning": "filters",
    "filter_events": "filters",
    "step_durations": "steps",
    "run_summary": "summary",
    "duration_trend": "trends",
    "compare_step_durations": "trends",
    "plot_timeline": "plotting",
    "plot_step_durations": "plotting",
    "plot_step_comparison": "plotting",
    "plot_asset_metadata": "plotting",
    "plot_partition_status": "plotting",
    "events_frame": "frames",
    "concat_events": "frames",
    "frame_kind": "frames",
    "EVENT_TYPES": "event_types",
    "critical_path": "critical",
    "CriticalPath": "critical",
    "plan_from_events": "plan",
    "run_anatomy": "anatomy",
    "RunAnatomy": "anatomy",
    "compare_to_baseline": "baseline",
    "BaselineComparison": "baseline",
    "explain_run": "explain",
    "regressions": "regressions",
    "rollup": "regressions",
    "plot_percentile_trend": "plotting",
    "plot_heatmap": "plotting",
}

__all__ = sorted([*_EXPORTS, "run", "events", "runs", "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def run(run_id: str, **client_options: Any):
    """Fetch one run's metadata with a client configured from the environment.

    See :meth:`runlens.Client.run`; ``client_options`` go to :class:`runlens.Client`.
    """
    from .client import Client

    return Client(**client_options).run(run_id)


def events(run_id: str, *, types=None, step=None, levels=None, limit=None, **client_options: Any):
    """Fetch a run's events with a client configured from the environment.

    See :meth:`runlens.Client.events`; ``client_options`` go to :class:`runlens.Client`.
    """
    from .client import Client

    return Client(**client_options).events(run_id, types=types, step=step, levels=levels, limit=limit)


def runs(*, job=None, statuses=None, tags=None, created_after=None, created_before=None, limit=None,
         **client_options: Any):
    """List runs with a client configured from the environment.

    See :meth:`runlens.Client.runs`; ``client_options`` go to :class:`runlens.Client`
    (``url``, ``token``, ...).
    """
    from .client import Client

    return Client(**client_options).runs(job=job, statuses=statuses, tags=tags, created_after=created_after,
                                         created_before=created_before, limit=limit)


if "pandas" in sys.modules:  # pragma: no cover - depends on import order
    # Make ``df.runlens`` available on frames a user built before using runlens.
    importlib.import_module(".accessor", __name__)

if TYPE_CHECKING:  # pragma: no cover
    from .anatomy import RunAnatomy, run_anatomy  # noqa: F401
    from .baseline import BaselineComparison, compare_to_baseline  # noqa: F401
    from .client import Client  # noqa: F401
    from .critical import CriticalPath, critical_path  # noqa: F401
    from .errors import *  # noqa: F401,F403
    from .explain import explain_run  # noqa: F401
    from .filters import filter_events  # noqa: F401
    from .frames import concat_events, events_frame, frame_kind  # noqa: F401
    from .history import History  # noqa: F401
    from .logs import LogText  # noqa: F401
    from .models import EventPage, Run, RunEventLevel, RunStatus  # noqa: F401
    from .plan import plan_from_events  # noqa: F401
    from .plotting import (  # noqa: F401
        plot_asset_metadata,
        plot_heatmap,
        plot_partition_status,
        plot_percentile_trend,
        plot_step_comparison,
        plot_step_durations,
        plot_timeline,
    )
    from .regressions import regressions, rollup  # noqa: F401
    from .steps import step_durations  # noqa: F401
    from .summary import run_summary  # noqa: F401
    from .transport import MockTransport  # noqa: F401
    from .trends import compare_step_durations, duration_trend  # noqa: F401
