"""Issue 9, findings 1 and 10 and the upload refusal of 12, over real HTTP to a real server.

Without a key nothing is read past the headers (401); with a key, the body, the document's
tokens, aliases, directives and shape are bounded before validation; bad input is
BAD_USER_INPUT or a 4xx with a message, never "Internal server error" and never a traceback
in the server log; a multipart upload from a key that may not deploy is refused before its
body is read. After each attack /healthz answers within 100 ms.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes
from tests.e2e.harness import Server, running_server
from tests.e2e.queries import CREATE_APP

LOGGERS = ("", "uvicorn", "uvicorn.error")
ALIASES_400K = "{" + " ".join(f"a{i}:__typename" for i in range(400_000)) + "}"
SCHEMA_30K = "{" + " ".join(f"s{i}:__schema{{types{{name}}}}" for i in range(30_000)) + "}"
DIRECTIVES_60K = "{__typename" + " @include(if:true)" * 60_000 + "}"
LIST = "{ applications { edges { node { id } } } }"
REGENERATE = "mutation($id: ID!) { regenerateWebhookSecret(applicationId: $id) }"


class Log(logging.Handler):
    """Every record the server's loggers emit while a test runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("httpx", "httpcore")):  # the test's own client
            self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)


@pytest.fixture
def server_log(fake_server: Server) -> Iterator[Log]:  # noqa: ARG001 - started first
    log = Log()
    log.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    for name in LOGGERS:
        logging.getLogger(name).addHandler(log)
    yield log
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(log)


def post(server: Server, key: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"x-api-key": key} if key else {}
    with httpx.Client(timeout=60) as http:
        return http.post(server.url, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)


def code(res: httpx.Response) -> str:
    body = res.json()
    assert body["data"] is None, body
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert len(codes) == 1, body
    return str(codes.pop())


def assert_answering(server: Server) -> None:
    """/healthz within 100 ms. A loop frozen by an attack fails every probe; three probes
    keep one scheduling hiccup of this shared machine from failing the test."""
    best = float("inf")
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as http:
        for _ in range(3):
            start = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            best = min(best, time.perf_counter() - start)
    assert best < 0.1, f"/healthz took {best * 1000:.0f} ms"


def raw_request(
    server: Server, head: str, headers: dict[str, str], sent: bytes = b""
) -> tuple[int, dict[str, Any]]:
    """Send ``head`` (request line), ``headers`` and ``sent`` on a plain socket, and read the
    answer while whatever the headers announce beyond ``sent`` has not been sent."""
    lines_out = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"{head}\r\nHost: 127.0.0.1\r\n{lines_out}\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request.encode() + sent)
        raw = b""
        while b"\r\n\r\n" not in raw:
            raw += sock.recv(65536) or pytest.fail(f"connection closed: {raw!r}")
        head_bytes, _, body = raw.partition(b"\r\n\r\n")
        lines = head_bytes.decode().split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:])
        while len(body) < int(fields["content-length"]):
            body += sock.recv(65536) or pytest.fail("connection closed mid-answer")
    return int(lines[0].split()[1]), json.loads(body)


def partial_request(
    server: Server, headers: dict[str, str], declared: int, sent: bytes
) -> tuple[int, dict[str, Any]]:
    """A POST announcing ``declared`` bytes of body of which only ``sent`` is sent."""
    headers = {"content-length": str(declared), **headers}
    return raw_request(server, "POST /graphql HTTP/1.1", headers, sent)


# -- finding 1: no key, no parsing; bounded bodies and documents -------------------------------


@pytest.mark.parametrize(
    "doc", [ALIASES_400K, SCHEMA_30K, DIRECTIVES_60K], ids=["400k-aliases", "30k-schema", "60k-dir"]
)
def test_keyless_attack_documents_get_401_at_once(fake_server: Server, doc: str) -> None:
    start = time.perf_counter()
    res = post(fake_server, None, json={"query": doc})
    assert (res.status_code, code(res)) == (401, "UNAUTHENTICATED")
    assert res.headers["www-authenticate"].startswith("Bearer")
    assert time.perf_counter() - start < 2
    assert_answering(fake_server)


def test_keyless_request_is_answered_before_its_body_is_sent(fake_server: Server) -> None:
    body = json.dumps({"query": ALIASES_400K}).encode()
    status, answer = partial_request(
        fake_server, {"content-type": "application/json"}, len(body), body[:1000]
    )
    assert status == 401 and answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert_answering(fake_server)


def test_unknown_key_and_keyless_get_are_401(fake_server: Server) -> None:
    res = post(fake_server, "slw_not-a-real-key", json={"query": LIST})
    assert (res.status_code, code(res)) == (401, "UNAUTHENTICATED")
    assert res.json()["errors"][0]["message"] == "the API key is not valid"
    res = httpx.get(fake_server.url, params={"query": ALIASES_400K[:40_000] + "}"})
    assert (res.status_code, code(res)) == (401, "UNAUTHENTICATED")


def test_graphiql_page_loads_without_a_key(fake_server: Server) -> None:
    res = httpx.get(fake_server.url, headers={"accept": "text/html"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    assert "graphiql" in res.text.lower()


@pytest.mark.parametrize(
    "doc", [ALIASES_400K, SCHEMA_30K, DIRECTIVES_60K], ids=["400k-aliases", "30k-schema", "60k-dir"]
)
def test_read_key_attack_documents_are_too_large(fake_server: Server, doc: str) -> None:
    key = fake_server.key(Scope.READ)
    start = time.perf_counter()
    res = post(fake_server, key, json={"query": doc})
    assert (res.status_code, code(res)) == (413, "BAD_USER_INPUT")
    assert "at most 65536 bytes" in res.json()["errors"][0]["message"]
    assert time.perf_counter() - start < 2
    assert_answering(fake_server)


def test_oversized_body_is_refused_before_it_is_sent(fake_server: Server) -> None:
    headers = {"content-type": "application/json", "x-api-key": fake_server.key(Scope.READ)}
    status, answer = partial_request(fake_server, headers, 7_500_000, b'{"query": "{')
    assert status == 413 and answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_oversized_chunked_body_is_cut_off_at_the_limit(fake_server: Server) -> None:
    body = json.dumps({"query": ALIASES_400K}).encode()
    chunks = (body[i : i + 16384] for i in range(0, len(body), 16384))  # no Content-Length
    res = post(
        fake_server,
        fake_server.key(Scope.READ),
        content=chunks,
        headers={"content-type": "application/json"},
    )
    assert (res.status_code, code(res)) == (413, "BAD_USER_INPUT")
    assert_answering(fake_server)


def test_get_query_string_over_the_limit_is_414(tmp_path: Path, fakes: Fakes) -> None:
    """uvicorn itself refuses request lines of ~64 kB; a lower SLIPWAY_MAX_QUERY_BYTES holds
    for GET query strings as it does for bodies."""
    with running_server(tmp_path / "data", fakes.adapters, max_query_bytes=4096) as server:
        res = httpx.get(
            server.url,
            params={"query": "{" + " __typename" * 500 + "}"},
            headers={"x-api-key": server.key(Scope.READ)},
        )
        assert (res.status_code, code(res)) == (414, "BAD_USER_INPUT")
        assert "at most 4096 bytes" in res.json()["errors"][0]["message"]
        res = post(server, server.key(Scope.READ), json={"query": "{" + " __typename" * 500 + "}"})
        assert (res.status_code, code(res)) == (413, "BAD_USER_INPUT")


def _fragment_bomb(levels: int) -> str:
    frags = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    return (
        "query { ...F0 } " + " ".join(frags) + f" fragment F{levels} on Query {{ a: __typename }}"
    )


def _nested_bomb(levels: int) -> str:
    """Each level selects the next twice under distinct names: 2^levels fields once expanded."""
    frags = [
        f"fragment F{i} on __Type {{ ofType {{ ...F{i + 1} }} o{i}: ofType {{ ...F{i + 1} }} }}"
        for i in range(levels)
    ]
    return (
        "{ __schema { queryType { ...F0 } } } "
        + " ".join(frags)
        + f" fragment F{levels} on __Type {{ name }}"
    )


SMALL_ATTACKS = {
    # each fits in the byte limit; what refuses it is named in the expected message
    "tokens": ("{" + " __typename" * 5000 + "}", "more than 2000 tokens"),
    "aliases": ("{" + " ".join(f"a{i}:__typename" for i in range(31)) + "}", "31 aliases"),
    "schema-aliases": (
        "{" + " ".join(f"s{i}:__schema{{types{{name}}}}" for i in range(100)) + "}",
        "100 aliases",
    ),
    "directives": ("{__typename" + " @include(if:true)" * 60 + "}", "more than 50 directives"),
    "fragment-bomb": (_fragment_bomb(40), "selected 16 times"),
    "nested-fragment-bomb": (_nested_bomb(40), "more than 2000 fields"),
    "repeats": ("{" + " __typename" * 200 + "}", "selected 200 times"),
    "fragment-cycle": ("{...A} fragment A on Query {...B} fragment B on Query {...A}", "itself"),
}


@pytest.mark.parametrize("attack", SMALL_ATTACKS, ids=list(SMALL_ATTACKS))
def test_document_limits_refuse_before_validation(
    fake_server: Server, server_log: Log, attack: str
) -> None:
    doc, message = SMALL_ATTACKS[attack]
    key = fake_server.key(Scope.READ)
    start = time.perf_counter()
    res = post(fake_server, key, json={"query": doc})
    elapsed = time.perf_counter() - start
    assert (res.status_code, code(res)) == (200, "BAD_USER_INPUT"), res.text
    assert message in res.json()["errors"][0]["message"]
    assert elapsed < 0.5, f"{attack} took {elapsed:.2f} s"
    assert_answering(fake_server)
    assert server_log.records == [], server_log.text()


def test_ordinary_and_introspection_queries_still_work(fake_server: Server) -> None:
    from graphql import get_introspection_query

    key = fake_server.key(Scope.READ)
    res = post(fake_server, key, json={"query": get_introspection_query(descriptions=True)})
    assert res.status_code == 200 and "errors" not in res.json(), res.text[:500]
    res = post(fake_server, key, json={"query": "{ a: __typename b: __typename __typename }"})
    assert res.json() == {"data": {"a": "Query", "b": "Query", "__typename": "Query"}}


# -- finding 10: bad input is the client's error, in one line at most ---------------------------

DEPLOY_AT = "mutation($id: ID!, $t: DateTime) { deployApplication(applicationId: $id, scheduledAt: $t) { id } }"  # noqa: E501
BAD_VARIABLES = {
    "enum": (
        "query($s: [DeploymentStatus!]) { deployments(status: $s) { edges { cursor } } }",
        {"s": ["NOPE"]},
        "does not exist in 'DeploymentStatus'",
    ),
    "int-over-2^31": (
        'mutation($n: Int!) { updateServer(id: "x", maxConcurrentBuilds: $n) { id } }',
        {"n": 2**31},
        "non 32-bit signed integer value: 2147483648",
    ),
    "datetime": (DEPLOY_AT, {"id": "x", "t": "not-a-date"}, "cannot represent a DateTime"),
    "syntax": ("{ applications(", {}, "Syntax Error"),
    "unknown-field": ("{ nope }", {}, "Cannot query field 'nope'"),
}


@pytest.mark.parametrize("case", BAD_VARIABLES, ids=list(BAD_VARIABLES))
def test_bad_input_is_bad_user_input_without_a_traceback(
    fake_server: Server, server_log: Log, case: str
) -> None:
    query, variables, message = BAD_VARIABLES[case]
    res = post(
        fake_server, fake_server.key(Scope.ADMIN), json={"query": query, "variables": variables}
    )
    assert (res.status_code, code(res)) == (200, "BAD_USER_INPUT"), res.text
    assert message in res.json()["errors"][0]["message"]
    assert "Internal server error" not in res.text
    assert server_log.records == [], server_log.text()


SUBSCRIPTION = 'subscription { deploymentStatus(deploymentId: "x") { status } }'
BAD_REQUESTS: dict[str, tuple[dict[str, Any], str]] = {
    "subscription-post": ({"json": {"query": SUBSCRIPTION}}, "open a WebSocket"),
    "subscription-get": ({"method": "GET", "params": {"query": SUBSCRIPTION}}, "open a WebSocket"),
    "invalid-utf8": ({"content": b'{"query": "{ __typename \xff }"}'}, "not valid UTF-8"),
    "malformed-json": ({"content": b'{"query": '}, "not valid JSON"),
    "json-string": ({"content": b'"{ __typename }"'}, "must be a JSON object"),
    "json-null": ({"content": b"null"}, "must be a JSON object"),
    "query-not-string": ({"json": {"query": 5}}, "`query` must be a string"),
    "deep-json": ({"content": b'{"variables": ' + b"[" * 30000 + b"]" * 30000 + b"}"}, "deeply"),
    "lone-surrogate": (
        {"content": b'{"query": "{ __typename }", "variables": {"a": "\\ud800"}}'},
        "surrogate",
    ),  # noqa: E501
    "get-bad-variables": (
        {"method": "GET", "params": {"query": "{ __typename }", "variables": "{"}},
        "not valid JSON",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_requests_are_400_with_a_message_without_a_traceback(
    fake_server: Server, server_log: Log, case: str
) -> None:
    kwargs, message = BAD_REQUESTS[case]
    method = kwargs.get("method", "POST")
    headers = {"x-api-key": fake_server.key(Scope.ADMIN), "content-type": "application/json"}
    with httpx.Client(timeout=30) as http:
        sent = {k: v for k, v in kwargs.items() if k != "method"}
        res = http.request(method, fake_server.url, headers=headers, **sent)
    assert (res.status_code, code(res)) == (400, "BAD_USER_INPUT"), res.text
    assert message in res.json()["errors"][0]["message"]
    assert server_log.records == [], server_log.text()
    assert_answering(fake_server)


def test_malformed_multipart_map_is_400(fake_server: Server) -> None:
    ops = {"query": "mutation($f: Upload!) { __typename }", "variables": {"f": None}}
    for files_map in ('{"0": "variables.f"}', '{"0": ["variables.f.x.y"]}', "[1]"):
        res = post(
            fake_server,
            fake_server.key(Scope.DEPLOY),
            data={"operations": json.dumps(ops), "map": files_map},
            files={"0": ("a.zip", b"PK", "application/zip")},
        )
        assert (res.status_code, code(res)) == (400, "BAD_USER_INPUT"), (files_map, res.text)


# -- finding 12: an upload from a key that may not deploy is refused before it is read ----------

UPLOAD_HEAD = (
    b'--B\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
    b'{"query": "mutation($id: ID!, $z: Upload!) { dropDeployment(applicationId: $id, zip: $z)'
    b' { id } }", "variables": {"id": "x", "z": null}}\r\n'
    b'--B\r\nContent-Disposition: form-data; name="map"\r\n\r\n'
    b'{"0": ["variables.z"]}\r\n'
    b'--B\r\nContent-Disposition: form-data; name="0"; filename="a.zip"\r\n\r\n'
)


@pytest.mark.parametrize(
    ("scope", "status"), [(None, 401), (Scope.READ, 403)], ids=["none", "read"]
)
def test_upload_without_deploy_is_refused_before_its_body_is_read(
    fake_server: Server, scope: Scope | None, status: int
) -> None:
    headers = {"content-type": "multipart/form-data; boundary=B"}
    if scope is not None:
        headers["x-api-key"] = fake_server.key(scope)
    declared = 512 * 1024 * 1024  # half a gigabyte announced, 64 KiB of it sent
    sent = UPLOAD_HEAD + b"\0" * 65536
    got, answer = partial_request(fake_server, headers, declared, sent)
    expected = "UNAUTHENTICATED" if scope is None else "FORBIDDEN"
    assert (got, answer["errors"][0]["extensions"]["code"]) == (status, expected)
    uploads = fake_server.settings.data_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert_answering(fake_server)


def test_upload_with_deploy_is_still_read(fake_server: Server) -> None:
    """The refusal above is about the key: the same request with DEPLOY reaches the resolver."""
    res = post(
        fake_server,
        fake_server.key(Scope.DEPLOY),
        content=UPLOAD_HEAD + b"PK\r\n--B--\r\n",
        headers={"content-type": "multipart/form-data; boundary=B"},
    )
    assert (res.status_code, code(res)) == (200, "NOT_FOUND"), res.text


# -- the same class at the webhook edge: signed but unusable bodies are 400, not 500 ------------

HOOK_BODIES = {
    "deep-json": b"[" * 30000 + b"]" * 30000,
    "lone-surrogate": b'{"ref": "refs/heads/main", "after": "\\ud800", "head_commit": {}}',
    "invalid-utf8": b'{"ref": "refs/heads/main\xff"}',
}


@pytest.mark.parametrize("case", HOOK_BODIES, ids=list(HOOK_BODIES))
def test_signed_webhook_bodies_that_cannot_be_used_are_400(
    fake_server: Server, server_log: Log, case: str
) -> None:
    admin = fake_server.client(Scope.ADMIN)
    app_id = admin(CREATE_APP, input=GIT_APP(sourceType="GITHUB"))["createApplication"]["id"]
    secret = admin(REGENERATE, id=app_id)["regenerateWebhookSecret"]
    body = HOOK_BODIES[case]
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    res = httpx.post(
        f"http://127.0.0.1:{fake_server.port}/webhooks/github/{app_id}",
        content=body,
        headers={
            "content-type": "application/json",
            "x-github-event": "push",
            "x-github-delivery": f"d-{case}",
            "x-hub-signature-256": signature,
        },
    )
    assert (res.status_code, res.json()) == (400, {"error": "the body is not a JSON object"})
    assert server_log.records == [], server_log.text()


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea", "bitbucket"])
def test_unsigned_webhook_is_401_before_its_body_is_read(
    fake_server: Server, provider: str
) -> None:
    """No signature header: nothing to verify, so no body is read and no row looked up."""
    admin = fake_server.client(Scope.ADMIN)
    source = {"github": "GITHUB", "gitlab": "GITLAB", "gitea": "GITEA"}.get(provider, "BITBUCKET")
    app_id = admin(CREATE_APP, input=GIT_APP(sourceType=source))["createApplication"]["id"]
    admin(REGENERATE, id=app_id)
    declared = fake_server.settings.webhook_max_body  # announced in full, 1 KiB of it sent
    head = f"POST /webhooks/{provider}/{app_id} HTTP/1.1"
    headers = {"content-type": "application/json", "content-length": str(declared)}
    status, answer = raw_request(fake_server, head, headers, b"{" + b" " * 1023)
    assert (status, answer) == (401, {"error": "signature missing or invalid"})
    assert_answering(fake_server)


WS_PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
CREATE_WITH = "mutation($i: CreateApplicationInput!) { createApplication(input: $i) { id } }"
STATUS_OF = "subscription($id: ID!) { deploymentStatus(deploymentId: $id) { status } }"


def ws_first_answer(server: Server, protocol: str, payload: str) -> dict[str, Any]:
    """The first message answering one operation whose payload is the JSON text given."""
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    with connect(server.ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": server.key()}}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
        ws.send(f'{{"type": "{kind}", "id": "1", "payload": {payload}}}')
        answer: dict[str, Any] = json.loads(ws.recv(timeout=5))
    return answer


def ws_errors(answer: dict[str, Any]) -> list[dict[str, Any]]:
    assert answer["type"] == "error", answer
    payload = answer["payload"]
    return payload if isinstance(payload, list) else [payload]


@pytest.mark.parametrize("protocol", WS_PROTOCOLS)
def test_unpaired_surrogate_in_websocket_variables_is_bad_user_input(
    fake_server: Server, server_log: Log, protocol: str
) -> None:
    """Over HTTP the body is refused when decoded (above); a WebSocket message's variables
    are checked before execution, so nothing unstorable reaches a resolver."""
    payload = f'{{"query": "{STATUS_OF}", "variables": {{"id": "a\\ud800"}}}}'
    errors = ws_errors(ws_first_answer(fake_server, protocol, payload))
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]
    assert "unpaired surrogate" in errors[0]["message"]
    if protocol == "graphql-transport-ws":  # a mutation, over the protocol that runs them
        app = '{"name": "a\\ud800", "sourceType": "GIT", "repository": "https://x.invalid/r.git"}'
        payload = f'{{"query": "{CREATE_WITH}", "variables": {{"i": {app}}}}}'
        errors = ws_errors(ws_first_answer(fake_server, protocol, payload))
        assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]
        assert fake_server.client(Scope.ADMIN)(LIST) == {"applications": {"edges": []}}
    assert server_log.records == [], server_log.text()


def test_mutation_over_legacy_websocket_runs_with_the_keys_scope(
    fake_server: Server, server_log: Log
) -> None:
    """Legacy graphql-ws runs mutations (issue 11), with the same checks as HTTP."""
    payload = json.dumps({"query": 'mutation { deployApplication(applicationId: "x") { id } }'})
    answer = ws_first_answer(fake_server, "graphql-ws", payload)
    assert answer["type"] == "data", answer
    assert [e["extensions"]["code"] for e in answer["payload"]["errors"]] == ["NOT_FOUND"]
    assert server_log.records == [], server_log.text()
