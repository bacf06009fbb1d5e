"""``Client``: runs, events, step stats and run lists from Dagster's GraphQL API.

pandas is imported only by the methods that build DataFrames, so ``runlens run get``
stays fast.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import queries
from .config import Settings, resolve
from .errors import InvalidArgument, RunlensError, RunNotFound, ServerError
from .models import EventPage, Run, check_cursor
from .timespec import parse_time
from .transport import Transport, raise_python_error
from .vocabulary import TERMINAL_STATUSES, RunStatus

if TYPE_CHECKING:
    import pandas as pd

    from .history import History
    from .logs import LogText

# Dagster serves at most this many events a page (DAGSTER_UI_EVENT_LOAD_CHUNK_SIZE,
# dagster PR #32028); asking for more is clamped silently.
MAX_PAGE_SIZE = 1000
RUNS_PAGE_SIZE = 500


class Client:
    """A connection to one Dagster GraphQL endpoint (OSS webserver or Dagster+).

    Parameters
    ----------
    url : str, optional
        The webserver or GraphQL URL; ``/graphql`` is appended when missing. Defaults to
        ``$RUNLENS_URL``, then the Dagster+ organization from the environment or the
        ``dg`` config files, then ``http://localhost:3000/graphql``.
    token, organization, deployment : str, optional
        Dagster+ credentials; default to ``DAGSTER_CLOUD_API_TOKEN``,
        ``DAGSTER_CLOUD_ORGANIZATION``, ``DAGSTER_CLOUD_DEPLOYMENT`` or the ``dg`` config.
        An OSS webserver needs none.
    timeout : float
        Seconds to wait for a connection and for each read.
    max_retries : int
        Retries on connection errors, 429, 502, 503, 504 and truncated answers.
    progress : bool, optional
        Show a progress bar on fetches of more than one page. ``None`` (default): only
        when standard error is a terminal or the code runs in Jupyter.
    ca_bundle : str, optional
        A PEM file of certificate authorities to trust (e.g. a corporate CA); defaults to
        ``$RUNLENS_CA_BUNDLE``. TLS verification is always on.
    transport : Transport, optional
        What sends the queries, instead of a :class:`runlens.transport.Transport` built
        from the options above (which must then be left out: the transport holds the
        endpoint and its settings). In tests, a :class:`runlens.MockTransport` answers
        without a network; any object with ``execute(query, variables, *, run_id=None,
        fast=None)`` returning the answer's ``data`` will do.
    history : runlens.History, optional
        A store synced from this deployment: :meth:`events` of a run whose events it
        holds final is read from it (the same frame, no request); any other run from
        the server.

    Examples
    --------
    >>> client = runlens.Client("http://localhost:3000")       # doctest: +SKIP
    >>> events = client.events(run_id)                          # doctest: +SKIP

    Without a server, e.g. in a test:

    >>> def answer(request):
    ...     return {"data": {"runOrError": {"__typename": "Run", "id": "abc", "status": "SUCCESS"}}}
    >>> runlens.Client(transport=runlens.MockTransport(answer)).run("abc").status
    <RunStatus.SUCCESS: 'SUCCESS'>
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        organization: str | None = None,
        deployment: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 4,
        progress: bool | None = None,
        backoff: float = 0.5,
        ca_bundle: str | None = None,
        env: dict[str, str] | None = None,
        transport: Transport | None = None,
        history: History | None = None,
    ) -> None:
        self.progress = progress
        self.history = history
        if transport is None:
            self.settings: Settings = resolve(url, token=token, organization=organization, deployment=deployment,
                                              ca_bundle=ca_bundle, env=env)
            self.transport = Transport(self.settings, timeout=timeout, max_retries=max_retries, backoff=backoff)
        else:
            given = [name for name, value in (("url", url), ("token", token), ("organization", organization),
                                              ("deployment", deployment), ("ca_bundle", ca_bundle), ("env", env),
                                              ("timeout", timeout != 30.0 or None),
                                              ("max_retries", max_retries != 4 or None),
                                              ("backoff", backoff != 0.5 or None)) if value is not None]
            self.transport, self.settings = _adopted(transport, given)

    def __repr__(self) -> str:
        return f"runlens.Client({self.settings.describe()})"

    @property
    def url(self) -> str:
        """The GraphQL endpoint requests go to (a password in it masked)."""
        return self.settings.display_url

    @property
    def deployment_identity(self) -> str:
        """The deployment this client talks to: the endpoint, plus the Dagster+ organization
        and deployment, which share one URL. What a History store is keyed by; never the token."""
        identity = self.url
        for name in ("organization", "deployment"):
            value = getattr(self.settings, name, None)
            if value:
                identity += f" {name}={value}"
        return identity

    # -- runs -------------------------------------------------------------------------

    def run(self, run_id: str) -> Run:
        """Fetch one run's metadata.

        Returns
        -------
        Run
            Status, job, times (UTC), tags and ``stats``.

        Raises
        ------
        RunNotFound
            If the server has no run with this id.
        """
        run_id = _check_run_id(run_id)
        result = self._run_or_error(queries.RUN, run_id)
        try:
            return Run.model_validate(result)
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()[:3])
            raise ServerError(f"{self.url} answered a run record runlens cannot read ({fields})",
                              run_id=run_id) from None

    def run_status(self, run_id: str) -> RunStatus | str:
        """A run's status alone: a cheap query for polling."""
        run_id = _check_run_id(run_id)
        status = self._run_or_error(queries.RUN_STATUS, run_id)["status"]
        try:
            return RunStatus(status)
        except ValueError:
            return status

    def _run_or_error(self, query: str, run_id: str) -> dict:
        result = self.transport.execute(query, {"runId": run_id}, run_id=run_id).get("runOrError")
        self._raise_for_result(result, run_id)
        return result

    def _raise_for_result(self, result: Any, run_id: str | None) -> None:
        if not isinstance(result, dict):
            raise ServerError(f"{self.url} answered without a result for run {run_id!r}", run_id=run_id)
        typename = result.get("__typename")
        if typename == "RunNotFoundError":
            raise RunNotFound(
                f"run {run_id!r} not found on {self.url}: check the id, and that the URL points at "
                "the deployment that ran it",
                run_id=run_id,
            )
        raise_python_error(result, run_id=run_id)
        if typename not in ("Run", "EventConnection", "Runs"):
            raise ServerError(
                f"{self.url} answered {typename}: {result.get('message', 'no message')}", run_id=run_id
            )

    def runs(
        self,
        *,
        job: str | None = None,
        statuses: Sequence[str | RunStatus] | str | None = None,
        tags: dict[str, str] | None = None,
        created_after: datetime | str | float | None = None,
        created_before: datetime | str | float | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> pd.DataFrame:
        """List runs, newest first.

        Parameters
        ----------
        job : str, optional
            Only runs of this job (Dagster's ``RunsFilter.pipelineName``).
        statuses : str or list of str, optional
            Only runs in any of these statuses (ORed), e.g. ``["FAILURE", "CANCELED"]``.
        tags : dict, optional
            Only runs carrying all these tags.
        created_after, created_before : optional
            Strict bounds on the creation time, in the forms of :mod:`runlens.timespec`: a
            duration back from now (``7d``), an ISO date or datetime, a ``datetime``, epoch
            seconds; naive times are UTC.
        limit : int, optional
            At most this many runs; all matching runs when omitted.
        cursor : str, optional
            A run id: list the runs after it in this order (older ones), e.g. the last
            ``run_id`` of a previous call, to page through runs.

        Returns
        -------
        pandas.DataFrame
            See :func:`runlens.frames.runs_frame`; ``attrs["count"]`` is the number of
            runs matching the filter on the server.
        """
        from .frames import runs_frame
        from .text import now_iso

        run_filter: dict[str, Any] = {}
        if job:
            run_filter["pipelineName"] = job
        if statuses:
            run_filter["statuses"] = _check_statuses(statuses)
        if tags:
            if not isinstance(tags, dict):
                raise InvalidArgument(f"tags must be a dict of tag names to values, not {tags!r}")
            run_filter["tags"] = [{"key": str(k), "value": str(v)} for k, v in tags.items()]
        if created_after is not None:
            run_filter["createdAfter"] = _epoch_seconds(created_after, "created_after")
        if created_before is not None:
            run_filter["createdBefore"] = _epoch_seconds(created_before, "created_before")
        if limit is not None:
            limit = _check_count("limit", limit)

        records: list[dict] = []
        count = None
        if cursor is not None:
            cursor = _check_run_id(cursor)
        for page, page_count in self._run_record_pages(run_filter, limit, cursor=cursor):
            records.extend(page)
            count = page_count
        frame = runs_frame(records)
        frame.attrs.update(endpoint=self.url, count=count, fetched_at=now_iso())
        return frame

    def _run_record_pages(self, run_filter: dict[str, Any], limit: int | None = None, *,
                          cursor: str | None = None) -> Iterator[tuple[list, Any]]:
        """Raw ``runsOrError`` records matching ``run_filter`` (a ``RunsFilter``), newest first, a page at a
        time with the server's ``count``; at most ``limit`` records, after the run id ``cursor`` if given."""
        got = 0
        while limit is None or got < limit:
            page_size = RUNS_PAGE_SIZE if limit is None else min(RUNS_PAGE_SIZE, limit - got)
            variables = {"filter": run_filter or None, "cursor": cursor, "limit": page_size}
            page, count = self._runs_page(queries.RUNS, variables)
            got += len(page)
            yield page, count
            cursor = page[-1].get("id") if page else None
            if len(page) < page_size or not isinstance(cursor, str):
                break

    def _runs_page(self, query: str, variables: dict[str, Any]) -> tuple[list[dict], Any]:
        """One ``runsOrError`` answer to ``query``: its run records, checked, and the server's ``count``."""
        result = self.transport.execute(query, variables).get("runsOrError")
        if isinstance(result, dict) and result.get("__typename") == "InvalidPipelineRunsFilterError":
            raise InvalidArgument(f"the server rejected the run filter: {result.get('message')}")
        self._raise_for_result(result, None)
        page = result.get("results") or []
        if not isinstance(page, list) or not all(isinstance(r, dict) for r in page):
            raise ServerError(f"{self.url} answered a malformed run list (results is not a list of runs)")
        return page, result.get("count")

    # -- events -----------------------------------------------------------------------

    def iter_event_pages(
        self, run_id: str, *, after_cursor: str | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[EventPage]:
        """Yield the run's events page by page, in storage order, until the log ends.

        The next page is requested while the caller works on the current one.

        Parameters
        ----------
        run_id : str
        after_cursor : str, optional
            Start after this cursor (exclusive), e.g. ``err.cursor`` of an interrupted
            fetch, or the last page's ``cursor`` to poll a run in progress.
        page_size : int
            Events per request, 1 to 1000 (Dagster's cap).

        Yields
        ------
        EventPage
            ``len(page)`` events: ``page.frame()`` (typed, ``seq`` counted from the
            fetch's start), ``page.events`` (the raw records), ``page.cursor``,
            ``page.has_more``.

        Raises
        ------
        RunlensError
            With ``events_fetched`` and ``cursor`` set, to resume from.
        """
        run_id = _check_run_id(run_id)
        page_size = _check_count("page_size", page_size, high=MAX_PAGE_SIZE)
        yield from self._pages(run_id, after_cursor, lambda fetched: page_size)

    def _pages(self, run_id: str, cursor: str | None, size_for: Callable[[int], int]) -> Iterator[EventPage]:
        """Pages of ``size_for(events so far)`` events until the log ends (or a size is 0), one request ahead."""
        check_cursor(cursor, run_id)
        start = cursor
        fetched = 0
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runlens-prefetch")
        try:
            future: Future = pool.submit(self._fetch_page, run_id, cursor, size_for(0), 0)
            while True:
                try:
                    page = future.result()
                except RunlensError as exc:
                    if isinstance(exc, ServerError) and fetched == 0 and start is not None:
                        # Dagster fails to decode a cursor it did not make (HTTP 500, PythonError).
                        exc.message = (f"{exc.message}; Dagster could not read events after the cursor {start!r}: "
                                       "pass a cursor runlens returned (a page's cursor, "
                                       "events().attrs['cursor'] or err.cursor)")
                        exc.args = (exc.message,)
                    exc.add_progress(fetched, cursor)
                    raise
                fetched += len(page)
                if page.cursor:
                    cursor = page.cursor
                more = page.has_more and len(page) > 0
                if more:
                    size = size_for(fetched)
                    if size:
                        future = pool.submit(self._fetch_page, run_id, cursor, size, fetched)
                    else:
                        more = False
                yield page
                if not more:
                    return
        finally:
            # A caller that stops early (a limit reached) must not wait for a prefetch.
            pool.shutdown(wait=False, cancel_futures=True)

    def _fetch_page(self, run_id: str, cursor: str | None, page_size: int, start_seq: int = 0) -> EventPage:
        """One page: decoded straight into columns by the typed fast path, else checked the general way."""
        from .event_decoder import decode_events_page

        variables = {"runId": run_id, "afterCursor": cursor, "limit": page_size}
        result = self.transport.execute(queries.EVENTS, variables, run_id=run_id,
                                        fast=lambda body: decode_events_page(body, run_id, start_seq=start_seq))
        if isinstance(result, EventPage):
            return result
        return self._checked_page(result, run_id, start_seq)

    def _checked_page(self, data: Any, run_id: str, start_seq: int) -> EventPage:
        result = data.get("logsForRun") if isinstance(data, dict) else None
        self._raise_for_result(result, run_id)
        events, next_cursor = result.get("events") or [], result.get("cursor")
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events) or not (
            next_cursor is None or isinstance(next_cursor, str)
        ):
            raise ServerError(
                f"{self.url} answered a malformed page of events for run {run_id!r} (events must be a list "
                "of objects, cursor a string); is something between runlens and Dagster rewriting answers?",
                run_id=run_id,
            )
        return EventPage(run_id, events=events, cursor=next_cursor, has_more=result.get("hasMore") is True,
                         start_seq=start_seq)

    def events(
        self,
        run_id: str,
        *,
        types: str | Sequence[str] | None = None,
        step: str | None = None,
        levels: str | Sequence[str] | None = None,
        limit: int | None = None,
        progress: bool | None = None,
        after_cursor: str | None = None,
    ) -> pd.DataFrame:
        """Fetch the events of a run as a typed DataFrame, in storage order.

        Parameters
        ----------
        run_id : str
        types : str or list of str, optional
            Event types to keep (``"STEP_START,STEP_FAILURE"``), the ``--type`` semantics.
        step : str, optional
            Keep events whose step key contains this, case-insensitively (``--step``).
        levels : str or list of str, optional
            Keep events at these levels.
        limit : int, optional
            Return at most this many matching events: the *first* matches in the log.
            Without filters the fetch stops once enough rows are in hand (plus a
            one-event request to tell whether more follow); with filters it scans on
            until one match more than ``limit`` is found, or the log ends.
        progress : bool, optional
            Overrides the client's progress setting for this call.
        after_cursor : str, optional
            Start after this cursor instead of at the beginning (``seq`` then counts from
            0 at the cursor).

        Returns
        -------
        pandas.DataFrame
            Columns as documented in :mod:`runlens.frames`. ``attrs`` holds ``run_ids``,
            ``endpoint``, ``fetched_at``, ``filtered``, ``cursor`` (to resume or poll
            from: it lies after the last row returned), ``has_more`` (True when ``limit``
            cut the result: at least one more matching event exists) and ``complete``
            (``not has_more``: every matching event of the log is in the frame).
        """
        from .filters import filter_events, parse_types
        from .frames import empty_events_frame
        from .text import now_iso

        run_id = _check_run_id(run_id)
        if limit is not None:
            limit = _check_count("limit", limit)
        filtered = bool(parse_types(types) or step or levels)
        if self.history is not None and limit is None and after_cursor is None:
            stored = self._stored_events(run_id)
            if stored is not None:
                result = stored
                if filtered:  # as a fetch returns them: the matches, indexed from 0
                    result = filter_events(stored, types=types, step=step, levels=levels).reset_index(drop=True)
                result.attrs.update(run_ids=[run_id], endpoint=self.url, fetched_at=now_iso(), complete=True,
                                    cursor=stored.attrs.get("cursor"), filtered=filtered, has_more=False)
                return result
        if filtered:
            # Fail on a bad filter before any request is sent.
            filter_events(empty_events_frame(run_id), types=types, step=step, levels=levels)
        with self._progress_bar(run_id, progress) as on_page:
            if filtered:
                # The check above warned about a typo once; pages must not warn again.
                match = partial(filter_events, types=types, step=step, levels=levels, warn=False)
                result, cursor, has_more = self._collect_matches(run_id, after_cursor, limit, match, on_page)
            else:
                result, cursor, has_more = self._collect_all(run_id, after_cursor, limit, on_page)
        result.attrs.update(run_ids=[run_id], endpoint=self.url, fetched_at=now_iso(), complete=not has_more,
                            cursor=cursor, filtered=filtered, has_more=has_more)
        return result

    def _stored_events(self, run_id: str) -> pd.DataFrame | None:
        """The run's events from ``history`` if it holds them final and is a store of this deployment."""
        if self.history.endpoint() != self.deployment_identity:
            return None
        return self.history.final_events(run_id)

    def _collect_all(self, run_id: str, cursor: str | None, limit: int | None,
                     on_page: Callable[[EventPage], None]) -> tuple[pd.DataFrame, str | None, bool]:
        """Every event after ``cursor``, or the first ``limit``: (frame, cursor after it, more exist)."""
        from .frames import EventColumns

        # Pages arrive as columns, decoded by the fetching thread while this one appends
        # the page before; the frame is built once at the end (a frame per page and
        # their concatenation cost more: see EventColumns).
        columns = EventColumns(run_id)

        def size_for(fetched: int) -> int:
            return MAX_PAGE_SIZE if limit is None else min(MAX_PAGE_SIZE, limit - fetched)

        for page in self._pages(run_id, cursor, size_for):
            columns.extend(page.columns, None if limit is None else limit - len(columns))
            cursor = page.cursor or cursor
            on_page(page)
        # Pages were sized to end exactly at the limit: one event more says whether more follow.
        has_more = limit is not None and len(columns) >= limit and len(self._fetch_page(run_id, cursor, 1)) > 0
        return columns.frame(), cursor, has_more

    def _collect_matches(self, run_id: str, cursor: str | None, limit: int | None,
                         match: Callable[[pd.DataFrame], pd.DataFrame],
                         on_page: Callable[[EventPage], None]) -> tuple[pd.DataFrame, str | None, bool]:
        """The events ``match`` keeps, at most ``limit``: (frame, cursor after it, more match).

        Pages are scanned until a match beyond ``limit`` proves more exist, or the log ends.
        """
        from .frames import concat_events, empty_events_frame

        parts: list[pd.DataFrame] = []
        matched = 0
        for page in self._pages(run_id, cursor, lambda fetched: MAX_PAGE_SIZE):
            page_start, cursor = cursor, page.cursor or cursor
            frame = match(page.frame())
            on_page(page)
            if limit is not None and matched + len(frame) > limit:
                keep = limit - matched
                parts.append(frame.iloc[:keep])
                # The page's cursor lies past matches not returned: the cursor to resume
                # from is the one just before the first of them (re-read up to it).
                before = int(frame["seq"].iloc[keep]) - page.start_seq
                cursor = (self._fetch_page(run_id, page_start, before).cursor or page_start) if before else page_start
                return concat_events(parts), cursor, True
            parts.append(frame)
            matched += len(frame)
        return (concat_events(parts) if parts else empty_events_frame(run_id)), cursor, False

    @contextmanager
    def _progress_bar(self, run_id: str, progress: bool | None) -> Iterator[Callable[[EventPage], None]]:
        """A callback counting pages into a progress bar, shown from the first full page on."""
        show = self._show_progress(progress)
        bar = None

        def on_page(page: EventPage) -> None:
            nonlocal bar
            if bar is None and page.has_more and show:
                from tqdm.auto import tqdm

                bar = tqdm(desc=f"run {run_id[:8]}", unit=" events", leave=False)
            if bar is not None:
                bar.update(len(page))

        try:
            yield on_page
        finally:
            if bar is not None:
                bar.close()

    def events_many(
        self,
        run_ids: Iterable[str],
        *,
        max_workers: int = 4,
        types: str | Sequence[str] | None = None,
        step: str | None = None,
        levels: str | Sequence[str] | None = None,
        progress: bool | None = None,
        errors: str = "raise",
    ) -> pd.DataFrame:
        """Fetch the events of many runs concurrently into one frame.

        At most ``max_workers`` runs are fetched at once, so a server is never hit
        by a burst. Rows keep storage order within each run; runs follow the order of
        ``run_ids``.

        Parameters
        ----------
        run_ids : iterable of str
        max_workers : int
            Runs fetched at once.
        types, step, levels : optional
            Filters, as in :meth:`events`.
        progress : bool, optional
            Overrides the client's progress setting for this call.
        errors : {"raise", "skip"}, default "raise"
            What a run id that names no run (:class:`RunNotFound`), or is not a run id
            at all, does: ``"raise"`` fails the whole call at once; ``"skip"`` leaves the
            run out and reports it in ``attrs["skipped"]``. Other errors (network,
            token) always raise.

        Returns
        -------
        pandas.DataFrame
            As :meth:`events`, concatenated with :func:`runlens.concat_events`:
            ``attrs["run_ids"]`` lists the runs fetched, ``attrs["skipped"]`` maps each
            run id left out to the reason (empty unless ``errors="skip"``),
            ``attrs["cursors"]`` each run's cursor.
        """
        from .frames import concat_events, empty_events_frame

        if errors not in ("raise", "skip"):
            raise InvalidArgument(f'errors must be "raise" or "skip", not {errors!r}')
        max_workers = _check_count("max_workers", max_workers)
        if isinstance(run_ids, str):
            raise InvalidArgument(f"run_ids must be a list of run ids, not the string {run_ids!r}")
        skipped: dict[str, str] = {}
        wanted: list[str] = []
        for run_id in run_ids:
            try:
                wanted.append(_check_run_id(run_id))
            except InvalidArgument as exc:
                if errors == "raise":
                    raise
                skipped[str(run_id)] = str(exc)
        wanted = list(dict.fromkeys(wanted))
        frames = self._fetch_runs(wanted, max_workers, progress, skipped if errors == "skip" else None,
                                  partial(self.events, types=types, step=step, levels=levels, progress=False))
        result = concat_events(frames[r] for r in wanted if r in frames) if frames else empty_events_frame()
        if not frames:
            result.attrs.update(run_ids=[], endpoint=self.url, complete=True, has_more=False)
        result.attrs["skipped"] = skipped
        return result

    def _fetch_runs(self, run_ids: list[str], max_workers: int, progress: bool | None,
                    skipped: dict[str, str] | None, fetch: Callable[[str], pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """``fetch(run_id)`` of each run, ``max_workers`` at a time; runs not found go to ``skipped`` if given."""
        bar = None
        if self._show_progress(progress) and len(run_ids) > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(run_ids), desc="runs", unit=" runs", leave=False)
        frames: dict[str, pd.DataFrame] = {}
        pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="runlens-run")
        futures = {pool.submit(fetch, r): r for r in run_ids}
        failed = True
        try:
            for future, run_id in futures.items():
                try:
                    frames[run_id] = future.result()
                except RunNotFound as exc:
                    if skipped is None:
                        raise
                    skipped[run_id] = str(exc)
                if bar is not None:
                    bar.update(1)
            failed = False
        finally:
            # On an error, raise now: queued runs are cancelled, running ones finish unseen.
            pool.shutdown(wait=not failed, cancel_futures=True)
            if bar is not None:
                bar.close()
        return frames

    def follow(
        self,
        run_id: str,
        *,
        after_cursor: str | None = None,
        start_seq: int = 0,
        interval: float = 2.0,
        grace: float = 1.0,
        timeout: float | None = None,
        stop: threading.Event | None = None,
        on_poll: Callable[[int, str | None], None] | None = None,
        push: bool | None = None,
        on_transport: Callable[[str], None] | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Yield a run's events as they are stored, until the run has ended.

        Over a websocket when the server offers one (the webserver pushes each event as it
        is stored: no request while nothing happens), else by polling from the last cursor
        every ``interval`` seconds; either way every event comes exactly once, in storage
        order, in frames of the same dtypes. Once the run's status is terminal it keeps
        draining until ``grace`` seconds bring nothing new (Dagster stores an ENGINE_EVENT
        after RUN_SUCCESS/FAILURE/CANCELED). A dropped websocket reconnects from the last
        cursor (bounded backoff); when it cannot, following goes on by polling. See
        :mod:`runlens.push`.

        Parameters
        ----------
        run_id : str
        after_cursor : str, optional
            Continue after this cursor, e.g. ``events().attrs["cursor"]``.
        start_seq : int
            ``seq`` of the first new event (the number of events already held).
        interval, grace : float
            Seconds between polls (when polling); seconds to keep draining after the run ended.
        timeout : float, optional
            Stop after this many seconds even if the run goes on (a run that never
            starts is followed for ever otherwise).
        stop : threading.Event, optional
            Set it to stop following (from another thread); waits end at once.
        on_poll : callable, optional
            Called with a count and the run's latest status after every poll, or, over a
            websocket, after every batch and status check.
        push : bool, optional
            None (default): the websocket if the server offers it (found out once per
            client, within a few seconds), polling otherwise. True: the websocket or a
            :class:`TransportError` (:class:`AuthError` if it was refused for the
            credentials). False: always poll.
        on_transport : callable, optional
            Called with ``"websocket"`` or ``"polling"`` once the transport is chosen, and
            again if following goes on by polling after the websocket failed.

        Yields
        ------
        pandas.DataFrame
            Each batch of new events; ``seq`` continues across batches, ``attrs`` holds
            ``cursor``, ``status`` and ``transport`` (``"websocket"`` or ``"polling"``).
        """
        from .push import follow

        return follow(self, _check_run_id(run_id), after_cursor=after_cursor, start_seq=start_seq, interval=interval,
                      grace=grace, timeout=timeout, stop=stop, on_poll=on_poll, on_transport=on_transport, push=push)

    def _poll(self, run_id: str, *, after_cursor: str | None, start_seq: int, interval: float, grace: float,
              timeout: float | None, stop: threading.Event | None,
              on_poll: Callable[[int, str | None], None] | None) -> Iterator[pd.DataFrame]:
        """:meth:`follow` by polling ``logsForRun`` from the last cursor (nothing is fetched twice)."""
        from .frames import EventColumns

        stop = stop or threading.Event()
        cursor, seq, polls = after_cursor, start_seq, 0
        status: str | None = None
        ended_at: float | None = None
        started = time.monotonic()
        while not stop.is_set():
            batch = EventColumns(run_id, start_seq=seq)
            for page in self._pages(run_id, cursor, lambda fetched: MAX_PAGE_SIZE):
                batch.extend(page.columns)
                cursor = page.cursor or cursor
            seq += len(batch)
            polls += 1
            if ended_at is None:
                status = str(self.run_status(run_id))
                if status in TERMINAL_STATUSES:
                    ended_at = time.monotonic()
            if on_poll is not None:
                on_poll(polls, status)
            if batch:
                frame = batch.frame()
                frame.attrs.update(run_ids=[run_id], endpoint=self.url, cursor=cursor, status=status,
                                   transport="polling")
                yield frame
            now = time.monotonic()
            if ended_at is not None and not batch and now - ended_at >= grace:
                return
            if timeout is not None and now - started > timeout:
                return
            stop.wait(min(interval, grace) if ended_at is not None else interval)

    # -- steps ------------------------------------------------------------------------

    def step_stats(self, run_id_or_ids: str | Iterable[str], *, max_workers: int = 4) -> pd.DataFrame:
        """Dagster's own per-step numbers (``Run.stepStats``), one row per run and step.

        Returns
        -------
        pandas.DataFrame
            See :func:`runlens.frames.step_stats_frame`.
        """
        from .frames import step_stats_frame
        from .text import now_iso

        run_ids = [run_id_or_ids] if isinstance(run_id_or_ids, str) else list(run_id_or_ids)
        run_ids = [_check_run_id(r) for r in run_ids]
        max_workers = _check_count("max_workers", max_workers)

        def one(run_id: str) -> list[tuple[str, dict]]:
            result = self._run_or_error(queries.STEP_STATS, run_id)
            return [(run_id, s) for s in result.get("stepStats") or []]

        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(run_ids) or 1))) as pool:
            rows = [row for chunk in pool.map(one, run_ids) for row in chunk]
        frame = step_stats_frame(rows)
        frame.attrs.update(run_ids=run_ids, endpoint=self.url, fetched_at=now_iso())
        return frame

    def execution_plan(self, run_id: str, *, resolve: bool = True) -> pd.DataFrame:
        """The run's dependency graph (``Run.executionPlan``) as an edges frame.

        Parameters
        ----------
        run_id : str
        resolve : bool, default True
            Map dynamic steps (``process[?]``) onto the keys that ran (``process[emea]``,
            from the run's ``stepStats``, asked for in the same request).

        Returns
        -------
        pandas.DataFrame
            One row per step input and the step it depends on: ``step_key``, ``kind``,
            ``input``, ``upstream`` (a step with no inputs: one row, NA input and
            upstream). See :func:`runlens.plan.plan_frame`.

        Raises
        ------
        RunNotFound
            If the server has no run with this id.
        """
        from .plan import plan_frame, resolve_plan

        run_id = _check_run_id(run_id)
        result = self._run_or_error(queries.EXECUTION_PLAN, run_id)
        plan = plan_frame(((result.get("executionPlan") or {}).get("steps")) or [], run_id)
        if resolve:
            keys = [s.get("stepKey") for s in result.get("stepStats") or []]
            plan = resolve_plan(plan, keys)
        plan.attrs.update(endpoint=self.url)
        return plan

    # -- compute logs -----------------------------------------------------------------

    def logs(self, run_id: str, step: str | None = None, *, stream: str = "stderr",
             max_bytes: int | None = None) -> LogText:
        """What a run's steps printed: the captured stdout/stderr (Dagster's compute logs).

        Parameters
        ----------
        run_id : str
        step : str, optional
            Only this step's log. With the in-process executor the run has one log file
            for all its steps: the text is then the whole run's (``notes`` says so, and a
            ``RunlensWarning``). A retried step has a file per attempt, each under a header.
        stream : {"stderr", "stdout", "both"}
            Where Dagster's own log lines and tracebacks go is stderr, hence the default.
        max_bytes : int, optional
            Keep only the last `max_bytes` bytes of each file (one range request, however
            large the log).

        Returns
        -------
        LogText
            A ``str``: one file and stream as Dagster stored it (decoded as UTF-8,
            undecodable bytes as U+FFFD, ANSI codes kept); several under ``==> step: stream
            <==`` headers. ``.notes``, ``.parts``, ``.truncated``, ``.tail(n)``.

        Raises
        ------
        RunNotFound
            Unknown run.
        LogsNotFound
            The run, or the step, has no captured compute logs (never started, skipped).
        """
        from .logs import ComputeLogs

        return ComputeLogs(self).fetch(_check_run_id(run_id), step, stream=stream, max_bytes=max_bytes)

    def log_lines(self, run_id: str, step: str | None = None, *, stream: str = "both",
                  max_bytes: int | None = None, strip_ansi: bool = True) -> pd.DataFrame:
        """The compute logs as a frame, one row per line: ``step_key``, ``stream``, ``line_no``, ``text``.

        The lines are what a terminal would show: ANSI colour codes removed (unless
        ``strip_ansi=False``), a ``\\r`` progress bar as its last state. ``step_key`` is
        NA for the in-process executor's one file of the whole run. ``attrs`` holds
        ``run_id``, ``step``, ``notes``, ``truncated`` and ``whole_run``. Arguments and
        errors as :meth:`logs`, except that `stream` defaults to ``"both"``.

        Examples
        --------
        >>> lines = client.log_lines(run_id)  # doctest: +SKIP
        >>> lines[lines["text"].str.contains("Traceback")]  # doctest: +SKIP
        """
        from .logs import lines_frame

        return lines_frame(self.logs(run_id, step, stream=stream, max_bytes=max_bytes), strip_ansi=strip_ansi)
    # -- assets -----------------------------------------------------------------------

    def assets(self, prefix: str | Sequence[str] | None = None) -> pd.DataFrame:
        """The asset keys the deployment knows: defined in code, or with recorded events.

        Parameters
        ----------
        prefix : str or list of str, optional
            Only keys starting with these parts (``"warehouse"`` or ``["warehouse"]``).

        Returns
        -------
        pandas.DataFrame
            One row per key, sorted: ``key`` (``a/b``), ``group``, ``partitioned`` (NA
            for an asset known only from its history), ``defined``,
            ``last_materialization`` (UTC, NaT if never).
        """
        from .assets import fetch_assets

        return fetch_assets(self.transport, self.url, prefix)

    def asset_events(
        self,
        key: str | Sequence[str],
        *,
        kind: str = "materialization",
        partitions: str | Sequence[str] | None = None,
        since: Any = None,
        before: Any = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> pd.DataFrame:
        """An asset's materializations (failed ones too) or observations, one row per event.

        Parameters
        ----------
        key : str or list of str
            The asset key, ``"a/b"`` or ``["a", "b"]``.
        kind : {"materialization", "observation", "all"}
            ``"materialization"``: materializations and failed materializations.
        partitions : str or list of str, optional
            Only events of these partitions.
        since, before : optional
            Only events at or after ``since`` and before ``before``: a duration back from
            now (``7d``), an ISO date or datetime, a ``datetime`` (:mod:`runlens.timespec`).
        limit : int, optional
            Only the newest ``limit`` events (still in time order in the frame).
        cursor : str, optional
            Continue further back from here: ``attrs["cursor"]`` of a frame a limit cut,
            or ``err.cursor`` of an interrupted fetch.

        Returns
        -------
        pandas.DataFrame
            Oldest first: ``timestamp`` (UTC), ``asset_key``, ``partition``, ``status``
            (``MATERIALIZED``, ``FAILED``, ``OBSERVED``), ``run_id``, ``step_key``,
            ``event_type``, ``description``, ``failure_reason``, then a ``meta.<label>``
            column per metadata label, typed (``Int64``, ``Float64``, ``string``, objects
            for JSON; see :func:`runlens.assets.flatten_metadata`). ``attrs`` holds
            ``asset_key``, ``cursor`` (after the oldest row), ``has_more``, ``complete``,
            ``partitioned``, ``metadata_types`` and ``metadata_notes`` (why a column of
            mixed types became text).

        Raises
        ------
        AssetNotFound
            The server knows no asset with this key (no definition, no recorded event).
        RunlensError
            A fetch that failed midway, after the transport's retries, carries what
            arrived (``err.partial``, a frame) and where to go on from
            (``err.cursor``): ``asset_events(key, cursor=err.cursor)`` returns the older
            rest.
        """
        from .assets import fetch_asset_events

        return fetch_asset_events(self.transport, self.url, key, kind=kind, partitions=partitions, since=since,
                                  before=before, limit=limit, cursor=cursor)

    # -- helpers ----------------------------------------------------------------------

    def _show_progress(self, progress: bool | None) -> bool:
        if progress is None:
            progress = self.progress
        if progress is None:
            return sys.stderr.isatty() or "ipykernel" in sys.modules
        return progress


def _adopted(transport: Any, given: list[str]) -> tuple[Any, Settings]:
    """A transport given to ``Client`` and its settings; the options that belong to it refused."""
    if not callable(getattr(transport, "execute", None)):
        raise InvalidArgument(f"transport must have an execute(query, variables, *, run_id=None, fast=None) "
                              f"method, as runlens.transport.Transport has; got {type(transport).__name__}")
    if given:
        raise InvalidArgument(f"Client(transport=...) takes its connection settings from the transport: "
                              f"give {', '.join(given)} to the transport instead")
    settings = getattr(transport, "settings", None)
    if not isinstance(settings, Settings):  # any object with execute() will do
        settings = Settings(str(getattr(transport, "url", "(a custom transport)")),
                            sources={"url": type(transport).__name__})
    return transport, settings


def _check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not run_id.strip():
        raise InvalidArgument(f"a run id must be a non-empty string, not {run_id!r}")
    return run_id.strip()


def _check_statuses(statuses: Sequence[str | RunStatus] | str) -> list[str]:
    if isinstance(statuses, str):
        statuses = [s for s in statuses.split(",") if s.strip()]
    if not isinstance(statuses, (list, tuple, set, frozenset)):
        raise InvalidArgument(f"statuses must be a status or a list of them, not {statuses!r}")
    names = [str(s).strip().upper() for s in statuses]
    valid = {s.value for s in RunStatus}
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise InvalidArgument(f"unknown run status {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    return names


def _epoch_seconds(value: datetime | str | float | int, what: str) -> float:
    """A time bound as epoch seconds, through the one parser of times (:mod:`runlens.timespec`)."""
    return parse_time(value, what=what).timestamp()


def _check_count(name: str, value: Any, *, high: int | None = None) -> int:
    """A positive whole number (at most ``high``), or InvalidArgument naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (high is not None and value > high):
        bounds = f"between 1 and {high}" if high is not None else "a whole number, at least 1"
        raise InvalidArgument(f"{name} must be {bounds}, not {value!r}")
    return value
