"""What the GraphQL fuzzer (test_fuzz_graphql.py) found, kept as explicit cases over real
HTTP with an ADMIN key, on SQLite and on PostgreSQL: each must be answered with a code on
every error (never INTERNAL_SERVER_ERROR), no traceback, nothing logged as an error, and
the server must answer /healthz at once after.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from app.types import Scope
from tests.e2e.conftest import Fakes
from tests.e2e.harness import running_server
from tests.support.answers import probe, problems, watching_logs

NUL_ID = "a\u0000b"  # PostgreSQL cannot hold NUL in text: it was a DataError, a 500 inside
FOUND: list[tuple[str, str, dict[str, Any], bool]] = [
    # (what, document, variables, whether an error is required)
    ("NUL in an ID literal", '{ deployment(id: "a\\u0000b") { id } }', {}, False),
    (
        "NUL in an ID variable",
        "mutation($id: ID!) { deleteApplication(id: $id) }",
        {"id": NUL_ID},
        True,
    ),
    (
        "NUL in a key name",
        'mutation { createApiKey(name: "k\\u0000", scopes: [READ]) { id } }',
        {},
        True,
    ),
    (
        "variables that do not coerce",
        "query($f: Int, $a: String) { applications(first: $f, after: $a) { edges { cursor } } }",
        {"f": 0, "a": 0},
        True,
    ),
    (
        "null for a non-null variable",
        "query($id: ID!) { deployment(id: $id) { id } }",
        {"id": None},
        True,
    ),
    ("a missing required argument", "{ application { id } }", {}, True),
    (
        "an unknown enum value",
        "{ deployments(first: 1, status: A) { edges { cursor } } }",
        {},
        True,
    ),
    (
        "a literal of the wrong type",
        "{ applications(first: 3, after: true) { edges { cursor } } }",
        {},
        True,
    ),
]


def test_what_the_fuzzer_found_is_answered_with_a_code(
    database_url: str, fakes: Fakes, tmp_path: Path
) -> None:
    wrong: list[str] = []
    with (
        running_server(tmp_path / "data", fakes.adapters, database_url=database_url) as server,
        watching_logs() as watch,
    ):
        probe(watch)
        client = server.client(Scope.ADMIN)
        for what, document, variables, must_fail in FOUND:
            res = client.http.post(server.url, json={"query": document, "variables": variables})
            found = problems(res.status_code, res.text) + watch.take()
            errors = res.json().get("errors") or [] if res.status_code < 500 else []
            codes = {(e.get("extensions") or {}).get("code") for e in errors}
            if "INTERNAL_SERVER_ERROR" in codes or (must_fail and not errors):
                found.append(f"codes {sorted(map(str, codes))}")
            wrong += [f"{what}: {problem} <- {res.text[:300]}" for problem in found]
        started = time.monotonic()
        health = httpx.get(server.url.replace("/graphql", "/healthz"), timeout=5)
        took = time.monotonic() - started
    assert not wrong, "\n".join(wrong)
    assert health.status_code == 200 and took < 0.1, f"/healthz took {took * 1000:.0f} ms"
