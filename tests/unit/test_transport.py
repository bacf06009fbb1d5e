"""HTTP and GraphQL failures become the right RunlensError; retries heal transient ones.

These use `responses` for what a live server cannot be made to do on demand (401, 429,
HTML, truncated bodies). The same paths through a real server are in tests/live.
"""

from __future__ import annotations

import pytest
import requests
import responses

import runlens
from runlens import errors

from .fake_dagster import BASE_URL, URL


def client(**kw):
    kw.setdefault("max_retries", 2)
    kw.setdefault("backoff", 0)
    return runlens.Client(URL, **kw)


def run_result(**fields):
    base = {"__typename": "Run", "id": "r1", "status": "SUCCESS", "jobName": "j", "pipelineName": "j",
            "mode": "default", "creationTime": 1.0, "startTime": 2.0, "endTime": 3.5, "updateTime": 3.5,
            "tags": []}
    base.update(fields)
    return {"data": {"runOrError": base}}


@responses.activate
def test_401_is_auth_error_naming_the_token_source():
    responses.post(URL, status=401, body="no")
    with pytest.raises(errors.AuthError, match="DAGSTER_CLOUD_API_TOKEN") as info:
        client().run("r1")
    assert info.value.exit_code == 4


@responses.activate
def test_403_with_token_never_shows_the_token():
    responses.post(URL, status=403, body="forbidden")
    with pytest.raises(errors.AuthError) as info:
        client(token="super-secret-value-42").run("r1")
    assert "super-secret-value-42" not in str(info.value)
    assert "argument" in str(info.value)


@responses.activate
def test_429_then_success_is_retried_honouring_retry_after():
    responses.post(URL, status=429, headers={"Retry-After": "0"}, body="slow down")
    responses.post(URL, json=run_result())
    run = client().run("r1")
    assert run.status == runlens.RunStatus.SUCCESS
    assert len(responses.calls) == 2


@responses.activate
def test_429_forever_is_rate_limited():
    for _ in range(5):
        responses.post(URL, status=429, headers={"Retry-After": "0"}, body="slow down")
    with pytest.raises(errors.RateLimited) as info:
        client(max_retries=2).run("r1")
    assert info.value.exit_code == 5
    assert len(responses.calls) == 3


@pytest.mark.parametrize("status", [502, 503, 504])
@responses.activate
def test_gateway_errors_are_retried(status):
    responses.post(URL, status=status, body="bad gateway")
    responses.post(URL, json=run_result())
    assert client().run("r1").id == "r1"


@responses.activate
def test_500_with_python_error_in_data_is_server_error():
    body = {"data": {"runOrError": {"__typename": "PythonError", "message": "boom\n", "className": "KeyError",
                                    "stack": ["  File x\n"]}}}
    responses.post(URL, status=500, json=body)
    with pytest.raises(errors.ServerError, match="KeyError: boom") as info:
        client().run("r1")
    assert info.value.error_class == "KeyError" and info.value.stack == ["  File x\n"]
    assert len(responses.calls) == 1  # a resolver error is not retried


@responses.activate
def test_validation_error_names_the_field_and_server_version():
    body = {"data": None, "errors": [{"message": 'Cannot query field "jobName" on type "Run".'}]}
    responses.post(URL, status=400, json=body)
    responses.get(f"{BASE_URL}/server_info", json={"dagster_version": "0.15.0"})
    with pytest.raises(errors.GraphQLError, match=r'jobName.*0\.15\.0') as info:
        client().run("r1")
    assert info.value.errors == body["errors"]


@responses.activate
def test_html_answer_says_the_url_is_a_web_page():
    responses.post(URL, status=200, body="<!doctype html><html>Dagster</html>", content_type="text/html")
    with pytest.raises(errors.ConfigError, match="HTML page"):
        client().run("r1")


@responses.activate
def test_404_is_a_config_error():
    responses.post(URL, status=404, body="Not Found", content_type="text/plain")
    with pytest.raises(errors.ConfigError, match="404"):
        client().run("r1")


@responses.activate
def test_connection_refused_names_the_url_and_the_fix():
    responses.post(URL, body=requests.exceptions.ConnectionError("Connection refused"))
    with pytest.raises(errors.TransportError, match="RUNLENS_URL") as info:
        client(max_retries=0).run("r1")
    assert URL in str(info.value)


@responses.activate
def test_timeout_is_transport_error():
    responses.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(errors.TransportError, match="did not answer"):
        client(max_retries=0, timeout=0.5).run("r1")


@responses.activate
def test_truncated_json_is_retried_then_succeeds():
    responses.post(URL, status=200, body='{"data": {"runOrEr', content_type="application/json")
    responses.post(URL, json=run_result())
    assert client().run("r1").id == "r1"


@responses.activate
def test_truncated_json_forever_is_a_transport_error():
    for _ in range(4):
        responses.post(URL, status=200, body='{"data": {"runOrEr', content_type="application/json")
    with pytest.raises(errors.TransportError, match="incomplete"):
        client(max_retries=2).run("r1")


@responses.activate
def test_run_not_found_names_the_run():
    responses.post(URL, json={"data": {"runOrError": {"__typename": "RunNotFoundError", "message": "x"}}})
    with pytest.raises(errors.RunNotFound, match="'nope'") as info:
        client().run("nope")
    assert info.value.exit_code == 3 and info.value.run_id == "nope"


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_run_id_is_invalid_argument(bad):
    with pytest.raises(errors.InvalidArgument):
        client().run(bad)


@responses.activate
def test_unknown_run_status_is_kept_not_crashed():
    responses.post(URL, json=run_result(status="HIBERNATING"))
    run = client().run("r1")
    assert run.status == "HIBERNATING" and not run.is_finished


@responses.activate
def test_run_times_are_utc_datetimes_from_float_seconds():
    responses.post(URL, json=run_result(creationTime=1795667190.5, startTime=1795667191.25, endTime=1795667200.0))
    run = client().run("r1")
    assert run.created_at.isoformat() == "2026-11-26T04:26:30.500000+00:00"
    assert run.duration.total_seconds() == pytest.approx(8.75)


@responses.activate
def test_token_travels_in_dagster_plus_headers_only():
    responses.post(URL, json=run_result())
    client(token="tok-abc", organization="acme", deployment="dev").run("r1")
    sent = responses.calls[0].request.headers
    assert sent["Dagster-Cloud-Api-Token"] == "tok-abc"
    assert sent["Dagster-Cloud-Organization"] == "acme" and sent["Dagster-Cloud-Deployment"] == "dev"
    assert "Authorization" not in sent


def test_repr_shows_endpoint_and_sources_never_the_token():
    c = client(token="tok-very-secret")
    assert URL in repr(c) and "[secure]" in repr(c) and "tok-very-secret" not in repr(c)
    assert "tok-very-secret" not in repr(c.settings) and "tok-very-secret" not in repr(c.transport)


def test_tls_verification_is_on():
    assert client().transport.session.verify is True


def test_the_events_query_never_selects_pipeline_name():
    # `... on RunEvent { pipelineName }` fails the whole query with HTTP 500 on asset jobs.
    transport = runlens.MockTransport(lambda request: {"data": {"logsForRun": {
        "__typename": "EventConnection", "events": [], "cursor": None, "hasMore": False}}})
    runlens.Client(transport=transport).events("r1")
    query = transport.requests[0]["query"]
    assert "logsForRun" in query and "pipelineName" not in query and "RunEvent " not in query


# ------------------------------------------------------------------ the transport seam


def test_mock_transport_answers_go_through_runlens_decoding():
    seen = []

    def handler(request):
        seen.append(request)
        return run_result(id=request["variables"]["runId"])

    client = runlens.Client(transport=runlens.MockTransport(handler))
    assert client.run("r9").id == "r9"
    assert seen[0]["variables"] == {"runId": "r9"} and "runOrError" in seen[0]["query"]
    assert "MockTransport" in repr(client) and client.url == "http://dagster.test/graphql"


@pytest.mark.parametrize("answer, error", [
    ((401, "no"), errors.AuthError),
    ((404, "Not Found", {"Content-Type": "text/plain"}), errors.ConfigError),
    ((500, {"data": {"runOrError": {"__typename": "PythonError", "message": "boom", "className": "E"}}}),
     errors.ServerError),
    ((200, '{"data": {"runOrEr'), errors.TransportError),  # cut short, and no retry by default
    ((200, b"<html>login</html>", {"Content-Type": "text/html"}), errors.ConfigError),
    ({"data": {"runOrError": {"__typename": "RunNotFoundError", "message": "x"}}}, errors.RunNotFound),
])
def test_mock_transport_answers_map_to_the_same_errors_as_a_server(answer, error):
    with pytest.raises(error):
        runlens.Client(transport=runlens.MockTransport(lambda request: answer)).run("r1")


def test_mock_transport_network_failures_and_retries():
    def refused(request):
        raise requests.exceptions.ConnectionError("Connection refused")

    with pytest.raises(errors.TransportError, match="RUNLENS_URL"):
        runlens.Client(transport=runlens.MockTransport(refused)).run("r1")
    answers = iter([(200, '{"data": {"runOr'), run_result()])
    transport = runlens.MockTransport(lambda request: next(answers), max_retries=1)
    assert runlens.Client(transport=transport).run("r1").id == "r1" and len(transport.requests) == 2


def test_a_handler_answering_nonsense_is_told_what_to_return():
    with pytest.raises(errors.InvalidArgument, match="handler returns"):
        runlens.Client(transport=runlens.MockTransport(lambda request: (200,))).run("r1")


def test_any_object_with_execute_is_a_transport():
    class Canned:
        def execute(self, query, variables=None, *, run_id=None, fast=None):
            return run_result(id=variables["runId"])["data"]

    client = runlens.Client(transport=Canned())
    assert client.run("r2").id == "r2" and "Canned" in repr(client)


@pytest.mark.parametrize("options", [{"url": "http://elsewhere:3000"}, {"token": "t"}, {"timeout": 5},
                                     {"max_retries": 0}])
def test_connection_options_belong_to_the_transport(options):
    with pytest.raises(errors.InvalidArgument, match="transport"):
        runlens.Client(transport=runlens.MockTransport(lambda r: {}), **options)


def test_a_transport_without_execute_is_refused():
    with pytest.raises(errors.InvalidArgument, match="execute"):
        runlens.Client(transport=object())


def test_runs_shortcut_takes_client_options_and_filters():
    seen = []

    def handler(request):
        seen.append(request["variables"])
        return {"data": {"runsOrError": {"__typename": "Runs", "count": 1,
                                         "results": [run_result()["data"]["runOrError"]]}}}

    frame = runlens.runs(job="etl", limit=5, transport=runlens.MockTransport(handler))
    assert frame["run_id"].tolist() == ["r1"] and frame.attrs["endpoint"] == "http://dagster.test/graphql"
    assert seen[0]["filter"] == {"pipelineName": "etl"} and seen[0]["limit"] == 5


@responses.activate
def test_redirects_are_not_followed_so_the_token_stays_home():
    responses.post(URL, status=307, headers={"Location": "https://evil.example/graphql"})
    evil = responses.post("https://evil.example/graphql", json=run_result())
    with pytest.raises(errors.ConfigError, match="evil.example"):
        client(token="tok-SECRET").run("r1")
    assert evil.call_count == 0


@pytest.mark.parametrize("bad", ["http://[::1", "http://user:s3cret@localhost:99999", "ftp://user:s3cret@host",
                                 "user:s3cret@host:3000"])
def test_malformed_urls_are_config_errors_that_hide_passwords(bad):
    with pytest.raises(errors.ConfigError) as info:
        runlens.Client(bad).run("r1")
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("call", [
    lambda c: c.runs(tags=["team"]),
    lambda c: c.runs(statuses=3),
    lambda c: c.runs(created_after=[2026]),
    lambda c: c.runs(limit="10"),
    lambda c: c.step_stats("r1", max_workers="4"),
    lambda c: c.events_many(["r1"], max_workers=0),
    lambda c: c.events_many("r1"),
])
def test_arguments_a_user_gets_wrong_are_invalid_argument(call):
    # Never a bare TypeError/AttributeError from inside runlens, and nothing is sent.
    transport = runlens.MockTransport(lambda request: pytest.fail("nothing should be sent"))
    with pytest.raises(errors.InvalidArgument):
        call(runlens.Client(transport=transport))


@pytest.mark.parametrize("options", [{"url": 3000}, {"token": b"bytes"}])
def test_settings_of_the_wrong_type_are_config_errors(options):
    with pytest.raises(errors.ConfigError, match="must be a string"):
        runlens.Client(**options)
