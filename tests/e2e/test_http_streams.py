"""Issue 11, part 4: GraphQL over SSE (graphql-sse, distinct connections) and multipart
subscriptions, against a real server over real HTTP.

``curl -N`` follows a deployment log; an SSE client behind a proxy that cuts its
connections mid-event resumes with Last-Event-ID (or afterSeq) and gets every line once;
keys are checked as on any HTTP request (401 before the body, scopes), counted against the
same caps as WebSockets and re-checked while the stream is open; a subscription over plain
HTTP is a clear 400; nothing of this logs a traceback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.logs.files import last_seq
from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import Client, Server, running_server
from tests.e2e.queries import APP_STATUS_SUB, CREATE_APP, DEPLOY, LOGS_SUB
from tests.e2e.streams import CuttingProxy, Log, multipart_payloads, sse_events

SSE = {"accept": "text/event-stream"}
MULTIPART = {"accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}
LIST = "{ applications { edges { node { id } } } }"
CREATE_KEY = 'mutation($s: [Scope!]!) { createApiKey(name: "sse", scopes: $s) { id key } }'
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) }"


def deploy(server: Server, fakes: Fakes, lines: int, delay: float = 0.0) -> dict[str, Any]:
    client = server.client(Scope.DEPLOY)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    fakes.builder.lines, fakes.builder.delay_s = lines, delay
    dep: dict[str, Any] = client(DEPLOY, id=app_id)["deployApplication"]
    dep["app_id"] = app_id
    return dep


def logs_body(dep_id: str, after: int = 0) -> dict[str, Any]:
    return {"query": LOGS_SUB, "variables": {"id": dep_id, "after": after}}


def seqs_of(events: list[Any]) -> list[int]:
    """Every line's seq over the ``next`` events; each event's id is its last seq."""
    seqs: list[int] = []
    for event in events:
        if event.event != "next":
            continue
        batch = event.json()["data"]["deploymentLogs"]
        assert event.id == str(batch[-1]["seq"]), (event.id, batch[-1])
        seqs.extend(line["seq"] for line in batch)
    return seqs


@pytest.fixture
def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        pytest.fail("curl is needed (apt-get install curl)")
    return path


def test_curl_follows_a_deployment_log_to_its_end(
    fake_server: Server, fakes: Fakes, curl: str
) -> None:
    dep = deploy(fake_server, fakes, lines=400, delay=0.002)
    key = fake_server.key(Scope.READ)
    with Log() as log:
        out = subprocess.run(
            [curl, "-sSN", "--max-time", "60", "-H", "Accept: text/event-stream",
             "-H", f"x-api-key: {key}", "-H", "Content-Type: application/json",
             "-d", json.dumps(logs_body(dep["id"])), fake_server.url],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    events = list(sse_events(out.stdout.splitlines()))
    assert events[-1].event == "complete"
    final = last_seq(Path(dep["logPath"]))
    assert final > 400
    assert seqs_of(events) == list(range(1, final + 1))
    assert len(events) > 3, "followed live, in several events"
    assert log.records == [], log.text()


def test_curl_get_follows_with_the_query_in_the_url(
    fake_server: Server, fakes: Fakes, curl: str
) -> None:
    """What an EventSource does: GET, the document in the query string, the key in a header."""
    dep = deploy(fake_server, fakes, lines=20)
    wait_finished(fake_server.client(Scope.READ), dep["id"])
    key = fake_server.key(Scope.READ)
    out = subprocess.run(
        [curl, "-sSN", "--max-time", "30", "-G", "-H", "Accept: text/event-stream",
         "-H", f"Authorization: Bearer {key}", "--data-urlencode", f"query={LOGS_SUB}",
         "--data-urlencode", f"variables={json.dumps({'id': dep['id'], 'after': 5})}",
         fake_server.url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    events = list(sse_events(out.stdout.splitlines()))
    assert seqs_of(events) == list(range(6, last_seq(Path(dep["logPath"])) + 1))
    assert events[-1].event == "complete"


def follow_resuming(url: str, key: str, dep_id: str, *, by: str) -> tuple[list[int], int]:
    """Follow the log through connections that break, resuming after the last event seen
    (``Last-Event-ID``, as EventSource does, or ``afterSeq``); the seqs and the reconnects."""
    seqs: list[int] = []
    last_id: str | None = None
    reconnects = 0
    with httpx.Client(timeout=30) as http:
        while True:
            headers = {**SSE, "x-api-key": key}
            after = 0
            if last_id is not None and by == "last-event-id":
                headers["last-event-id"] = last_id
            elif last_id is not None:
                after = int(last_id)
            try:
                with http.stream(
                    "POST", url, json=logs_body(dep_id, after), headers=headers
                ) as res:
                    assert res.status_code == 200, res.read()
                    for event in sse_events(res.iter_lines()):
                        if event.event == "complete":
                            return seqs, reconnects
                        seqs.extend(seqs_of([event]))
                        last_id = event.id
            except (httpx.RemoteProtocolError, httpx.ReadError):
                pass
            reconnects += 1
            assert reconnects < 200, "no progress"


@pytest.mark.parametrize("by", ["last-event-id", "after-seq"])
def test_a_client_cut_off_mid_stream_resumes_without_loss_or_repeat(
    fake_server: Server, fakes: Fakes, by: str
) -> None:
    dep = deploy(fake_server, fakes, lines=3000, delay=0.0005)
    key = fake_server.key(Scope.READ)
    # the first connection breaks after 5 kB (during the file replay), the next ones after
    # 7, 9, ... kB: cuts land inside events, inside chunk headers, during the live tail
    proxy = CuttingProxy(fake_server.port, cut_after=lambda n: 3_000 + 2_000 * n)
    try:
        with Log() as log:
            seqs, reconnects = follow_resuming(proxy.url(), key, dep["id"], by=by)
    finally:
        proxy.close()
    final = last_seq(Path(dep["logPath"]))
    assert seqs == list(range(1, final + 1))
    assert reconnects >= 5 and proxy.cuts >= 5, (reconnects, proxy.cuts)
    time.sleep(0.3)  # the server notices its clients left
    assert log.records == [], log.text()


def test_a_bad_last_event_id_is_bad_user_input(fake_server: Server, fakes: Fakes) -> None:
    dep = deploy(fake_server, fakes, lines=3)
    headers = {**SSE, "x-api-key": fake_server.key(Scope.READ), "last-event-id": "12abc"}
    res = httpx.post(fake_server.url, json=logs_body(dep["id"]), headers=headers)
    events = list(sse_events(res.text.splitlines()))
    assert [e.event for e in events] == ["next", "complete"]
    (error,) = events[0].json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Last-Event-ID" in error["message"]


def test_multipart_subscription_delivers_every_line(fake_server: Server, fakes: Fakes) -> None:
    dep = deploy(fake_server, fakes, lines=300, delay=0.002)
    headers = {**MULTIPART, "x-api-key": fake_server.key(Scope.READ)}
    res = httpx.post(fake_server.url, json=logs_body(dep["id"]), headers=headers, timeout=60)
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("multipart/mixed")
    seqs = [
        line["seq"]
        for payload in multipart_payloads(res.content)
        for line in payload["data"]["deploymentLogs"]
    ]
    assert seqs == list(range(1, last_seq(Path(dep["logPath"])) + 1))


def test_queries_and_mutations_run_over_sse(fake_server: Server) -> None:
    """graphql-sse's distinct connections mode runs every operation type."""
    key = fake_server.key(Scope.DEPLOY)
    headers = {**SSE, "x-api-key": key}
    create = {"query": CREATE_APP, "variables": {"input": GIT_APP()}}
    res = httpx.post(fake_server.url, json=create, headers=headers)
    events = list(sse_events(res.text.splitlines()))
    assert [e.event for e in events] == ["next", "complete"]
    app_id = events[0].json()["data"]["createApplication"]["id"]
    events = list(
        sse_events(
            httpx.post(fake_server.url, json={"query": LIST}, headers=headers).text.splitlines()
        )
    )
    assert events[0].json() == {"data": {"applications": {"edges": [{"node": {"id": app_id}}]}}}


def test_streams_need_a_key_and_its_scope_like_any_request(fake_server: Server) -> None:
    for headers in (SSE, MULTIPART):
        body = {"query": APP_STATUS_SUB, "variables": {"id": "x"}}
        res = httpx.post(fake_server.url, json=body, headers=headers)
        assert res.status_code == 401 and res.headers["content-type"] == "application/json"
        assert res.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        res = httpx.post(fake_server.url, json=body, headers={**headers, "x-api-key": "slw_no"})
        assert res.status_code == 401
    read = fake_server.key(Scope.READ)
    mutation = {"query": 'mutation { deployApplication(applicationId: "x") { id } }'}
    res = httpx.post(fake_server.url, json=mutation, headers={**SSE, "x-api-key": read})
    events = list(sse_events(res.text.splitlines()))
    assert events[0].json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_a_subscription_over_plain_http_is_a_clear_400(fake_server: Server) -> None:
    key = fake_server.key(Scope.READ)
    body = {"query": APP_STATUS_SUB, "variables": {"id": "x"}}
    with Log() as log:
        res = httpx.post(fake_server.url, json=body, headers={"x-api-key": key})
        get = httpx.get(
            fake_server.url,
            params={"query": APP_STATUS_SUB, "variables": '{"id": "x"}'},
            headers={"x-api-key": key, "accept": "application/json"},
        )
    for answer in (res, get):
        assert answer.status_code == 400
        (error,) = answer.json()["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "text/event-stream" in error["message"] and "WebSocket" in error["message"]
    assert log.records == [], log.text()


@pytest.fixture
def capped(tmp_path: Path, fakes: Fakes) -> Iterator[Server]:
    limits = {"ws_max_subscriptions_per_key": 2, "ws_recheck_interval": 0.5}
    with running_server(tmp_path / "data", fakes.adapters, **limits) as server:
        yield server


def test_streams_count_against_the_keys_caps(capped: Server) -> None:
    admin = capped.client(Scope.ADMIN)
    app_id = admin(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    key = capped.key(Scope.READ)
    body = {"query": APP_STATUS_SUB, "variables": {"id": app_id}}
    headers = {**SSE, "x-api-key": key}
    with httpx.Client(timeout=10) as http:
        opened = []
        for _ in range(2):
            stream = http.stream("POST", capped.url, json=body, headers=headers)
            res = stream.__enter__()
            assert res.status_code == 200
            events = sse_events(res.iter_lines())  # kept: a dropped iterator closes the stream
            opened.append((stream, events))
            first = next(events)
            assert first.json()["data"]["applicationStatus"]["id"] == app_id
        refused = http.post(capped.url, json=body, headers=headers)
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        other = capped.key(Scope.READ)  # another key has its own count
        with http.stream("POST", capped.url, json=body, headers={**SSE, "x-api-key": other}) as ok:
            assert ok.status_code == 200
        opened.pop()[0].__exit__(None, None, None)
        deadline = time.monotonic() + 5
        while (
            again := http.post(capped.url, json={"query": LIST}, headers=headers)
        ).status_code != 200:
            assert time.monotonic() < deadline, again.text
            time.sleep(0.1)
        for stream, _ in opened:
            stream.__exit__(None, None, None)


def test_a_revoked_keys_stream_ends_unauthenticated(capped: Server, fakes: Fakes) -> None:
    admin = capped.client(Scope.ADMIN)
    made = admin(CREATE_KEY, s=["READ"])["createApiKey"]
    dep = deploy(capped, fakes, lines=4000, delay=0.002)  # ~8 s of lines
    headers = {**SSE, "x-api-key": made["key"]}
    events = []
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", capped.url, json=logs_body(dep["id"]), headers=headers) as res:
            for event in sse_events(res.iter_lines()):
                events.append(event)
                if len(events) == 1:
                    admin(REVOKE_KEY, id=made["id"])
                    revoked_at = time.monotonic()
    assert time.monotonic() - revoked_at < 3
    assert events[-1].event == "complete"
    (error,) = events[-2].json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert last_seq(Path(dep["logPath"])) < 4000, "the stream ended before the deployment"
    wait_finished(Client(capped.url, capped.key(Scope.READ)), dep["id"])


def test_operations_a_stream_cannot_carry_are_clear_errors(fake_server: Server) -> None:
    """A query over multipart subscriptions (subscriptions only), a mutation over an SSE
    GET (GET never mutates), a batch: each refused with a message, nothing logged."""
    headers = {"x-api-key": fake_server.key(Scope.ADMIN)}
    mutation = 'mutation { revokeApiKey(id: "x") }'
    with Log() as log:
        multipart = httpx.post(
            fake_server.url, json={"query": LIST}, headers={**headers, **MULTIPART}
        )
        sse_get = httpx.get(fake_server.url, params={"query": mutation}, headers={**headers, **SSE})
        batch = httpx.post(fake_server.url, json=[{"query": LIST}], headers={**headers, **SSE})
    (payload,) = multipart_payloads(multipart.content)
    assert payload["errors"][0]["message"] == "queries are not allowed"
    events = list(sse_events(sse_get.text.splitlines()))
    assert events[0].json()["errors"][0]["message"] == "mutations are not allowed"
    assert [e.event for e in events] == ["next", "complete"]
    assert batch.status_code == 400 and "Batching" in batch.json()["errors"][0]["message"]
    for answer in (payload, events[0].json(), batch.json()):
        assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert log.records == [], log.text()
