"""Plain ``requests`` against the live server: the independent side of live comparisons.

Live tests check runlens against what Dagster serves, so this deliberately uses none of
runlens's client code.
"""

from __future__ import annotations

import requests


def graphql(url: str, query: str, **variables: object) -> dict:
    """POST one query and return its ``data``; any HTTP or GraphQL error fails the test."""
    response = requests.post(url, json={"query": query, "variables": variables}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def all_events(url: str, run_id: str, query: str) -> list[dict]:
    """Every event of a run: ``query`` takes ``$runId`` and ``$cursor`` and selects
    ``logsForRun { ... on EventConnection { events cursor hasMore } }`` (pages of 1000)."""
    events: list[dict] = []
    cursor = None
    while True:
        page = graphql(url, query, runId=run_id, cursor=cursor)["logsForRun"]
        assert "events" in page, page
        events += page["events"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return events
