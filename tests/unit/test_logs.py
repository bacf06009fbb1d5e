"""Compute logs over a fake Dagster that serves them as Dagster does.

The fake answers ``logsForRun`` (LOGS_CAPTURED events), ``capturedLogsMetadata``,
``capturedLogs`` (byte ``limit``, ``"out:err"`` byte-offset cursor, each page decoded
by itself with ``errors="replace"``, exactly as dagster_graphql's resolver does) and
the webserver's ``GET /logs/...`` download route with HTTP ranges. The live tests
(tests/live/test_logs_live.py) read the demo's real logs.
"""

from __future__ import annotations

import json
import re
import warnings

import pandas as pd
import pytest
import requests
import responses
from click.testing import CliRunner

import runlens
from runlens.cli import main
from runlens.logs import decode, decode_chunks, read_captured_logs, readable_lines, repair_page, strip_ansi

from .fake_dagster import BASE_URL

RUN = "run-1"
MULTI = "naïve café ✓ 数据 🚀\n".encode()  # 2-, 3- and 4-byte characters


class FakeLogs:
    """A MockTransport handler (and `responses` callbacks) serving compute log files."""

    def __init__(self, files: dict[str, tuple[list[str], bytes, bytes]], *, download: bool = True,
                 external: dict[str, str] | None = None, status: str = "SUCCESS", run_id: str = RUN):
        self.files = files  # file key -> (step keys, stdout bytes, stderr bytes)
        self.download = download
        self.external = external or {}
        self.status = status
        self.run_id = run_id
        self.gets: list[dict] = []

    def __call__(self, request: dict):
        if request.get("method") == "GET":
            return self.get(request["url"], request["headers"])
        query, variables = request["query"], request["variables"]
        if "RunlensLogsCaptured" in query:
            if variables["runId"] != self.run_id:
                return {"data": {"logsForRun": {"__typename": "RunNotFoundError", "message": "no run"}}}
            events = [{"__typename": "LogMessageEvent"}] + [
                {"__typename": "LogsCapturedEvent", "fileKey": key, "stepKeys": steps,
                 "externalStdoutUrl": None, "externalStderrUrl": self.external.get(key)}
                for key, (steps, _, _) in self.files.items()]
            return {"data": {"logsForRun": {"__typename": "EventConnection", "events": events,
                                            "cursor": "c1", "hasMore": False}}}
        if "RunlensRunStatus" in query:
            return {"data": {"runOrError": {"__typename": "Run", "id": self.run_id, "status": self.status}}}
        key = variables["logKey"][2]
        if "RunlensCapturedLogsMetadata" in query:
            urls = {f"{s}DownloadUrl": f"/logs/{self.run_id}/compute_logs/{key}/{ext}" if self.download else None
                    for s, ext in (("stdout", "out"), ("stderr", "err"))}
            return {"data": {"capturedLogsMetadata": urls}}
        if "RunlensCapturedLogs" in query:
            _, out, err = self.files[key]
            offsets = [int(x) for x in variables["cursor"].split(":")]
            limit = variables["limit"]
            chunks, ends = [], []
            for data, offset in zip((out, err), offsets, strict=True):
                chunk = data[offset:offset + limit] if limit else data[offset:]
                chunks.append(chunk.decode("utf-8", errors="replace") if chunk else None)
                ends.append(offset + len(chunk))
            return {"data": {"capturedLogs": {"stdout": chunks[0], "stderr": chunks[1],
                                              "cursor": f"{ends[0]}:{ends[1]}"}}}
        raise AssertionError(query)

    def get(self, url: str, headers: dict):
        self.gets.append({"url": url, "headers": headers})
        match = re.search(r"/logs/([^/]+)/compute_logs/([^/]+)/(out|err)$", url)
        if not match or match.group(2) not in self.files:
            return 404, b"not found"
        _, out, err = self.files[match.group(2)]
        data = out if match.group(3) == "out" else err
        wanted = headers.get("Range")
        if not wanted:
            return 200, data
        start, end = re.match(r"bytes=(\d*)-(\d*)", wanted).groups()
        if not start:
            start = max(0, len(data) - int(end))
        start = int(start)
        if start >= len(data):
            return 416, b""
        body = data[start:]
        return 206, body, {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}

    def client(self) -> runlens.Client:
        return runlens.Client(transport=runlens.MockTransport(self))


def two_steps(**options) -> FakeLogs:
    return FakeLogs({"k1": (["extract"], b"out of extract\n" + MULTI, b"err of extract\n\x1b[31mred\x1b[0m\n"),
                     "k2": (["load"], b"", b"Traceback...\nValueError: boom\n")}, **options)


# --------------------------------------------------------------------- the client


def test_a_step_stream_is_the_file_decoded_exactly():
    fake = two_steps()
    text = fake.client().logs(RUN, "extract", stream="stdout")
    assert text == (b"out of extract\n" + MULTI).decode()
    assert isinstance(text, str) and text.notes == [] and not text.truncated
    # The download URL, a webserver path, joined to the endpoint's base (MockTransport's).
    assert fake.gets[0]["url"] == f"http://dagster.test/logs/{RUN}/compute_logs/k1/out"


def test_without_a_step_every_file_comes_under_a_header():
    text = two_steps().client().logs(RUN, stream="stderr")
    assert text == "==> extract: stderr <==\nerr of extract\n\x1b[31mred\x1b[0m\n==> load: stderr <==\nTraceback...\nValueError: boom\n"
    assert [p.file.step_keys for p in text.parts] == [("extract",), ("load",)]


def test_a_retried_step_has_a_file_per_attempt():
    fake = FakeLogs({"a": (["clean"], b"try 1\n", b""), "b": (["clean"], b"try 2\n", b"")})
    text = fake.client().logs(RUN, "clean", stream="stdout")
    assert text == "==> clean (attempt 1): stdout <==\ntry 1\n==> clean (attempt 2): stdout <==\ntry 2\n"


def test_in_process_executor_one_file_for_the_run_is_said():
    fake = FakeLogs({"run": (["shout", "flood"], b"all of it\n", b"")})
    with pytest.warns(runlens.RunlensWarning, match="whole run's"):
        text = fake.client().logs(RUN, "flood", stream="stdout")
    assert text == "all of it\n"
    assert "in-process executor" in text.notes[0] and "shout, flood" in text.notes[0]
    frame = fake.client().log_lines(RUN, stream="stdout")
    assert frame["step_key"].isna().all() and frame.attrs["whole_run"]


def test_max_bytes_keeps_the_tail_with_one_range_request():
    data = b"".join(f"line {i} é\n".encode() for i in range(10_000))
    fake = FakeLogs({"k": (["big"], b"", data)})
    text = fake.client().logs(RUN, "big", max_bytes=1000)
    assert fake.gets[-1]["headers"] == {"Range": "bytes=-1000"}
    assert text.truncated and "last 1,000 bytes" in text.notes[0]
    whole = data.decode()
    assert whole.endswith(text) and len(text.encode()) >= 997  # a cut first character is dropped, not U+FFFD
    assert "\ufffd" not in text


def test_max_bytes_larger_than_the_file_is_the_whole_file():
    fake = two_steps()
    text = fake.client().logs(RUN, "extract", stream="stdout", max_bytes=10_000)
    assert text == (b"out of extract\n" + MULTI).decode() and not text.truncated


def test_a_server_ignoring_ranges_still_gives_only_the_tail():
    fake = FakeLogs({"k": (["big"], b"", b"x" * 5000 + b"END\n")})
    plain = fake.get
    fake.get = lambda url, headers: plain(url, {})  # answers 200 with the whole file
    text = fake.client().logs(RUN, "big", max_bytes=10)
    assert text == "x" * 6 + "END\n" and text.truncated


def test_no_download_url_pages_captured_logs_and_repairs_cut_characters():
    data = MULTI * 50 + b"bad \xff byte\n" + MULTI * 50
    fake = FakeLogs({"k": (["s"], data, data[::-1][:0] + b"err\n")}, download=False)
    text = fake.client().logs(RUN, "s", stream="stdout")
    assert text == data.decode("utf-8", "replace")
    assert not fake.gets


@pytest.mark.parametrize("page", [1, 2, 3, 4, 5, 7, 13, 64])
def test_every_page_size_reassembles_the_file(page):
    data = b"a" + MULTI * 3 + b"\xe2\x9c tail \x80\n" + MULTI  # multi-byte chars, a cut one and a stray byte
    fake = FakeLogs({"k": (["s"], data, MULTI)})
    got = read_captured_logs(fake.client().transport, RUN, [RUN, "compute_logs", "k"], page_bytes=page)
    assert decode(got["stdout"][0]) == data.decode("utf-8", "replace")
    assert decode(got["stderr"][0]) == MULTI.decode()


def test_captured_logs_tail():
    data = b"".join(f"{i} é\n".encode() for i in range(500))
    fake = FakeLogs({"k": (["s"], data, b"")})
    got = read_captured_logs(fake.client().transport, RUN, [RUN, "compute_logs", "k"], page_bytes=100, max_bytes=50)
    tail, truncated = got["stdout"]
    assert truncated and len(tail) == 50 and data.endswith(tail)


def test_external_urls_are_said_not_failed():
    fake = FakeLogs({"k": (["s"], b"", b"")}, download=True, external={"k": "https://s3.example/bucket/k.err"})
    with pytest.warns(runlens.RunlensWarning, match="outside Dagster"):
        text = fake.client().logs(RUN, "s")
    assert text == "" and "https://s3.example/bucket/k.err" in text.notes[0]


def test_a_step_that_printed_nothing_says_so():
    text = two_steps().client().logs(RUN, "load", stream="stdout")
    assert text == "" and "printed nothing to stdout" in text.notes[0]


@pytest.mark.parametrize("status, why", [("QUEUED", "still queued"), ("NOT_STARTED", "never started"),
                                         ("CANCELED", "canceled before any step ran")])
def test_a_run_without_logs_is_an_error_saying_why(status, why):
    with pytest.raises(runlens.LogsNotFound, match=why) as info:
        FakeLogs({}, status=status).client().logs(RUN)
    assert info.value.exit_code == 3


def test_unknown_step_lists_the_steps_with_logs():
    with pytest.raises(runlens.LogsNotFound, match="steps with logs: extract, load"):
        two_steps().client().logs(RUN, "nope")


def test_unknown_run_is_run_not_found():
    with pytest.raises(runlens.RunNotFound):
        two_steps().client().logs("other-run")


@pytest.mark.parametrize("kwargs", [{"stream": "both!"}, {"max_bytes": 0}, {"max_bytes": True}, {"step": " "}])
def test_bad_arguments_are_invalid_argument(kwargs):
    with pytest.raises(runlens.InvalidArgument):
        two_steps().client().logs(RUN, **kwargs)


def test_log_lines_frame():
    frame = two_steps().client().log_lines(RUN)
    assert list(frame.columns) == ["step_key", "stream", "line_no", "text"]
    assert [str(t) for t in frame.dtypes] == ["string", "string", "int64", "string"]
    assert frame[frame["step_key"] == "extract"]["text"].tolist() == [
        "out of extract", "naïve café ✓ 数据 🚀", "err of extract", "red"]
    assert frame[frame["step_key"] == "extract"]["line_no"].tolist() == [1, 2, 1, 2]
    assert frame[frame["text"].str.contains("ValueError")]["step_key"].tolist() == ["load"]
    raw = two_steps().client().log_lines(RUN, "extract", stream="stderr", strip_ansi=False)
    assert raw["text"].tolist() == ["err of extract", "\x1b[31mred\x1b[0m"]


def test_download_cut_short_resumes_from_where_it_stopped():
    data = ("é" * 300_000).encode()
    fake = FakeLogs({"k": (["s"], b"", data)})
    transport = runlens.MockTransport(fake, max_retries=2)
    served = transport.open_get

    class CutShort:
        """A body that stops after 300,001 bytes (in the middle of an é) with a broken connection."""

        def __init__(self, body):
            self.body = body

        def read(self, n, *args, **kwargs):
            if self.body is None:
                raise requests.exceptions.ChunkedEncodingError("connection broken")
            body, self.body = self.body[:300_001], None
            return body

        def close(self):
            pass

    def open_get(url, headers):
        response = served(url, headers)
        if len(fake.gets) == 1:
            response.raw = CutShort(data)
        return response

    transport.open_get = open_get
    text = runlens.Client(transport=transport).logs(RUN, "s")
    assert text == data.decode()
    assert [g["headers"] for g in fake.gets] == [{}, {"Range": "bytes=300001-"}]


# ------------------------------------------------------------------ text handling


def test_repair_page_moves_the_edge_to_the_characters_start():
    data = "ab✓".encode()  # ✓ is 3 bytes
    for cut in (1, 2):
        page = data[:2 + cut].decode("utf-8", "replace")
        assert repair_page(page, 2 + cut, lambda n: pytest.fail("no refetch needed")) == ("ab", 2)


def test_repair_page_with_undecodable_bytes_elsewhere_refetches_shorter():
    data = b"\xff ab" + "✓".encode()
    full = data[:5].decode("utf-8", "replace")  # ends in the cut ✓, holds a U+FFFD already
    assert repair_page(full, 5, lambda n: data[:n].decode("utf-8", "replace")) == ("\ufffd ab", 4)


def test_repair_page_leaves_a_whole_page_alone():
    assert repair_page("abc\ufffd", 6, lambda n: "abc\ufffd"[:n]) == ("abc", 3)  # a literal U+FFFD: 3 bytes
    assert repair_page("abc", 3, None) == ("abc", 3)


def test_decode_chunks_never_cuts_a_character():
    data = MULTI * 3
    for size in (1, 2, 3, 5):
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        assert "".join(decode_chunks(chunks)) == data.decode()


def test_decode_from_the_middle_drops_a_cut_first_character():
    data = "é✓🚀x".encode()
    assert decode(data[1:], from_middle=True) == "✓🚀x"
    assert decode(data[3:], from_middle=True) == "🚀x"
    assert decode(b"\xff ok") == "\ufffd ok"


def test_strip_ansi():
    assert strip_ansi("\x1b[1;31mFAILED\x1b[0m and \x1b]0;title\x07t \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == \
        "FAILED and t link"
    assert strip_ansi("\x1b[2K\x1b[1Gdone") == "done"


def test_readable_lines_progress_bars_and_line_ends():
    text = "start\r\n" + "".join(f"\rprogress {p:3d}%" for p in (0, 50, 100)) + "\nabc\rX\nlast"
    assert readable_lines(text) == ["start", "progress 100%", "Xbc", "last"]
    assert readable_lines("a\x00b\x07\tc\n") == ["ab\tc"]
    assert readable_lines("") == [] and readable_lines("\n") == [""]


def test_tail_reads_only_the_end_and_widens_when_lines_are_long():
    fake = FakeLogs({"k": (["s"], b"", b"".join(b"%05d " % i + b"x" * 3000 + b"\n" for i in range(200)))})
    client = fake.client()
    from runlens.logs import tail_parts

    text, tails = tail_parts(lambda n: client.logs(RUN, "s", max_bytes=n), 30, first_bytes=1000)
    assert [line[:5] for line in tails[0]] == [f"{i:05d}" for i in range(170, 200)]
    assert text.truncated


# ------------------------------------------------------------------------- CLI


def _serve(fake: FakeLogs) -> None:
    def post(request):
        answer = fake(json.loads(request.body))
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    def get(request):
        answer = fake.get(request.url, {k: v for k, v in request.headers.items() if k == "Range"})
        status, body, headers = (*answer, {})[:3]
        return status, headers, body

    responses.add_callback(responses.POST, BASE_URL + "/graphql", callback=post)
    responses.add_callback(responses.GET, re.compile(re.escape(BASE_URL) + "/logs/.*"), callback=get)


def invoke(*args):
    return CliRunner().invoke(main, ["run", "logs", *args, "--url", BASE_URL])


@responses.activate
def test_cli_prints_a_steps_stream_exactly():
    _serve(two_steps())
    result = invoke(RUN, "--step", "extract", "--stdout")
    assert result.exit_code == 0 and result.stdout == (b"out of extract\n" + MULTI).decode()


@responses.activate
def test_cli_tail_and_json():
    _serve(two_steps())
    result = invoke(RUN, "--tail", "1", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["run_id"] == RUN and doc["stream"] == "stderr"
    assert [(p["step_keys"], p["text"]) for p in doc["parts"]] == [(["extract"], "red\n"), (["load"], "ValueError: boom\n")]


@responses.activate
def test_cli_notes_go_to_stderr():
    _serve(FakeLogs({"run": (["a", "b"], b"x\n", b"")}))
    result = invoke(RUN, "--step", "a", "--stdout")
    assert result.exit_code == 0 and result.stdout == "x\n"
    assert "Note: the run's steps ran in one process" in result.stderr


@responses.activate
@pytest.mark.parametrize("args, code, name", [
    (["no-such-run"], 3, "RUN_NOT_FOUND"),
    ([RUN, "--step", "nope"], 3, "LOGS_NOT_FOUND"),
    ([RUN, "--tail", "0"], 2, "USAGE_ERROR"),
])
def test_cli_errors_exit_codes_and_json(args, code, name):
    _serve(two_steps())
    result = invoke(*args, "--json")
    assert result.exit_code == code
    assert json.loads(result.stderr)["code"] == name
    assert result.stdout == ""


@responses.activate
def test_cli_run_without_logs_is_one_line_exit_3():
    _serve(FakeLogs({}, status="QUEUED"))
    result = invoke(RUN)
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: run run-1 (QUEUED) has no captured compute logs") and "Traceback" not in result.output


def test_log_lines_of_nothing_has_typed_columns():
    frame = FakeLogs({"k": (["s"], b"", b"")}).client().log_lines(RUN)
    assert frame.empty and [str(t) for t in frame.dtypes] == ["string", "string", "int64", "string"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(frame, pd.DataFrame)
