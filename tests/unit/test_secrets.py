"""The API token stays secret, and TLS verification stays on.

The token must never show in ``repr``/``str`` of any object, in log output (urllib3's
included, at DEBUG), in an exception message (or the exceptions chained under it), in
``--help``, in cassettes or in notebooks. These tests use a real HTTP server on
127.0.0.1 (not ``responses``), so urllib3's own logging and retries really happen.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import responses
import yaml
from click.testing import CliRunner

import runlens
from runlens import errors
from runlens.cli import main as cli
from runlens.config import resolve

ROOT = Path(__file__).resolve().parents[2]
CASSETTES = ROOT / "cassettes"
NOTEBOOKS = ROOT / "notebooks"
PACKAGE = ROOT / "runlens"

# Shaped like a Dagster+ user token, so the value scan below would catch it too.
TOKEN = "user:0123456789abcdef0123456789abcdef"
TOKEN_HEADER = "Dagster-Cloud-Api-Token"
SECRET_HEADERS = {"dagster-cloud-api-token", "authorization", "cookie", "set-cookie", "proxy-authorization"}
# Dagster+ user tokens are "user:<32 hex>", agent tokens "agent:<org>:<32 hex>".
TOKEN_VALUE = re.compile(r"\b(?:user|agent):(?:[\w.-]+:)?[0-9a-f]{32}\b")
# A header, variable or argument carrying a value: "Dagster-Cloud-Api-Token: x",
# DAGSTER_CLOUD_API_TOKEN="x", environ["DAGSTER_CLOUD_API_TOKEN"] = "x", token="x".
TOKEN_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?: dagster-cloud-api-token ["']? \s* [:=] \s* ["']? [^\s"'{}<>]{6,}
      | dagster_cloud_api_token ["'\]]* \s* = \s* ["'][^"']{6,}["']
      | \b(?:api_)?token \s* = \s* ["'][^"']{6,}["']
      | authorization ["']? \s* : \s* ["']? (?:bearer|basic) \s+ \S{6,}
    )""")

RUN = {"__typename": "Run", "id": "r1", "status": "SUCCESS", "jobName": "j", "pipelineName": "j", "mode": "default",
       "creationTime": 1.0, "startTime": 2.0, "endTime": 3.0, "updateTime": 3.0, "tags": []}


# --------------------------------------------------------------------------- a stub server

class _Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    plan: list[int] = []  # statuses to answer, in turn; 200 with a run when empty
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append(dict(self.headers.items()))
        status = type(self).plan.pop(0) if type(self).plan else 200
        body = json.dumps({"data": {"runOrError": RUN}}).encode() if status == 200 else b"no"
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
        if status in (429, 503):
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    _Stub.plan, _Stub.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def exception_texts(exc: BaseException) -> str:
    """Message, repr and args of an exception and of everything chained under it."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts += [str(exc), repr(exc), repr(exc.args), repr(getattr(exc, "__dict__", {}))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


# ------------------------------------------------------------------------------- objects

def test_repr_and_str_of_every_object_hide_the_token(stub):
    client = runlens.Client(stub, token=TOKEN, organization="acme", deployment="prod")
    for obj in (client, client.settings, client.transport):
        assert TOKEN not in repr(obj) and TOKEN not in str(obj)
    assert "[secure]" in repr(client)
    assert TOKEN not in client.settings.describe() and TOKEN not in client.settings.token_hint()
    settings = resolve(env={"DAGSTER_CLOUD_API_TOKEN": TOKEN, "DAGSTER_CLOUD_ORGANIZATION": "acme"})
    assert TOKEN not in repr(settings) and "$DAGSTER_CLOUD_API_TOKEN" in settings.describe()


@pytest.mark.parametrize("error", [errors.RunlensError, errors.AuthError, errors.TransportError, errors.ServerError])
def test_errors_with_progress_hide_the_token(stub, error):
    _Stub.plan = [403]
    client = runlens.Client(stub, token=TOKEN, max_retries=0)
    with pytest.raises(errors.AuthError) as info:
        client.run("r1")
    info.value.add_progress(10, "Y3Vyc29y")
    assert TOKEN not in exception_texts(info.value)
    assert TOKEN not in exception_texts(error("x"))


# ---------------------------------------------------------------------------------- logs

@pytest.mark.parametrize("plan", [[], [401], [403], [503, 200], [429, 429, 429]], ids=str)
def test_logs_at_debug_never_hold_the_token(stub, caplog, plan):
    _Stub.plan = list(plan)
    caplog.set_level(logging.DEBUG)  # the root logger: urllib3, requests, runlens alike
    client = runlens.Client(stub, token=TOKEN, max_retries=2, backoff=0)
    try:
        client.run("r1")
    except errors.RunlensError as exc:
        assert TOKEN not in exception_texts(exc)
    assert _Stub.seen and all(h[TOKEN_HEADER] == TOKEN for h in _Stub.seen)  # it was sent
    assert any(r.name.startswith("urllib3") for r in caplog.records)  # urllib3 did log
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(r.args) for r in caplog.records)


def test_logs_and_errors_of_unreachable_servers_hide_the_token(caplog):
    caplog.set_level(logging.DEBUG)
    for url in (closed_port_url(), "http://runlens-secrets-test.invalid:3000"):
        with pytest.raises(errors.TransportError) as info:
            runlens.Client(url, token=TOKEN, max_retries=1, backoff=0, timeout=2).run("r1")
        assert TOKEN not in exception_texts(info.value)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("bad", [TOKEN + "\n", " " + TOKEN, TOKEN + "\r\nX-Injected: 1", "tøken-€-" + TOKEN[5:],
                                 TOKEN + "\x00"])
def test_a_token_http_cannot_carry_is_a_config_error_that_does_not_echo_it(bad):
    # Before: requests raised InvalidHeader("... header value: 'user:...\n'"), the token in its message.
    with pytest.raises(errors.ConfigError, match="token \\(from argument\\)") as info:
        runlens.Client("http://127.0.0.1:1", token=bad).run("r1")
    assert TOKEN[5:] not in exception_texts(info.value)
    assert info.value.exit_code == 2


def test_cli_with_a_bad_token_in_the_environment_says_so_without_echoing_it(monkeypatch):
    monkeypatch.setenv("DAGSTER_CLOUD_API_TOKEN", TOKEN + "\n")
    result = CliRunner().invoke(cli, ["run", "get", "r1", "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "$DAGSTER_CLOUD_API_TOKEN" in result.output and TOKEN not in result.output


# ------------------------------------------------------------------------------------ CLI

def _commands(group, prefix=()):
    yield list(prefix)
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, (*prefix, name))


def test_help_of_every_command_never_shows_the_token(monkeypatch):
    monkeypatch.setenv("DAGSTER_CLOUD_API_TOKEN", TOKEN)
    monkeypatch.setenv("RUNLENS_URL", "http://127.0.0.1:1")
    commands = list(_commands(cli))
    assert ["run-events", "get"] in commands
    for args in commands:
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, args
        assert TOKEN not in result.output


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_cli_errors_never_show_the_token(stub, monkeypatch, json_flag):
    monkeypatch.setenv("DAGSTER_CLOUD_API_TOKEN", TOKEN)
    _Stub.plan = [403]
    result = CliRunner().invoke(cli, ["run", "get", "r1", "--url", stub, *json_flag])
    assert result.exit_code == 4
    assert "403" in result.output and TOKEN not in result.output


# --------------------------------------------------------------------- cassettes, notebooks

def secrets_in(path: Path) -> list[str]:
    """Token headers and token-like values found in one cassette or notebook file."""
    text = path.read_text(errors="replace")
    if path.suffix in (".ipynb", ".json"):
        # Scan what the cells hold (sources, outputs, metadata), not their JSON escaping.
        text = "\n".join(_strings(json.loads(text)))
    found = [f"value {m.group(0)[:12]}..." for m in TOKEN_VALUE.finditer(text)]
    found += [f"assignment {m.group(0)[:30]}..." for m in TOKEN_ASSIGNMENT.finditer(text)]
    if path.suffix in (".yaml", ".yml"):
        doc = yaml.safe_load(text) or {}
        for interaction in doc.get("interactions", []):
            for side in ("request", "response"):
                headers = (interaction.get(side) or {}).get("headers") or {}
                found += [f"{side} header {name}" for name in headers if name.lower() in SECRET_HEADERS]
    return found


def _strings(doc) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for key, value in doc.items():
            yield key
            yield from _strings(value)
    elif isinstance(doc, list):
        # A notebook cell's source is a list of lines: join them back.
        if all(isinstance(v, str) for v in doc):
            yield "".join(doc)
        else:
            for value in doc:
                yield from _strings(value)


def files(folder: Path, *patterns: str) -> list[Path]:
    return sorted(p for pattern in patterns for p in folder.rglob(pattern)) if folder.is_dir() else []


def test_the_scanner_finds_what_it_looks_for(tmp_path):
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(yaml.safe_dump({"interactions": [{"request": {"headers": {TOKEN_HEADER: ["abc"]}},
                                                        "response": {"headers": {}}}]}))
    assert secrets_in(leaky) == ["request header Dagster-Cloud-Api-Token"]
    notebook = tmp_path / "leaky.ipynb"
    for source in (f'Client(url, token="{TOKEN}")', 'os.environ["DAGSTER_CLOUD_API_TOKEN"] = "abcdefgh"',
                   "Dagster-Cloud-Api-Token: abcdefgh", f"agent:acme:{TOKEN[5:]}"):
        notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": [source]}]}))
        assert secrets_in(notebook), source
    notebook.write_text(json.dumps({"cells": [{"source": ["set `DAGSTER_CLOUD_API_TOKEN` or run dg plus login"]}]}))
    assert secrets_in(notebook) == []


def test_cassettes_and_notebooks_hold_no_token():
    cassettes, notebooks = files(CASSETTES, "*.yaml", "*.yml", "*.json"), files(NOTEBOOKS, "*.ipynb")
    # files() of a missing folder is empty: a moved folder must not make this pass unread.
    assert cassettes and notebooks, "no cassettes or notebooks to scan"
    scanned = cassettes + notebooks
    leaks = {str(p.relative_to(ROOT)): found for p in scanned if (found := secrets_in(p))}
    assert not leaks, f"token headers or values committed: {leaks}"


def test_the_cassette_recorder_scrubs_the_token(stub, tmp_path):
    from tests.vcr_setup import make_vcr

    cassette = tmp_path / "with_token.yaml"
    with make_vcr("all").use_cassette(str(cassette)):
        runlens.Client(stub, token=TOKEN, organization="acme").run("r1")
    assert _Stub.seen[0][TOKEN_HEADER] == TOKEN  # the request did carry it
    text = cassette.read_text()
    assert "r1" in text and TOKEN not in text and "acme" not in text
    assert secrets_in(cassette) == []


# ------------------------------------------------------------------------------------ TLS

# A CA bundle path may be assigned to session.verify (test_config checks it is a file);
# a falsy value may not.
INSECURE = re.compile(r"verify\s*=\s*(False|0|None|''|\"\")|CERT_NONE|check_hostname\s*=\s*False|"
                      r"_create_unverified_context|disable_warnings|InsecureRequestWarning|cert_reqs")


def test_no_code_path_disables_tls_verification():
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
            for p in sorted(PACKAGE.rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if INSECURE.search(line)]
    assert not hits, hits


@pytest.mark.parametrize("env", [{}, {"CURL_CA_BUNDLE": ""}, {"REQUESTS_CA_BUNDLE": "/nonexistent"}])
@responses.activate
def test_every_request_verifies_tls_whatever_the_environment(monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    url = "https://acme.dagster.test/prod/graphql"
    responses.post(url, json={"data": {"runOrError": RUN}})
    client = runlens.Client(url, token=TOKEN)
    client.run("r1")
    assert client.transport.session.verify is True and client.transport.session.trust_env is False
    assert responses.calls[0].request.req_kwargs["verify"] is True
