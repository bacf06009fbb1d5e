"""``runlens run-events tail``: a run's events printed as they happen, its outcome as the exit code.

The events come from :meth:`runlens.Client.follow` (pushed over a websocket when the
webserver offers one, polled otherwise), filtered with the ``--type`` / ``--step`` /
``--level`` semantics of ``run-events get`` and printed in its formats: the rows of its
table (:class:`runlens.formatting.EventLines`), or with ``--json`` one JSON object a
line, each shaped like an item of its ``events``. Following ends when the run has ended
and its last events are in, or at the timeout.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .filters import filter_events, parse_types
from .formatting import EventLines, events_to_records
from .frames import empty_events_frame
from .vocabulary import TERMINAL_STATUSES

if TYPE_CHECKING:
    from .client import Client

__all__ = ["OUTCOME_EXIT_CODES", "TailResult", "tail"]

#: The exit code of ``run-events tail`` for each way a run ends (1-5 mean what they
#: mean for every command; 5 is also "--timeout ran out").
OUTCOME_EXIT_CODES = {"SUCCESS": 0, "FAILURE": 6, "CANCELED": 7}


@dataclass
class TailResult:
    """How a tail ended.

    Attributes
    ----------
    status : str or None
        The run's last known status.
    ended : bool
        Whether the run ended (SUCCESS, FAILURE or CANCELED); False when the timeout
        ran out (or following was stopped) first.
    events : int
        Events received; ``printed`` of them matched the filters.
    printed : int
    transport : str or None
        ``"websocket"`` or ``"polling"``.
    """

    status: str | None
    ended: bool
    events: int = 0
    printed: int = 0
    transport: str | None = None

    @property
    def exit_code(self) -> int:
        """0 SUCCESS, 6 FAILURE, 7 CANCELED; 5 when the run had not ended."""
        return OUTCOME_EXIT_CODES.get(self.status or "", 5) if self.ended else 5


def tail(
    client: Client,
    run_id: str,
    write: Callable[[str], None],
    *,
    types: str | None = None,
    step: str | list[str] | None = None,
    levels: str | None = None,
    cursor: str | None = None,
    as_json: bool = False,
    width: int | None = None,
    timeout: float | None = None,
    stop: threading.Event | None = None,
) -> TailResult:
    """Print a run's events from the start (or after ``cursor``) and as they happen, until it ends.

    Parameters
    ----------
    client : Client
    run_id : str
    write : callable
        Called with each line of output (no newline).
    types, step, levels : optional
        Filters, as ``run-events get``'s ``--type`` / ``--step`` / ``--level``.
    cursor : str, optional
        Print only the events after this cursor (``events().attrs["cursor"]``).
    as_json : bool
        One JSON object a line (an item of ``run-events get --json``'s ``events``).
    width : int, optional
        The terminal's width for the text rows; None for whole messages.
    timeout : float, optional
        Stop after this many seconds even if the run goes on.
    stop : threading.Event, optional
        Set it to stop following.

    Returns
    -------
    TailResult
        The run's status and whether it ended; ``exit_code`` for the CLI.

    Raises
    ------
    RunlensError
        A bad filter (before anything is fetched), a missing run, an unreachable server.
    """
    filtered = bool(parse_types(types) or step or levels)
    if filtered:
        # A bad filter fails before the first request; a typo was warned about by the caller.
        filter_events(empty_events_frame(run_id), types=types, step=step, levels=levels, warn=False)
    lines = None if as_json else EventLines(width)
    seen: dict[str, str | None] = {"status": None, "transport": None}
    result = TailResult(status=None, ended=False)

    def on_poll(count: int, status: str | None) -> None:
        seen["status"] = status

    def on_transport(name: str) -> None:
        seen["transport"] = name

    for batch in client.follow(run_id, after_cursor=cursor, timeout=timeout, stop=stop, on_poll=on_poll,
                               on_transport=on_transport):
        result.events += len(batch)
        matched = filter_events(batch, types=types, step=step, levels=levels, warn=False) if filtered else batch
        if not len(matched):
            continue
        if lines is not None:
            if result.printed == 0:
                for line in lines.head():
                    write(line)
            out = lines.lines(matched)
        else:
            out = [json.dumps(record, ensure_ascii=False) for record in events_to_records(matched)]
        result.printed += len(matched)
        for line in out:
            write(line)
    status = seen["status"]
    if status not in TERMINAL_STATUSES:
        # The timeout ran out, or the run ended just then: its status says which.
        status = str(client.run_status(run_id))
    result.status, result.transport = status, seen["transport"]
    result.ended = status in TERMINAL_STATUSES
    return result
