"""Compute logs: what a run's steps printed to stdout and stderr.

Dagster does not put ``print()`` output, library warnings or a subprocess's output in
the event log. It captures them in compute log files, and the event log only points at
them: a ``LOGS_CAPTURED`` event per file, with its ``fileKey``, the ``stepKeys`` it holds
and, where the logs live outside Dagster, ``externalStdoutUrl``/``externalStderrUrl``.
The multiprocess executor writes a file per step attempt (a retried step has one per
attempt); the in-process executor one file for the whole run.

The bytes come from the download URL that ``capturedLogsMetadata`` names (a webserver
path, ``/logs/<run>/compute_logs/<fileKey>/err``, served with HTTP ranges) and are
decoded here, so a multi-byte character is never cut; a tail (``max_bytes``) is one
range request. Where no download URL is served, ``capturedLogs(logKey, cursor, limit)``
is paged instead: its ``limit`` counts bytes and the server decodes each page on its
own with ``errors="replace"``, so a character cut at a page edge would come out as
U+FFFD twice; :func:`repair_page` moves the page edge back to the character's start.

Readable text (:func:`readable_lines`): ANSI escape codes removed, a ``\\r`` progress bar
shown as its last state (what a terminal ends up showing), other control characters
dropped, undecodable bytes as U+FFFD.
"""

from __future__ import annotations

import codecs
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from .errors import (
    AuthError,
    ConfigError,
    InvalidArgument,
    LogsNotFound,
    RunlensWarning,
    ServerError,
    TransportError,
)
from .queries import CAPTURED_LOGS, CAPTURED_LOGS_METADATA, LOGS_CAPTURED

if TYPE_CHECKING:
    import pandas as pd

    from .client import Client

STREAMS = ("stdout", "stderr")
#: Bytes asked for per request: a download is read in chunks of this size, and
#: ``capturedLogs`` is paged with this ``limit``.
PAGE_BYTES = 1 << 20
_EXTENSION = {"stdout": "out", "stderr": "err"}
_REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class LogFile:
    """One compute log file of a run, as its ``LOGS_CAPTURED`` event names it."""

    file_key: str
    step_keys: tuple[str, ...]
    external_urls: dict[str, str] = field(default_factory=dict)  # stream -> URL outside Dagster

    @property
    def whole_run(self) -> bool:
        """True for a file holding several steps (the in-process executor's one file)."""
        return len(self.step_keys) != 1

    @property
    def label(self) -> str:
        return self.step_keys[0] if len(self.step_keys) == 1 else "the run"


@dataclass
class LogPart:
    """The text of one stream of one file."""

    file: LogFile
    stream: str
    text: str
    truncated: bool = False  # max_bytes kept only the tail
    attempt: int = 1  # the how-manieth file of the same step (a retried step has one per attempt)


class LogText(str):
    """The captured text: a ``str``, with where it came from.

    Attributes
    ----------
    run_id : str
    step : str or None
        The step asked for.
    stream : str
        ``"stdout"``, ``"stderr"`` or ``"both"``.
    parts : list of LogPart
        One per file and stream, in the order the text holds them.
    notes : list of str
        What the caller should know: the text is the whole run's (in-process executor),
        a log lives outside Dagster (with its URL), only the tail was kept.
    truncated : bool
        True when ``max_bytes`` cut at least one part.
    """

    run_id: str
    step: str | None
    stream: str
    parts: list[LogPart]
    notes: list[str]
    truncated: bool

    def __new__(cls, text: str, *, run_id: str, step: str | None, stream: str, parts: list[LogPart],
                notes: list[str]) -> LogText:
        self = super().__new__(cls, text)
        self.run_id, self.step, self.stream, self.parts, self.notes = run_id, step, stream, parts, notes
        self.truncated = any(p.truncated for p in parts)
        return self

    def tail(self, lines: int = 20) -> str:
        """The last `lines` readable lines (ANSI codes stripped, progress bars collapsed)."""
        return "\n".join(readable_lines(self)[-lines:]) if lines > 0 else ""


# --------------------------------------------------------------------------- fetching


class ComputeLogs:
    """Reads a run's compute logs through a client's transport (retries and errors included)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport = client.transport

    def files(self, run_id: str) -> list[LogFile]:
        """The run's compute log files, in the order their ``LOGS_CAPTURED`` events were stored.

        Raises
        ------
        RunNotFound
            The server has no such run.
        """
        files: dict[str, LogFile] = {}
        cursor = None
        while True:
            data = self.transport.execute(LOGS_CAPTURED, {"runId": run_id, "afterCursor": cursor, "limit": 1000},
                                          run_id=run_id)
            result = data.get("logsForRun")
            self.client._raise_for_result(result, run_id)
            for event in result.get("events") or []:
                if not isinstance(event, dict) or event.get("__typename") != "LogsCapturedEvent":
                    continue
                key = event.get("fileKey")
                if not isinstance(key, str) or key in files:
                    continue
                urls = {s: event.get(f"external{s.capitalize()}Url") for s in STREAMS}
                files[key] = LogFile(key, tuple(event.get("stepKeys") or ()), {s: u for s, u in urls.items() if u})
            if not result.get("hasMore") or result.get("cursor") in (None, cursor):
                return list(files.values())
            cursor = result["cursor"]

    def fetch(self, run_id: str, step: str | None = None, *, stream: str = "stderr",
              max_bytes: int | None = None) -> LogText:
        """The captured text of a run or of one of its steps: see :meth:`runlens.Client.logs`."""
        streams = _check_stream(stream)
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
            raise InvalidArgument(f"max_bytes must be a whole number of bytes, at least 1, not {max_bytes!r}")
        files = self.files(run_id)
        chosen, notes = self._choose(run_id, step, files)
        # Notes that change what the text means (not the step's alone, not all of it) also warn.
        warn = list(notes)
        parts: list[LogPart] = []
        attempts: dict[tuple[str, ...], int] = {}
        for log_file in chosen:
            attempts[log_file.step_keys] = attempts.get(log_file.step_keys, 0) + 1
            urls = self._download_urls(run_id, log_file)
            texts = self._read(run_id, log_file, streams, urls, max_bytes)
            for name in streams:
                text, truncated = texts[name]
                external = log_file.external_urls.get(name)
                if external:
                    warn.append(f"the {name} of {log_file.label} is stored outside Dagster: {external}")
                    notes.append(warn[-1])
                parts.append(LogPart(log_file, name, text, truncated, attempts[log_file.step_keys]))
        if any(p.truncated for p in parts):
            notes.append(f"only the last {max_bytes:,} bytes of each log are shown (max_bytes)")
        if not any(p.text for p in parts) and not any(log_file.external_urls for log_file in chosen):
            what = f"step {step!r}" if step else "the run"
            notes.append(f"{what} of run {run_id} printed nothing to {' or '.join(streams)}")
        for note in warn:
            warnings.warn(note, RunlensWarning, stacklevel=3)
        return LogText(join_parts(parts), run_id=run_id, step=step, stream=stream, parts=parts, notes=notes)

    def _choose(self, run_id: str, step: str | None, files: list[LogFile]) -> tuple[list[LogFile], list[str]]:
        if not files:
            status = self.client.run_status(run_id)
            status = getattr(status, "value", status)
            why = {"QUEUED": "it is still queued", "NOT_STARTED": "it never started",
                   "STARTING": "it is starting", "CANCELED": "it was canceled before any step ran",
                   "CANCELING": "it was canceled before any step ran",
                   }.get(status, "no step has started, or the deployment does not capture compute logs")
            raise LogsNotFound(f"run {run_id} ({status}) has no captured compute logs: {why}", run_id=run_id)
        if step is None:
            return files, []
        if not isinstance(step, str) or not step.strip():
            raise InvalidArgument(f"a step key must be a non-empty string, not {step!r}")
        step = step.strip()
        chosen = [f for f in files if step in f.step_keys]
        if not chosen:
            known = sorted({k for f in files for k in f.step_keys})
            raise LogsNotFound(f"step {step!r} of run {run_id} has no captured compute logs (it did not run, or "
                               f"there is no such step); steps with logs: {', '.join(known)}", run_id=run_id)
        notes = []
        if any(f.whole_run for f in chosen):
            notes.append(f"the run's steps ran in one process (in-process executor), which writes one log file for "
                         f"the whole run: this text is the whole run's ({', '.join(chosen[0].step_keys)}), "
                         f"not step {step!r}'s alone")
        return chosen, notes

    def _download_urls(self, run_id: str, log_file: LogFile) -> dict[str, str | None]:
        data = self.transport.execute(CAPTURED_LOGS_METADATA, {"logKey": _log_key(run_id, log_file)}, run_id=run_id)
        meta = data.get("capturedLogsMetadata") or {}
        return {name: meta.get(f"{name}DownloadUrl") for name in STREAMS}

    def _read(self, run_id: str, log_file: LogFile, streams: tuple[str, ...], urls: dict[str, str | None],
              max_bytes: int | None) -> dict[str, tuple[str, bool]]:
        texts: dict[str, tuple[str, bool]] = {}
        paged = [name for name in streams if not urls.get(name)]
        for name in streams:
            if urls.get(name):
                found = self._download(self.transport.absolute_url(urls[name]), max_bytes, run_id)
                if found is None:  # 404: no such file (yet)
                    texts[name] = ("", False)
                else:
                    texts[name] = (decode(found[0], from_middle=found[1]), found[1])
        if paged:
            read = read_captured_logs(self.transport, run_id, _log_key(run_id, log_file), max_bytes=max_bytes)
            for name in paged:
                data, truncated = read[name]
                texts[name] = (decode(data, from_middle=truncated), truncated)
        return texts

    def _download(self, url: str, max_bytes: int | None, run_id: str) -> tuple[bytes, bool] | None:
        """The file's bytes (its last `max_bytes`) and whether that is only a tail; None if there is none.

        Asks for the tail with one range request; reads the body in chunks, keeping at
        most `max_bytes`; resumes a body cut short from where it stopped (a range from
        there), up to the transport's ``max_retries`` times.
        """
        transport = self.transport
        headers = {"Range": f"bytes=-{max_bytes}"} if max_bytes else {}
        buffer = bytearray()
        start = None  # absolute offset of buffer[0] in the file
        failures = 0
        while True:
            with transport.network_errors(run_id):
                response = transport.open_get(url, headers)
            status = response.status_code
            if status == 404:
                return None
            if status == 416:  # a range of an empty file
                return b"", False
            _raise_for_download_status(response, url, run_id, transport)
            offset = _content_offset(response)
            if start is None:
                start = offset
            skip = start + len(buffer) - offset  # bytes of this body already held (a server ignoring ranges)
            try:
                for chunk in response.iter_content(PAGE_BYTES):
                    if skip > 0:
                        cut, skip = min(skip, len(chunk)), skip - min(skip, len(chunk))
                        chunk = chunk[cut:]
                    buffer += chunk
                    if max_bytes and len(buffer) > 2 * max_bytes:
                        drop = len(buffer) - max_bytes
                        del buffer[:drop]
                        start += drop
                break
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as exc:
                failures += 1
                if failures > transport.max_retries:
                    raise TransportError(f"{url} cut the log short {failures} times ({type(exc).__name__}); "
                                         "try again later", run_id=run_id) from None
                headers = {"Range": f"bytes={start + len(buffer)}-"}
            finally:
                response.close()
        if max_bytes and len(buffer) > max_bytes:
            drop = len(buffer) - max_bytes
            del buffer[:drop]
            start += drop
        return bytes(buffer), bool(start)


def read_captured_logs(transport: Any, run_id: str, log_key: list[str], *, max_bytes: int | None = None,
                       page_bytes: int = PAGE_BYTES) -> dict[str, tuple[bytes, bool]]:
    """Both streams of one file through ``capturedLogs``, paged; each stream's bytes and whether cut to a tail.

    The server decodes each page by itself (``errors="replace"``); every page edge that
    cut a character is moved back to that character's start (:func:`repair_page`), so
    the text equals the file's decoded whole. Bytes are the pages re-encoded: text
    U+FFFD for what the file held undecodable.
    """
    # A page must hold a whole character (4 bytes at most) for a cut edge to move back and still advance.
    page_bytes = max(4, page_bytes)
    offsets = {name: 0 for name in STREAMS}
    done = {name: False for name in STREAMS}
    kept = {name: bytearray() for name in STREAMS}
    dropped = {name: 0 for name in STREAMS}
    while not all(done.values()):
        page = _captured_page(transport, run_id, log_key, offsets, page_bytes)
        ends = _parse_cursor(page.get("cursor"), offsets)
        for name in STREAMS:
            if done[name]:
                continue
            text, consumed = page.get(name) or "", ends[name] - offsets[name]
            if consumed <= 0:
                done[name] = True
                continue
            if consumed >= page_bytes:
                text, consumed = repair_page(text, consumed, lambda n, name=name: (_captured_page(
                    transport, run_id, log_key, offsets, n).get(name) or ""))
            kept[name] += text.encode("utf-8", "surrogatepass")
            offsets[name] += consumed
            if max_bytes and len(kept[name]) > 2 * max_bytes:
                drop = len(kept[name]) - max_bytes
                del kept[name][:drop]
                dropped[name] += drop
    result = {}
    for name in STREAMS:
        data = kept[name]
        if max_bytes and len(data) > max_bytes:
            dropped[name] += len(data) - max_bytes
            data = data[-max_bytes:]
        result[name] = (bytes(data), dropped[name] > 0)
    return result


def _captured_page(transport: Any, run_id: str, log_key: list[str], offsets: dict[str, int], limit: int) -> dict:
    data = transport.execute(CAPTURED_LOGS, {"logKey": log_key, "cursor": f"{offsets['stdout']}:{offsets['stderr']}",
                                             "limit": limit}, run_id=run_id)
    page = data.get("capturedLogs")
    if not isinstance(page, dict):
        raise ServerError(f"{transport.url} answered capturedLogs without a page for run {run_id}", run_id=run_id)
    return page


def repair_page(text: str, consumed: int, refetch) -> tuple[str, int]:
    """Move the edge of a full page that cut a character back to that character's start.

    Parameters
    ----------
    text : str
        The page as the server decoded it (``errors="replace"``).
    consumed : int
        The bytes the page covered (the cursor moved by this much).
    refetch : callable
        ``refetch(limit)``: the same page again with a smaller byte ``limit``, as text.

    Returns
    -------
    (str, int)
        The page's text and byte count, ending before a cut character; the next page
        starts at that character and decodes it whole.
    """
    if not text.endswith(_REPLACEMENT):
        return text, consumed
    head = text[:-1]
    if _REPLACEMENT not in head:
        # The page is valid UTF-8 up to the cut: its encoding says how many bytes the
        # trailing U+FFFD stands for (1 to 3 bytes of a character's start).
        cut = consumed - len(head.encode("utf-8", "surrogatepass"))
        if 1 <= cut <= 3:
            return head, consumed - cut
    # Undecodable bytes elsewhere in the page: ask again with a shorter page until its
    # end decodes (a character is at most 4 bytes).
    for shorter in range(1, 4):
        again = refetch(consumed - shorter)
        if not again.endswith(_REPLACEMENT):
            return again, consumed - shorter
    return text, consumed  # undecodable bytes at the edge itself: nothing to repair


def _parse_cursor(cursor: Any, previous: dict[str, int]) -> dict[str, int]:
    try:
        out, err = (int(part) for part in str(cursor).split(":"))
    except ValueError:
        return dict(previous)  # no cursor: nothing more
    return {"stdout": out, "stderr": err}


def _content_offset(response: requests.Response) -> int:
    """Where the body starts in the file: a 206's ``Content-Range`` start, else 0."""
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if response.status_code == 206 and match else 0


def _raise_for_download_status(response: requests.Response, url: str, run_id: str, transport: Any) -> None:
    status = response.status_code
    if status in (200, 206):
        return
    response.close()
    if status in (401, 403):
        raise AuthError(f"{url} answered HTTP {status}: the token is not allowed to read compute logs there",
                        run_id=run_id)
    if 300 <= status < 400:
        raise ConfigError(f"{url} redirects (HTTP {status}): runlens does not follow redirects", run_id=run_id)
    if status in (429, 502, 503, 504):
        raise TransportError(f"{url} answered HTTP {status} after {transport.max_retries} retries; try again later",
                             run_id=run_id)
    raise ServerError(f"{url} answered HTTP {status} to a compute log download", run_id=run_id)


def _log_key(run_id: str, log_file: LogFile) -> list[str]:
    return [run_id, "compute_logs", log_file.file_key]


def _check_stream(stream: Any) -> tuple[str, ...]:
    if stream == "both":
        return STREAMS
    if stream in STREAMS:
        return (stream,)
    raise InvalidArgument(f"stream must be 'stdout', 'stderr' or 'both', not {stream!r}")


def join_parts(parts: list[LogPart], texts: list[str] | None = None) -> str:
    """One part: its text as it is. Several: each under a header line naming step, attempt and stream.

    `texts` replaces the parts' texts (e.g. their tails).
    """
    texts = [p.text for p in parts] if texts is None else texts
    if len(parts) == 1:
        return texts[0]
    counts: dict[tuple[str, ...], int] = {}
    for part in parts:
        if part.attempt > 1:
            counts[part.file.step_keys] = part.attempt
    chunks = []
    for part, text in zip(parts, texts, strict=True):
        attempt = f" (attempt {part.attempt})" if part.file.step_keys in counts else ""
        text = text if not text or text.endswith("\n") else text + "\n"
        chunks.append(f"==> {part.file.label}{attempt}: {part.stream} <==\n{text}")
    return "".join(chunks)


# --------------------------------------------------------------------------- decoding


def decode(data: bytes, *, from_middle: bool = False) -> str:
    """UTF-8 bytes of a log as text: undecodable bytes as U+FFFD.

    With `from_middle` (a tail that starts inside the file), the continuation bytes of a
    character cut at the start are dropped rather than shown as U+FFFD.
    """
    if from_middle:
        skip = 0
        while skip < min(3, len(data)) and 0x80 <= data[skip] <= 0xBF:
            skip += 1
        data = data[skip:]
    return data.decode("utf-8", "replace")


def decode_chunks(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode a stream of byte chunks as UTF-8, never cutting a character at a chunk edge."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield text
    rest = decoder.decode(b"", final=True)
    if rest:
        yield rest


# CSI (colours, cursor moves), OSC (titles, hyperlinks) and the two-character escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """`text` without ANSI escape sequences (colours, cursor moves, OSC titles and links)."""
    return _ANSI.sub("", text)


def readable_lines(text: str, *, ansi: bool = False) -> list[str]:
    """Split a log into the lines a terminal would end up showing.

    ``\\r\\n`` is a line end; a bare ``\\r`` returns to the line's start, so a progress
    bar (``10%\\r20%\\r...\\r100%``) shows its last state; ANSI escape codes are removed
    unless `ansi`; other control characters are dropped. A final newline does not make
    an empty last line.
    """
    if not ansi:
        text = strip_ansi(text)
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for line in lines:
        if "\r" in line:
            line = _overwrite(line.split("\r"))
        out.append(_CONTROL.sub("", line) if not ansi else line)
    return out


def _overwrite(segments: list[str]) -> str:
    """What a terminal shows after writing each segment from column 0 over the previous."""
    shown = ""
    for segment in segments:
        shown = segment + shown[len(segment):]
    return shown


def lines_frame(text: LogText, *, strip_ansi: bool = True) -> pd.DataFrame:
    """One row per readable line of each part of `text`: step_key, stream, line_no, text."""
    import pandas as pd

    from .frames import STRING

    steps, streams, numbers, texts = [], [], [], []
    for part in text.parts:
        lines = readable_lines(part.text, ansi=not strip_ansi)
        key = part.file.step_keys[0] if not part.file.whole_run else None
        steps += [key] * len(lines)
        streams += [part.stream] * len(lines)
        numbers += range(1, len(lines) + 1)
        texts += lines
    frame = pd.DataFrame({
        "step_key": pd.array(steps, dtype=STRING),
        "stream": pd.array(streams, dtype=STRING),
        "line_no": pd.array(numbers, dtype="int64"),
        "text": pd.array(texts, dtype=STRING),
    })
    frame.attrs.update(run_id=text.run_id, step=text.step, notes=list(text.notes), truncated=text.truncated,
                       whole_run=any(p.file.whole_run for p in text.parts))
    return frame


def tail_parts(fetch, lines: int, *, first_bytes: int = 64 * 1024) -> tuple[LogText, list[list[str]]]:
    """The last `lines` readable lines of each part, reading no more of each file than needed.

    ``fetch(max_bytes)`` returns a :class:`LogText`; it is called with a tail of
    `first_bytes`, doubled while a part that was cut holds fewer lines than asked for.
    Returns the last text fetched and each part's lines (ANSI codes stripped).
    """
    max_bytes = max(first_bytes, lines * 256)
    while True:
        text = fetch(max_bytes)
        per_part = []
        short = False
        for part in text.parts:
            part_lines = readable_lines(part.text)
            if part.truncated:
                part_lines = part_lines[1:]  # the first line of a tail is cut
                short = short or len(part_lines) < lines
            per_part.append(part_lines[-lines:])
        if not short:
            return text, per_part
        max_bytes *= 4
