"""vcrpy set-up shared by the cassette recorder and the replay tests.

Every GraphQL request goes to the same URL, so requests are matched on the GraphQL
operation name and the variables, not on the URL (the recording server's port is
random). Token, authorization and cookie headers are never written to a cassette.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

import vcr

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"
MANIFEST = CASSETTES / "manifest.json"
SECRET_HEADERS = ("Dagster-Cloud-Api-Token", "Authorization", "Cookie", "Set-Cookie",
                  "Dagster-Cloud-Organization", "Dagster-Cloud-Deployment")
_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")


def _graphql_key(request) -> tuple:
    body = request.body
    if not body:
        return (request.method, request.path, None, None)
    doc = json.loads(body)
    match = _OPERATION.search(doc.get("query", ""))
    return (request.method, request.path.rsplit("/", 1)[-1], match and match.group(1),
            json.dumps(doc.get("variables") or {}, sort_keys=True))


def graphql_matcher(r1, r2) -> None:
    """Match on the HTTP method, the last path segment, the operation name and variables."""
    k1, k2 = _graphql_key(r1), _graphql_key(r2)
    assert k1 == k2, f"{k1} != {k2}"


def _machine_paths() -> list[tuple[str, str]]:
    """Paths of the recording machine, longest first, and what replaces them."""
    repo = str(Path(__file__).resolve().parents[1])
    paths = {repo: "<repo>", sys.prefix: "<venv>", sys.base_prefix: "<python>",
             tempfile.gettempdir(): "<tmp>", str(Path.home()): "<home>"}
    return sorted(paths.items(), key=lambda item: -len(item[0]))


def _scrub_response(response):
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in {h.lower() for h in SECRET_HEADERS}:
            del headers[name]
    # Server stack traces carry absolute paths of the recording machine: keep them out
    # of the repository (the JSON stays valid: only path prefixes change).
    body = response.get("body", {}).get("string")
    if isinstance(body, bytes):
        scrubbed = scrub_paths(body)
        if scrubbed != body:
            response["body"]["string"] = scrubbed
            # A compute log download's length changes with its paths.
            for name in list(headers):
                if name.lower() == "content-length":
                    headers[name] = [str(len(scrubbed))]
    return response


def scrub_paths(body: bytes) -> bytes:
    """`body` with the recording machine's paths replaced by placeholders.

    Compute logs may hold bytes that are not UTF-8: they pass through unchanged.
    """
    text = body.decode("utf-8", "surrogateescape")
    for path, placeholder in _machine_paths():
        text = text.replace(path, placeholder)
    return text.encode("utf-8", "surrogateescape")


def make_vcr(record_mode: str) -> vcr.VCR:
    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode=record_mode,
        serializer="yaml",
        decode_compressed_response=True,
        filter_headers=[(h, None) for h in SECRET_HEADERS],
        before_record_response=_scrub_response,
    )
    recorder.register_matcher("graphql", graphql_matcher)
    recorder.match_on = ("graphql",)
    return recorder


def load_manifest() -> dict:
    return json.loads(MANIFEST.read_text())
